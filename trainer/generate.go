package trainer

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/mnist"
)

// MaxGenerate bounds --n: a grid of 4096 digits is already a 3904-pixel square.
const MaxGenerate = 4096

// GenerateOptions say which model makes the digits, from what noise, and
// where they go. Exactly one of Model and Checkpoint is set; at least one of
// Out, Each and NPY.
type GenerateOptions struct {
	Model      string      // a SavedModel directory (mnistgan export)
	Checkpoint *Checkpoint // or a training checkpoint

	N    int    // digits to draw, with noise keyed on Seed...
	Seed int64  //
	Z    string // ...or an .npy file of noise vectors [N, 100], float32

	Out  string // a grid of all the digits (PNG)
	Each string // a directory for one 28 x 28 PNG per digit
	NPY  string // the images as a float32 .npy array [N, 28, 28, 1]
}

// Generated reports what Generate wrote.
type Generated struct {
	N     int
	Files []string
}

// Generate draws digits with a trained generator and writes them as opts say.
// The noise comes from TensorFlow's stateless RNG keyed on the seed (or from
// opts.Z), so the same seed and model give the same images.
func Generate(opts GenerateOptions) (*Generated, error) {
	if (opts.Model == "") == (opts.Checkpoint == nil) {
		return nil, fmt.Errorf("generate: give a SavedModel or a checkpoint, not both or neither")
	}
	if opts.Out == "" && opts.Each == "" && opts.NPY == "" {
		return nil, fmt.Errorf("nothing to write: add --out FILE.png for a grid, --each DIR for one PNG per digit, or --npy FILE.npy for the values")
	}
	var z [][]float32
	var err error
	if opts.Z != "" {
		if z, err = ReadNoise(opts.Z, graphs.NoiseDim); err != nil {
			return nil, fmt.Errorf("--z %w", err)
		}
		if len(z) > MaxGenerate {
			return nil, fmt.Errorf("--z %s holds %d noise vectors; at most %d at a time", opts.Z, len(z), MaxGenerate)
		}
	} else if opts.N < 1 || opts.N > MaxGenerate {
		return nil, fmt.Errorf("--n %d: draw between 1 and %d digits", opts.N, MaxGenerate)
	}
	// Fail on an unwritable destination before the model is loaded.
	for _, out := range []struct{ flag, path, dir, example string }{
		{"--out", opts.Out, filepath.Dir(opts.Out), "digits.png"},
		{"--npy", opts.NPY, filepath.Dir(opts.NPY), "digits.npy"},
		{"--each", opts.Each, opts.Each, ""},
	} {
		if out.path == "" {
			continue
		}
		if st, err := os.Stat(out.path); err == nil && st.IsDir() && out.example != "" {
			return nil, fmt.Errorf("%s %s is a directory; give a file name, e.g. %s", out.flag, out.path, filepath.Join(out.path, out.example))
		}
		if err := os.MkdirAll(out.dir, 0o755); err != nil {
			return nil, fmt.Errorf("%s %s: cannot create directory %s: %w", out.flag, out.path, out.dir, plainError(err))
		}
	}

	var model *Model
	if opts.Model != "" {
		if model, err = LoadSavedModel(opts.Model); err != nil {
			return nil, fmt.Errorf("--model %w", err)
		}
	} else if model, err = LoadCheckpoint(*opts.Checkpoint); err != nil {
		return nil, err
	}
	defer model.Close()
	if z == nil {
		if z, err = Noise(opts.N, opts.Seed); err != nil {
			return nil, err
		}
	}
	pixels, err := model.Generate(z)
	if err != nil {
		return nil, err
	}
	return writeGenerated(opts, pixels, len(z))
}

// writeGenerated writes n images of pixels where opts say.
func writeGenerated(opts GenerateOptions, pixels []float32, n int) (*Generated, error) {
	res := &Generated{N: n}
	side := mnist.Side
	if opts.Out != "" {
		cols := int(math.Ceil(math.Sqrt(float64(n))))
		grid, err := GridPNG(pixels, n, side, cols)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(opts.Out, grid); err != nil {
			return nil, fmt.Errorf("--out: %w", err)
		}
		res.Files = append(res.Files, opts.Out)
	}
	if opts.Each != "" {
		for i := 0; i < n; i++ {
			img, err := digitPNG(pixels[i*side*side : (i+1)*side*side])
			if err != nil {
				return nil, err
			}
			path := filepath.Join(opts.Each, fmt.Sprintf("digit-%04d.png", i))
			if err := writeFileAtomic(path, img); err != nil {
				return nil, fmt.Errorf("--each: %w", err)
			}
		}
		res.Files = append(res.Files, filepath.Join(opts.Each, "digit-*.png"))
	}
	if opts.NPY != "" {
		raw, err := encodeNPY([]int{n, side, side, 1}, pixels)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(opts.NPY, raw); err != nil {
			return nil, fmt.Errorf("--npy: %w", err)
		}
		res.Files = append(res.Files, opts.NPY)
	}
	return res, nil
}

// digitPNG renders one 28 x 28 image (values in [0, 1]) at its own size, white
// on black as MNIST is.
func digitPNG(pixels []float32) ([]byte, error) {
	side := mnist.Side
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i, v := range pixels {
		img.Pix[i] = toByte(v)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode digit: %w", err)
	}
	return buf.Bytes(), nil
}
