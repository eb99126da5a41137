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
	if err := checkGenerateTargets(opts); err != nil {
		return nil, err
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

// checkGenerateTargets fails on an output that could not be written, before
// the model is loaded; it creates nothing.
func checkGenerateTargets(opts GenerateOptions) error {
	seen := map[string]string{}
	var existing []namedInfo
	for _, out := range []struct {
		flag, path, example string
		dir                 bool
	}{
		{"--out", opts.Out, "digits.png", false},
		{"--npy", opts.NPY, "digits.npy", false},
		{"--each", opts.Each, "", true},
	} {
		if out.path == "" {
			continue
		}
		st, statErr := os.Stat(out.path)
		if statErr == nil && st.IsDir() && !out.dir {
			return fmt.Errorf("%s %s is a directory; give a file name, e.g. %s", out.flag, out.path, filepath.Join(out.path, out.example))
		}
		if err := checkCreatable(out.path, out.dir); err != nil {
			return fmt.Errorf("%s %s: %w", out.flag, out.path, err)
		}
		abs, err := filepath.Abs(out.path)
		if err != nil {
			return fmt.Errorf("%s %s: %w", out.flag, out.path, err)
		}
		if other, ok := seen[abs]; ok {
			return fmt.Errorf("%s and %s both name %s; give each output its own path", other, out.flag, out.path)
		}
		seen[abs] = out.flag
		// The same file under two names (a link to it) is one path too.
		if statErr == nil {
			for _, e := range existing {
				if os.SameFile(st, e.info) {
					return fmt.Errorf("%s %s and %s %s are the same file; give each output its own path", e.flag, e.path, out.flag, out.path)
				}
			}
			existing = append(existing, namedInfo{out.flag, out.path, st})
		}
	}
	return nil
}

type namedInfo struct {
	flag, path string
	info       os.FileInfo
}

// writeGenerated writes n images of pixels where opts say, all or nothing:
// if one output fails, none is written and no file there before is touched.
func writeGenerated(opts GenerateOptions, pixels []float32, n int) (*Generated, error) {
	res := &Generated{N: n}
	side := mnist.Side
	var files fileSet
	defer files.discard()
	if opts.Out != "" {
		cols := int(math.Ceil(math.Sqrt(float64(n))))
		grid, err := GridPNG(pixels, n, side, cols)
		if err != nil {
			return nil, err
		}
		if err := files.add(opts.Out, grid); err != nil {
			return nil, fmt.Errorf("--out: %w", err)
		}
		res.Files = append(res.Files, opts.Out)
	}
	if opts.Each != "" {
		if err := files.mkdirAll(opts.Each); err != nil {
			return nil, fmt.Errorf("--each: %w", err)
		}
		for i := 0; i < n; i++ {
			img, err := digitPNG(pixels[i*side*side : (i+1)*side*side])
			if err != nil {
				return nil, err
			}
			if err := files.add(filepath.Join(opts.Each, fmt.Sprintf("digit-%04d.png", i)), img); err != nil {
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
		if err := files.add(opts.NPY, raw); err != nil {
			return nil, fmt.Errorf("--npy: %w", err)
		}
		res.Files = append(res.Files, opts.NPY)
	}
	if err := files.commit(); err != nil {
		return nil, err
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
