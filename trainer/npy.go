package trainer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// NumPy's .npy format carries exact float32 values between mnistgan and Python
// (np.load, np.save): a magic string, a version, a header that is a Python dict
// literal ({'descr': '<f4', 'fortran_order': False, 'shape': (16, 28, 28, 1), }),
// then the values, little-endian and row-major. Only float32 arrays are read and
// written: it is the generator's type.
const npyMagic = "\x93NUMPY"

// encodeNPY returns the .npy file of a float32 array of the given shape.
func encodeNPY(shape []int, values []float32) ([]byte, error) {
	n := 1
	dims := make([]string, len(shape))
	for i, d := range shape {
		n *= d
		dims[i] = strconv.Itoa(d)
	}
	if n != len(values) {
		return nil, fmt.Errorf("npy: %d values do not fill shape %v", len(values), shape)
	}
	shapeText := strings.Join(dims, ", ")
	if len(shape) == 1 {
		shapeText += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shapeText)
	// Version 1.0: the header is padded with spaces and a newline so that the
	// data starts on a 64-byte boundary.
	preamble := len(npyMagic) + 2 + 2
	pad := 64 - (preamble+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	header += strings.Repeat(" ", pad) + "\n"
	var buf bytes.Buffer
	buf.WriteString(npyMagic)
	buf.Write([]byte{1, 0})
	binary.Write(&buf, binary.LittleEndian, uint16(len(header)))
	buf.WriteString(header)
	raw := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	buf.Write(raw)
	return buf.Bytes(), nil
}

var (
	npyDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// ReadNPY reads a float32 array from the .npy file at path (np.save writes
// them), and returns its shape and its values in row-major order.
func ReadNPY(path string) (shape []int, values []float32, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: cannot read it: %w", path, plainError(err))
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s is not a float32 .npy file: %s", path, fmt.Sprintf(format, args...))
	}
	if len(data) < 10 || string(data[:6]) != npyMagic {
		return nil, nil, bad("it does not start with the .npy magic string")
	}
	var headerLen, start int
	switch data[6] {
	case 1:
		headerLen, start = int(binary.LittleEndian.Uint16(data[8:10])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, nil, bad("truncated header")
		}
		headerLen, start = int(binary.LittleEndian.Uint32(data[8:12])), 12
	default:
		return nil, nil, bad("unknown format version %d", data[6])
	}
	if start+headerLen > len(data) {
		return nil, nil, bad("truncated header")
	}
	header := string(data[start : start+headerLen])
	body := data[start+headerLen:]

	descr := npyDescr.FindStringSubmatch(header)
	if descr == nil {
		return nil, nil, bad("no 'descr' in its header")
	}
	switch descr[1] {
	case "<f4", "=f4":
	case "<f8", "=f8":
		return nil, nil, fmt.Errorf("%s holds float64 values; save them as float32 (np.save(path, z.astype(np.float32)))", path)
	default:
		return nil, nil, bad("its values are %q, not little-endian float32 ('<f4')", descr[1])
	}
	if f := npyFortran.FindStringSubmatch(header); f == nil || f[1] != "False" {
		return nil, nil, bad("it is not in C (row-major) order; save np.ascontiguousarray(z)")
	}
	sh := npyShape.FindStringSubmatch(header)
	if sh == nil {
		return nil, nil, bad("no 'shape' in its header")
	}
	n := 1
	for _, f := range strings.Split(sh[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return nil, nil, bad("bad shape (%s)", sh[1])
		}
		shape = append(shape, d)
		if d > 0 && n > math.MaxInt32/d {
			return nil, nil, bad("shape (%s) is too large", sh[1])
		}
		n *= d
	}
	if len(body) != 4*n {
		return nil, nil, bad("shape (%s) needs %d bytes of values, the file has %d", sh[1], 4*n, len(body))
	}
	values = make([]float32, n)
	for i := range values {
		values[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return shape, values, nil
}

// ReadNoise reads noise vectors for the generator from an .npy file holding a
// float32 array of shape [N, 100].
func ReadNoise(path string, dim int) ([][]float32, error) {
	shape, values, err := ReadNPY(path)
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 || shape[1] != dim || shape[0] == 0 {
		return nil, fmt.Errorf("%s holds an array of shape %v; the generator takes noise of shape [N, %d] with N >= 1", path, shape, dim)
	}
	for i, v := range values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%s: value %d of noise vector %d is %g; noise must be finite (the generator is trained on [-1, 1])", path, i%dim, i/dim, v)
		}
	}
	z := make([][]float32, shape[0])
	for i := range z {
		z[i] = values[i*dim : (i+1)*dim]
	}
	return z, nil
}
