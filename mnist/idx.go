// Package mnist reads the MNIST data set from its original IDX files (plain or
// gzip-compressed) and finds them on disk. It knows nothing of TensorFlow.
package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte) and
// the number of dimensions.
const (
	imagesMagic = 0x00000803
	labelsMagic = 0x00000801
)

// maxBytes bounds what a header may promise (about 16 GiB), so that a corrupt
// header cannot make the reader attempt an absurd allocation.
const maxBytes = 1 << 34

// readChunk is the most the reader allocates ahead of data actually read: a header
// promising more than the file holds costs at most one chunk before it fails.
const readChunk = 1 << 20

// Images is a set of grey-scale images, one byte per pixel, row-major.
type Images struct {
	Count, Rows, Cols int
	Pixels            []byte // Count*Rows*Cols bytes
}

// Image returns the pixels of image i.
func (im *Images) Image(i int) []byte {
	n := im.Rows * im.Cols
	return im.Pixels[i*n : (i+1)*n]
}

// ReadImages decodes an IDX3 image file (magic 0x00000803) from r. name is used
// only in error messages.
func ReadImages(r io.Reader, name string) (*Images, error) {
	dims, err := readHeader(r, imagesMagic, 3)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	count, rows, cols := dims[0], dims[1], dims[2]
	if rows == 0 || cols == 0 {
		return nil, fmt.Errorf("%s: images of %dx%d pixels; an image needs at least one row and one column", name, rows, cols)
	}
	size := uint64(count) * uint64(rows) * uint64(cols)
	if size > maxBytes {
		return nil, fmt.Errorf("%s: header promises %d images of %dx%d, over %d GiB; the file is corrupt", name, count, rows, cols, maxBytes>>30)
	}
	pixels, err := readExactly(r, int(size))
	if err != nil {
		return nil, fmt.Errorf("%s: header promises %d images of %dx%d (%d bytes of pixels): %w", name, count, rows, cols, size, err)
	}
	if err := expectEOF(r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Images{Count: int(count), Rows: int(rows), Cols: int(cols), Pixels: pixels}, nil
}

// ReadLabels decodes an IDX1 label file (magic 0x00000801) from r.
func ReadLabels(r io.Reader, name string) ([]byte, error) {
	dims, err := readHeader(r, labelsMagic, 1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if uint64(dims[0]) > maxBytes {
		return nil, fmt.Errorf("%s: header promises %d labels; the file is corrupt", name, dims[0])
	}
	labels, err := readExactly(r, int(dims[0]))
	if err != nil {
		return nil, fmt.Errorf("%s: header promises %d labels: %w", name, dims[0], err)
	}
	if err := expectEOF(r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, l := range labels {
		if l > 9 {
			return nil, fmt.Errorf("%s: label %d is %d; MNIST labels are digits 0 to 9", name, i, l)
		}
	}
	return labels, nil
}

func readHeader(r io.Reader, wantMagic uint32, ndims int) ([]uint32, error) {
	var magic uint32
	if err := binary.Read(r, binary.BigEndian, &magic); err != nil {
		return nil, headerError(err, ndims)
	}
	if magic != wantMagic {
		return nil, fmt.Errorf("magic number 0x%08x, want 0x%08x (%s); this is not an MNIST %s file",
			magic, wantMagic, describeMagic(wantMagic), kindOf(wantMagic))
	}
	dims := make([]uint32, ndims)
	if err := binary.Read(r, binary.BigEndian, dims); err != nil {
		return nil, headerError(err, ndims)
	}
	return dims, nil
}

func headerError(err error, ndims int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated: shorter than its %d-byte IDX header", 4*(1+ndims))
	}
	return fmt.Errorf("read IDX header: %w", err)
}

func kindOf(magic uint32) string {
	if magic == imagesMagic {
		return "image"
	}
	return "label"
}

func describeMagic(magic uint32) string {
	return fmt.Sprintf("unsigned bytes, %d dimension(s)", magic&0xff)
}

// readExactly reads n bytes, growing its buffer only as data arrives.
func readExactly(r io.Reader, n int) ([]byte, error) {
	var buf bytes.Buffer
	for buf.Len() < n {
		want := min(n-buf.Len(), readChunk)
		if _, err := io.CopyN(&buf, r, int64(want)); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("truncated: only %d of them are there", buf.Len())
			}
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// expectEOF rejects trailing bytes: a file longer than its header says is as
// suspect as a shorter one (a wrong header, or two files concatenated).
func expectEOF(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return nil
	}
	if err != nil && n == 0 {
		return fmt.Errorf("read past the data: %w", err)
	}
	return errors.New("has bytes after the data its header describes; the header is wrong or the file is corrupt")
}

// openIDX opens path, transparently decompressing it when it is gzip data (by
// content, not by name). The returned closer closes the file.
func openIDX(path string) (io.Reader, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	r, err := idxStream(bufio.NewReaderSize(f, 1<<16), path)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return r, f, nil
}

// idxStream returns the IDX bytes br holds: br itself, or what it
// decompresses to when it starts as gzip data does.
func idxStream(br *bufio.Reader, path string) (io.Reader, error) {
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip header: %w", path, err)
		}
		return gzipErrors{zr, path}, nil
	}
	return br, nil
}

// gzipErrors names the file and says what a broken gzip stream means.
type gzipErrors struct {
	r    io.Reader
	path string
}

func (g gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return n, io.EOF // reported by the caller as "truncated"
		}
		if strings.Contains(err.Error(), "gzip") || strings.Contains(err.Error(), "flate") {
			return n, fmt.Errorf("corrupt gzip data: %w", err)
		}
	}
	return n, err
}
