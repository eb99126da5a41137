package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// idxImages encodes count images of rows x cols (pixel i of image k = k+i).
func idxImages(magic uint32, count, rows, cols int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{magic, uint32(count), uint32(rows), uint32(cols)})
	for k := 0; k < count; k++ {
		for i := 0; i < rows*cols; i++ {
			b.WriteByte(byte(k + i))
		}
	}
	return b.Bytes()
}

func idxLabels(magic uint32, labels ...byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{magic, uint32(len(labels))})
	b.Write(labels)
	return b.Bytes()
}

func gz(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// writeSet writes a split's two files into a new directory.
func writeSet(t *testing.T, split Split, images, labels []byte, suffix string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, string(split)+"-images-idx3-ubyte"+suffix), images, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, string(split)+"-labels-idx1-ubyte"+suffix), labels, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadReadsPlainAndGzipFiles(t *testing.T) {
	images, labels := idxImages(imagesMagic, 3, 28, 28), idxLabels(labelsMagic, 7, 0, 9)
	for _, tc := range []struct {
		name           string
		images, labels []byte
		suffix         string
	}{
		{"plain", images, labels, ""},
		{"gzip", gz(images), gz(labels), ".gz"},
		{"gzip content without .gz name", gz(images), gz(labels), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Load(writeSet(t, Train, tc.images, tc.labels, tc.suffix), Train)
			if err != nil {
				t.Fatal(err)
			}
			if set.Count != 3 || set.Rows != 28 || set.Cols != 28 || len(set.Pixels) != 3*784 {
				t.Fatalf("got %d images of %dx%d (%d bytes)", set.Count, set.Rows, set.Cols, len(set.Pixels))
			}
			if set.Image(2)[5] != 7 || string(set.Labels) != "\x07\x00\x09" {
				t.Errorf("pixel or labels wrong: %d, %v", set.Image(2)[5], set.Labels)
			}
		})
	}
}

func TestLoadRejectsBadFilesNamingThem(t *testing.T) {
	good := idxImages(imagesMagic, 2, 28, 28)
	labels := idxLabels(labelsMagic, 1, 2)
	tests := []struct {
		name           string
		images, labels []byte
		file           string // which file the error must name
		want           string
	}{
		{"truncated images", good[:len(good)-100], labels, "train-images", "truncated"},
		{"truncated header", good[:10], labels, "train-images", "truncated"},
		{"truncated gzip", gz(good)[:200], labels, "train-images", "truncated"},
		{"wrong image magic", idxImages(0x00000801, 2, 28, 28), labels, "train-images", "magic number 0x00000801"},
		{"labels given as images", labels, labels, "train-images", "magic number"},
		{"wrong dimensions", idxImages(imagesMagic, 2, 32, 32), labels, "train-images", "32x32"},
		{"zero columns", idxImages(imagesMagic, 2, 28, 0), labels, "train-images", "at least one"},
		{"no images", idxImages(imagesMagic, 0, 28, 28), idxLabels(labelsMagic), "train-images", "no images"},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2, 3), labels, "train-images", "bytes after the data"},
		{"wrong label magic", good, idxLabels(0x00000803, 1, 2), "train-labels", "magic number"},
		{"label count differs", good, idxLabels(labelsMagic, 1, 2, 3), "train-labels", "3 labels"},
		{"label out of range", good, idxLabels(labelsMagic, 1, 12), "train-labels", "label 1 is 12"},
		{"truncated labels", good, idxLabels(labelsMagic, 1, 2)[:9], "train-labels", "truncated"},
		{"corrupt gzip", append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{0xff}, 40)...), labels, "train-images", "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeSet(t, Train, tc.images, tc.labels, ""), Train)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.file) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q: want it to name %s and say %q", msg, tc.file, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
		})
	}
}

func TestLoadNamesMissingFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir, Test)
	if err == nil || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %v: want the missing file and directory named", err)
	}
}

func TestHugeHeaderDoesNotAllocateWhatItPromises(t *testing.T) {
	// A 16-byte file whose header promises 4e9 bytes of pixels.
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{imagesMagic, 5000000, 28, 28})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadImages(bytes.NewReader(b.Bytes()), "huge")
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("error %v, want truncated", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*readChunk {
		t.Errorf("reading a 16-byte file allocated %d bytes", grew)
	}
}

func TestSubsetSharesPixels(t *testing.T) {
	set, err := Load(writeSet(t, Train, idxImages(imagesMagic, 5, 28, 28), idxLabels(labelsMagic, 0, 1, 2, 3, 4), ""), Train)
	if err != nil {
		t.Fatal(err)
	}
	sub := set.Subset(2)
	if sub.Count != 2 || len(sub.Pixels) != 2*784 || len(sub.Labels) != 2 || &sub.Pixels[0] != &set.Pixels[0] {
		t.Errorf("Subset(2): %d images, %d bytes, %d labels", sub.Count, len(sub.Pixels), len(sub.Labels))
	}
	if set.Subset(0) != set || set.Subset(10) != set {
		t.Error("Subset(0) and Subset(n >= Count) should return the whole set")
	}
}

