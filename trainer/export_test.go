package trainer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/tfops"
)

var (
	trainedOnce sync.Once
	trained     Checkpoint
	trainedErr  error
	trainedDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{trainedDir, classifierRoot} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// trainedCheckpoint is a checkpoint after 3 real training steps, shared by the
// tests of this file: moved weights and moving statistics, so a model that
// ignored them would give other images.
func trainedCheckpoint(t *testing.T) Checkpoint {
	t.Helper()
	trainedOnce.Do(func() {
		if trainedDir, trainedErr = os.MkdirTemp("", "mnistgan-export-test-"); trainedErr != nil {
			return
		}
		cfg := smallConfig(t, filepath.Join(trainedDir, "run"), 3)
		var res *Result
		if res, trainedErr = Run(context.Background(), cfg, Options{}); trainedErr == nil {
			trained = res.Checkpoint
		}
	})
	if trainedErr != nil {
		t.Fatalf("train a checkpoint to export: %v", trainedErr)
	}
	return trained
}

// maxDiff is the largest absolute difference of a and b, which must be as long.
func maxDiff(t *testing.T, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("comparing %d values with %d", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func TestExportedModelServesThroughTensorFlowsLoader(t *testing.T) {
	ckpt := trainedCheckpoint(t)
	dir := filepath.Join(t.TempDir(), "model")
	if err := Export(ckpt, dir, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the SavedModel lacks %s", f)
		}
	}

	// graft's LoadSavedModel is TF_LoadSessionFromSavedModel: TensorFlow's C++
	// loader, the one TF Serving uses.
	sm, err := tf.LoadSavedModel(dir, []string{"serve"}, nil)
	if err != nil {
		t.Fatalf("tf.LoadSavedModel: %v", err)
	}
	defer sm.Session.Close()
	want := map[string]struct {
		in, out           string
		inShape, outShape []int64
	}{
		"serving_default": {"z", "images", []int64{-1, 100}, []int64{-1, 28, 28, 1}},
		"discriminate":    {"images", "probability", []int64{-1, 28, 28, 1}, []int64{-1, 1}},
	}
	if len(sm.Signatures) != len(want) {
		t.Errorf("signatures %v, want serving_default and discriminate", sm.Signatures)
	}
	for name, w := range want {
		sig, ok := sm.Signatures[name]
		if !ok {
			t.Fatalf("no signature %s", name)
		}
		in, out := sig.Inputs[w.in], sig.Outputs[w.out]
		if len(sig.Inputs) != 1 || len(sig.Outputs) != 1 || in.Name == "" || out.Name == "" {
			t.Fatalf("%s: inputs %v outputs %v, want %s -> %s", name, sig.Inputs, sig.Outputs, w.in, w.out)
		}
		for _, x := range []struct {
			info tf.TensorInfo
			dims []int64
		}{{in, w.inShape}, {out, w.outShape}} {
			got, _ := x.info.Shape.ToSlice()
			if x.info.DType != tf.Float || tfops.FormatShape(got) != tfops.FormatShape(x.dims) {
				t.Errorf("%s: %s is %v %v, want float32 %v", name, x.info.Name, x.info.DType, got, x.dims)
			}
		}
	}
	// The variables are real variables, restored by the loader, not constants.
	if o := sm.Graph.Operation("generator/deconv1/kernel"); o == nil || o.Type() != "VarHandleOp" {
		t.Errorf("generator/deconv1/kernel is %v, want a VarHandleOp", o)
	}

	// The same noise through the SavedModel and through the checkpoint.
	z, err := Noise(70, 5) // more than one chunk
	if err != nil {
		t.Fatal(err)
	}
	served := runSignature(t, sm, "serving_default", "z", "images", z)
	ref, err := LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	fromCkpt, err := ref.Generate(z)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, flatten4(served.Value().([][][][]float32)), fromCkpt); d > 1e-5 {
		t.Errorf("SavedModel images differ from the checkpoint's by up to %g", d)
	}
	assertDigits(t, fromCkpt, len(z))

	p := runSignature(t, sm, "discriminate", "images", "probability", served)
	var probs []float32
	for _, row := range p.Value().([][]float32) {
		probs = append(probs, row...)
	}
	refProbs, err := ref.Discriminate(fromCkpt, len(z))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, probs, refProbs); d > 1e-5 {
		t.Errorf("SavedModel probabilities differ from the checkpoint's by up to %g", d)
	}
	for i, v := range probs {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("probability %d is %g", i, v)
		}
	}
}

