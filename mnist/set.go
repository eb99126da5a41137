package mnist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Split names one of MNIST's two halves.
type Split string

const (
	Train Split = "train" // 60,000 images
	Test  Split = "t10k"  // 10,000 images
)

// Side is the width and height of an MNIST digit in pixels.
const Side = 28

// Set is one split of MNIST: images and their labels.
type Set struct {
	Images
	Labels []byte
}

// Load reads one split from dir, which holds the original files
// (train-images-idx3-ubyte, ..., each optionally with .gz). It insists on 28x28
// images and as many labels as images.
func Load(dir string, split Split) (*Set, error) {
	imagesPath, err := findFile(dir, string(split)+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	labelsPath, err := findFile(dir, string(split)+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	images, err := readFile(imagesPath, ReadImages)
	if err != nil {
		return nil, err
	}
	if images.Rows != Side || images.Cols != Side {
		return nil, fmt.Errorf("%s: images are %dx%d pixels; MNIST digits are %dx%d", imagesPath, images.Rows, images.Cols, Side, Side)
	}
	if images.Count == 0 {
		return nil, fmt.Errorf("%s: holds no images", imagesPath)
	}
	labels, err := readFile(labelsPath, ReadLabels)
	if err != nil {
		return nil, err
	}
	if len(labels) != images.Count {
		return nil, fmt.Errorf("%s has %d labels but %s has %d images; the two files must come from the same split", labelsPath, len(labels), imagesPath, images.Count)
	}
	return &Set{Images: *images, Labels: labels}, nil
}

// Subset returns the first n examples of s (all of them when n <= 0 or n >= Count).
// The pixels are shared, not copied.
func (s *Set) Subset(n int) *Set {
	if n <= 0 || n >= s.Count {
		return s
	}
	sub := *s
	sub.Count = n
	sub.Pixels = s.Pixels[:n*s.Rows*s.Cols]
	sub.Labels = s.Labels[:n]
	return &sub
}

func readFile[T any](path string, read func(r io.Reader, name string) (T, error)) (T, error) {
	var zero T
	r, closer, err := openIDX(path)
	if err != nil {
		return zero, fmt.Errorf("open %s: %w", path, err)
	}
	defer closer.Close()
	return read(r, path)
}

// findFile returns dir/base or dir/base.gz, whichever exists.
func findFile(dir, base string) (string, error) {
	for _, name := range []string{base + ".gz", base} {
		path := filepath.Join(dir, name)
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			return path, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err // an *fs.PathError: "stat PATH: not a directory"
		}
	}
	return "", fmt.Errorf("no %s or %s.gz in %s; --data must name a directory holding the four MNIST idx files", base, base, dir)
}

// gomnistModule is the module whose data/ directory carries the original files.
const gomnistModule = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"

// Locate finds the default data directory: $MNISTGAN_DATA, then data/mnist in the
// working directory, then data/mnist beside the executable's bin/ directory, then
// the GoMNIST module in the Go module cache. The error lists every place tried.
func Locate() (string, error) {
	// A directory the user names is the one used, or the error: falling
	// back to another copy would hide their mistake.
	if dir := os.Getenv("MNISTGAN_DATA"); dir != "" {
		if _, err := findFile(dir, string(Train)+"-images-idx3-ubyte"); err != nil {
			return "", fmt.Errorf("MNISTGAN_DATA=%s: %w", dir, err)
		}
		return dir, nil
	}
	candidates := []string{filepath.Join("data", "mnist")}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", "data", "mnist"))
	}
	for _, cache := range moduleCaches() {
		candidates = append(candidates, filepath.Join(cache, filepath.FromSlash(gomnistModule), "data"))
	}
	for _, dir := range candidates {
		if _, err := findFile(dir, string(Train)+"-images-idx3-ubyte"); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no MNIST data found (tried %s); run `make data` or pass --data DIR", strings.Join(candidates, ", "))
}

func moduleCaches() []string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return []string{c}
	}
	var caches []string
	if p := os.Getenv("GOPATH"); p != "" {
		for _, dir := range filepath.SplitList(p) {
			caches = append(caches, filepath.Join(dir, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	return caches
}
