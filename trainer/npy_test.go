package trainer

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNPYRoundTrip(t *testing.T) {
	values := []float32{0, 1, -1, 0.5, float32(math.Inf(1)), 3.25e-8}
	for _, shape := range [][]int{{6}, {2, 3}, {1, 2, 3, 1}} {
		raw, err := encodeNPY(shape, values)
		if err != nil {
			t.Fatal(err)
		}
		if string(raw[:6]) != npyMagic || (len(raw)-4*len(values))%64 != 0 {
			t.Errorf("shape %v: header is not padded to 64 bytes (%d bytes before the data)", shape, len(raw)-4*len(values))
		}
		path := filepath.Join(t.TempDir(), "a.npy")
		os.WriteFile(path, raw, 0o644)
		gotShape, got, err := ReadNPY(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(gotShape) != len(shape) {
			t.Errorf("shape %v read back as %v", shape, gotShape)
		}
		for i := range values {
			if got[i] != values[i] {
				t.Errorf("value %d: %g, want %g", i, got[i], values[i])
			}
		}
	}
	if _, err := encodeNPY([]int{2, 2}, values); err == nil {
		t.Errorf("6 values as 2 x 2: no error")
	}
}

func TestReadNPYRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	good, _ := encodeNPY([]int{2, 100}, make([]float32, 200))
	header := func(h string) []byte {
		b := append([]byte(npyMagic), 1, 0, byte(len(h)), 0)
		return append(b, h...)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"text", []byte("1,2,3\n"), "magic"},
		{"truncated", good[:len(good)-3], "needs 800 bytes"},
		{"float64", header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n"), "float64 values; save them as float32"},
		{"int", header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n"), "not little-endian float32"},
		{"fortran", header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n"), "row-major"},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, tc.name+".npy")
		os.WriteFile(path, tc.data, 0o644)
		if _, _, err := ReadNPY(path); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming the file and saying %q", tc.name, err, tc.want)
		}
	}
	path := filepath.Join(dir, "z.npy")
	wrong, _ := encodeNPY([]int{2, 3}, make([]float32, 6))
	os.WriteFile(path, wrong, 0o644)
	if _, err := ReadNoise(path, 100); err == nil || !strings.Contains(err.Error(), "[N, 100]") {
		t.Errorf("noise of shape 2 x 3: %v", err)
	}
	os.WriteFile(path, good, 0o644)
	if z, err := ReadNoise(path, 100); err != nil || len(z) != 2 || len(z[1]) != 100 {
		t.Errorf("noise of shape 2 x 100: %d vectors, %v", len(z), err)
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		values := make([]float32, 200)
		values[107] = bad
		raw, err := encodeNPY([]int{2, 100}, values)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadNoise(path, 100); err == nil || !strings.Contains(err.Error(), "value 7 of noise vector 1 is") {
			t.Errorf("noise holding %g: %v, want an error naming the value", bad, err)
		}
	}
}