// runSignature feeds x to a loaded model's signature and returns its output.
func runSignature(t *testing.T, sm *tf.SavedModel, name, in, out string, x any) *tf.Tensor {
	t.Helper()
	input, output, err := tfops.SignatureIO(sm, name, in, out)
	if err != nil {
		t.Fatal(err)
	}
	feed, ok := x.(*tf.Tensor)
	if !ok {
		if feed, err = tf.NewTensor(x); err != nil {
			t.Fatal(err)
		}
	}
	res, err := sm.Session.Run(map[tf.Output]*tf.Tensor{input: feed}, []tf.Output{output}, nil)
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return res[0]
}

// assertDigits checks n generated images: finite, in [0, 1], and not all alike.
func assertDigits(t *testing.T, pixels []float32, n int) {
	t.Helper()
	size := 28 * 28
	if len(pixels) != n*size {
		t.Fatalf("%d values for %d images", len(pixels), n)
	}
	for i, v := range pixels {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("pixel %d is %g, outside [0, 1]", i, v)
		}
	}
	if maxDiff(t, pixels[:size], pixels[size:2*size]) == 0 {
		t.Errorf("two different noise vectors gave the same image")
	}
}

func TestExportedNetworksRunInInferenceMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	if err := Export(trainedCheckpoint(t), dir, false); err != nil {
		t.Fatal(err)
	}
	m, err := LoadSavedModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	z, err := Noise(8, 11)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := m.Generate(z)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Generate(z)
	if err != nil {
		t.Fatal(err)
	}
	// Dropout would make two runs differ; batch statistics would make an image
	// depend on the others in its batch.
	if d := maxDiff(t, batch, again); d != 0 {
		t.Errorf("two runs on the same noise differ by %g: dropout is active", d)
	}
	alone, err := m.Generate(z[3:4])
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, alone, batch[3*28*28:4*28*28]); d > 1e-5 {
		t.Errorf("an image alone differs from the same image in a batch by %g: batch norm uses batch statistics", d)
	}
	p, err := m.Discriminate(batch, 8)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := m.Discriminate(batch[5*28*28:6*28*28], 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, p1, p[5:6]); d > 1e-6 {
		t.Errorf("the discriminator's probability depends on the batch (by %g)", d)
	}
}