func TestLocatePrefersMNISTGAN_DATA(t *testing.T) {
	dir := writeSet(t, Train, idxImages(imagesMagic, 1, 28, 28), idxLabels(labelsMagic, 3), ".gz")
	t.Setenv("MNISTGAN_DATA", dir)
	got, err := Locate()
	if err != nil || got != dir {
		t.Errorf("Locate() = %q, %v; want %q", got, err, dir)
	}
	// A MNISTGAN_DATA without the files is an error naming it, even with
	// data elsewhere (here in the working directory's data/mnist).
	empty := t.TempDir()
	t.Setenv("MNISTGAN_DATA", empty)
	work := t.TempDir()
	t.Chdir(work)
	if err := os.MkdirAll(filepath.Join(work, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(work, "data", "mnist")); err != nil {
		t.Fatal(err)
	}
	if _, err := Locate(); err == nil || !strings.Contains(err.Error(), "MNISTGAN_DATA="+empty) {
		t.Errorf("Locate() with an empty MNISTGAN_DATA: %v, want an error naming it", err)
	}
	t.Setenv("MNISTGAN_DATA", "")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Chdir(t.TempDir())
	if _, err := Locate(); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Errorf("Locate() with no data anywhere: %v, want advice naming --data", err)
	}
}

// The fuzz targets below run their seeds (these, and the corpus in
// testdata/fuzz/) with go test; `make fuzz` explores from them for a while.
// No input may panic a reader, make it return more bytes than the input
// holds, or make it allocate much more than the input could describe: a
// header promising gigabytes costs no more than the bytes actually there.

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocSlack covers what reading costs beyond the data: small headers and
// error messages, and the gzip decompressor's window and tables.
const allocSlack = 256 << 10

func FuzzReadImages(f *testing.F) {
	f.Add(idxImages(imagesMagic, 2, 3, 3))
	f.Add(idxImages(imagesMagic, 1, 28, 28))
	f.Add(idxImages(imagesMagic, 0, 0, 0))
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var im *Images
		var err error
		n := allocated(func() { im, err = ReadImages(bytes.NewReader(data), "fuzz") })
		if err == nil && len(im.Pixels) != im.Count*im.Rows*im.Cols {
			t.Fatalf("%d pixels for %d images of %dx%d", len(im.Pixels), im.Count, im.Rows, im.Cols)
		}
		if err == nil && len(im.Pixels) > len(data) {
			t.Fatalf("%d pixels from a %d-byte input", len(im.Pixels), len(data))
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error spans lines: %q", err)
		}
		if limit := allocSlack + 4*uint64(len(data)); n > limit {
			t.Fatalf("reading %d bytes allocated %d (limit %d)", len(data), n, limit)
		}
	})
}

func FuzzReadLabels(f *testing.F) {
	f.Add(idxLabels(labelsMagic, 1, 2, 3))
	f.Add(idxLabels(labelsMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		var labels []byte
		var err error
		n := allocated(func() { labels, err = ReadLabels(bytes.NewReader(data), "fuzz") })
		if err == nil && len(labels) > len(data) {
			t.Fatalf("%d labels from a %d-byte input", len(labels), len(data))
		}
		for i, l := range labels {
			if err == nil && l > 9 {
				t.Fatalf("label %d is %d", i, l)
			}
		}
		if limit := allocSlack + 4*uint64(len(data)); n > limit {
			t.Fatalf("reading %d bytes allocated %d (limit %d)", len(data), n, limit)
		}
	})
}

// FuzzReadGzip feeds both readers through the path Load takes for a file,
// which decompresses gzip content. A gzip file describes what it
// decompresses to, so that bounds the allocations.
func FuzzReadGzip(f *testing.F) {
	f.Add(gz(idxImages(imagesMagic, 2, 28, 28)))
	f.Add(gz(idxLabels(labelsMagic, 1, 2, 3)))
	f.Add(gz(idxImages(imagesMagic, 1000, 28, 28))[:100])
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		described := len(data)
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			// Decompressed size, as far as it decompresses (a fuzzed input
			// of a few kilobytes cannot describe more than a few megabytes).
			if d, _ := io.Copy(io.Discard, zr); int(d) > described {
				described = int(d)
			}
		}
		stream := func() io.Reader {
			r, err := idxStream(bufio.NewReader(bytes.NewReader(data)), "fuzz")
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error spans lines: %q", err)
				}
				return nil
			}
			return r
		}
		limit := allocSlack + 4*uint64(described)
		n := allocated(func() {
			if r := stream(); r != nil {
				if im, err := ReadImages(r, "fuzz"); err == nil && len(im.Pixels) > described {
					t.Fatalf("%d pixels from %d bytes", len(im.Pixels), described)
				}
			}
		})
		if n > limit {
			t.Fatalf("reading images from %d bytes (%d decompressed) allocated %d (limit %d)", len(data), described, n, limit)
		}
		n = allocated(func() {
			if r := stream(); r != nil {
				if labels, err := ReadLabels(r, "fuzz"); err == nil && len(labels) > described {
					t.Fatalf("%d labels from %d bytes", len(labels), described)
				}
			}
		})
		if n > limit {
			t.Fatalf("reading labels from %d bytes (%d decompressed) allocated %d (limit %d)", len(data), described, n, limit)
		}
	})
}