func TestGenerateDrawsTheSameDigitsForTheSameSeed(t *testing.T) {
	ckpt := trainedCheckpoint(t)
	dir := t.TempDir()
	draw := func(name string, seed int64) []float32 {
		t.Helper()
		opts := GenerateOptions{Checkpoint: &ckpt, N: 5, Seed: seed,
			Out: filepath.Join(dir, name+".png"), Each: filepath.Join(dir, name), NPY: filepath.Join(dir, name+".npy")}
		res, err := Generate(opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.N != 5 || len(res.Files) != 3 {
			t.Errorf("generate reported %+v", res)
		}
		shape, values, err := ReadNPY(opts.NPY)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != 4 || shape[0] != 5 || shape[1] != 28 || shape[2] != 28 || shape[3] != 1 {
			t.Errorf("--npy shape %v, want [5 28 28 1]", shape)
		}
		return values
	}
	a, b, c := draw("a", 7), draw("b", 7), draw("c", 8)
	if d := maxDiff(t, a, b); d != 0 {
		t.Errorf("seed 7 twice: images differ by %g", d)
	}
	if maxDiff(t, a, c) == 0 {
		t.Errorf("seeds 7 and 8 drew the same images")
	}
	assertDigits(t, a, 5)

	grid := decodePNG(t, filepath.Join(dir, "a.png"))
	if b := grid.Bounds(); b.Dx() != (3*30+2)*2 || b.Dy() != (2*30+2)*2 { // 3 x 2 cells of 28 + gutter, scaled 2x
		t.Errorf("grid of 5 is %v", b)
	}
	for i := 0; i < 5; i++ {
		img := decodePNG(t, filepath.Join(dir, "a", fmt.Sprintf("digit-%04d.png", i)))
		if img.Bounds().Dx() != 28 || img.Bounds().Dy() != 28 {
			t.Errorf("digit %d is %v, want 28 x 28", i, img.Bounds())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "digit-0005.png")); err == nil {
		t.Errorf("--each wrote a sixth digit")
	}

	// Noise from a file: the same vectors give the same images.
	z, err := Noise(5, 7)
	if err != nil {
		t.Fatal(err)
	}
	var flat []float32
	for _, v := range z {
		flat = append(flat, v...)
	}
	raw, err := encodeNPY([]int{5, 100}, flat)
	if err != nil {
		t.Fatal(err)
	}
	zPath := filepath.Join(dir, "z.npy")
	if err := os.WriteFile(zPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "fromz.npy")
	if _, err := Generate(GenerateOptions{Checkpoint: &ckpt, Z: zPath, NPY: out}); err != nil {
		t.Fatal(err)
	}
	_, fromZ, err := ReadNPY(out)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, a, fromZ); d != 0 {
		t.Errorf("--z with seed 7's noise: images differ by %g", d)
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func TestExportNeverLeavesHalfAModel(t *testing.T) {
	ckpt := trainedCheckpoint(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "model")

	failing := errors.New("disk full (simulated)")
	beforeInstall = func(string) error { return failing }
	err := Export(ckpt, dir, false)
	beforeInstall = func(string) error { return nil }
	if !errors.Is(err, failing) {
		t.Fatalf("export with a failing last step: %v", err)
	}
	assertOnly(t, parent)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed export left %s behind", dir)
	}

	if err := Export(ckpt, dir, false); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, "saved_model.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Export(ckpt, dir, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("export over an existing model: %v, want a refusal naming --force", err)
	}
	// A failed --force leaves the old model as it was.
	// The marker is a file of the old model's kind (a shard of a bundle
	// split in two), which --force may replace.
	marker := filepath.Join(dir, "variables", "variables.data-00001-of-00002")
	os.WriteFile(marker, nil, 0o644)
	beforeInstall = func(string) error { return failing }
	err = Export(ckpt, dir, true)
	beforeInstall = func(string) error { return nil }
	if !errors.Is(err, failing) {
		t.Fatalf("--force with a failing last step: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "saved_model.pb")); string(now) != string(old) {
		t.Errorf("a failed --force changed the old model")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("a failed --force touched the old model's files: %v", err)
	}
	assertOnly(t, parent, "model")

	// A successful --force replaces the model whole.
	if err := Export(ckpt, dir, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--force kept a file of the old model")
	}
	assertOnly(t, parent, "model")
	m, err := LoadSavedModel(dir)
	if err != nil {
		t.Fatalf("the replaced model does not load: %v", err)
	}
	m.Close()
}

// assertOnly checks that dir holds exactly the named entries: no temporary or
// set-aside directories.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestExportRefusesToOverwriteWhatIsNotAModel(t *testing.T) {
	ckpt := trainedCheckpoint(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	other := filepath.Join(dir, "photos")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "cat.jpg"), []byte("x"), 0o644)
	tests := []struct {
		dir   string
		force bool
		want  string
	}{
		{file, true, "is a file"},
		{other, false, "already exists; choose another directory"},
		{other, true, "is not a SavedModel"},
		{filepath.Join(file, "model"), false, "not a directory"},
	}
	for _, tc := range tests {
		err := Export(ckpt, tc.dir, tc.force)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "--savedmodel "+tc.dir) {
			t.Errorf("export to %s (force %v): %v, want an error about --savedmodel %s saying %q", tc.dir, tc.force, err, tc.dir, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(other, "cat.jpg")); err != nil {
		t.Errorf("--force removed what was there: %v", err)
	}
	// An empty directory (say, made by hand for the model) may be replaced,
	// with --force, which the refusal without it names.
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Export(ckpt, empty, false); err == nil || !strings.Contains(err.Error(), "(empty); add --force") {
		t.Errorf("export onto an empty directory without --force: %v, want a hint at --force", err)
	}
	if err := Export(ckpt, empty, true); err != nil {
		t.Errorf("--force onto an empty directory: %v", err)
	}
	// A model with the user's notes beside it: --force would delete them.
	notes := filepath.Join(empty, "notes.txt")
	if err := os.WriteFile(notes, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Export(ckpt, empty, true); err == nil || !strings.Contains(err.Error(), "holds notes.txt, which mnistgan did not write") {
		t.Errorf("--force onto a model with notes.txt in it: %v, want a refusal naming notes.txt", err)
	}
	if _, err := os.Stat(notes); err != nil {
		t.Errorf("--force removed the user's file: %v", err)
	}
	// ...and deeper down, among the variables.
	if err := os.Rename(notes, filepath.Join(empty, "variables", "notes.txt")); err != nil {
		t.Fatal(err)
	}
	if err := Export(ckpt, empty, true); err == nil || !strings.Contains(err.Error(), "holds variables/notes.txt") {
		t.Errorf("--force onto a model with variables/notes.txt in it: %v, want a refusal naming it", err)
	}
}
