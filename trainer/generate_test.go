package trainer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/tfops"
)

func TestGenerateChecksEveryOutputBeforeWritingAny(t *testing.T) {
	ckpt := trainedCheckpoint(t)
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep.png")
	if err := os.WriteFile(keep, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.npy")
	if err := os.Symlink(keep, link); err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(dir, "new")
	for _, tc := range []struct {
		name string
		opts GenerateOptions
		want string
	}{
		// Nothing can create a file in /proc, not even root.
		{"an unwritable --npy", GenerateOptions{Out: keep, Each: filepath.Join(newDir, "each"), NPY: "/proc/digits.npy"}, "--npy /proc/digits.npy: cannot write in /proc"},
		{"one path twice", GenerateOptions{Out: keep, NPY: keep}, "--out and --npy both name " + keep},
		{"one file by two names", GenerateOptions{Out: keep, NPY: link}, "--out " + keep + " and --npy " + link + " are the same file"},
		{"--each a file", GenerateOptions{Out: filepath.Join(newDir, "x.png"), Each: keep}, "--each " + keep + ": " + keep + " is a file"},
	} {
		tc.opts.Checkpoint, tc.opts.N, tc.opts.Seed = &ckpt, 4, 1
		_, err := Generate(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	// A model that fails to load leaves no directory for its outputs either.
	_, err := Generate(GenerateOptions{Model: filepath.Join(dir, "no-model"), N: 4, Seed: 1, Out: filepath.Join(newDir, "x.png")})
	if err == nil {
		t.Errorf("generate with a missing model succeeded")
	}
	if got, err := os.ReadFile(keep); err != nil || string(got) != "precious" {
		t.Errorf("keep.png now holds %q (%v): a failed generate replaced it", got, err)
	}
	if _, err := os.Stat(newDir); err == nil {
		t.Errorf("a failed generate left %s behind", newDir)
	}
}

// wrongShapeModel writes a SavedModel with mnistgan's signatures whose
// generator returns 10 x 10 images.
func wrongShapeModel(t *testing.T, dir string) {
	t.Helper()
	root := op.NewScope()
	vars := tfops.NewVars(root, 1)
	pass := tfops.NewPass("p", vars, false, op.Const(root.SubScope("step"), int64(0)))
	scale := tfops.NewCtx(root.SubScope("scale"), pass, "scale").Variable("w", []int64{1}, true, tfops.Ones)
	z := op.Placeholder(root.SubScope("z"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, graphs.NoiseDim)))
	images := op.Reshape(root.SubScope("images"), op.Mul(root.SubScope("scaled"), z, scale), op.Const(root.SubScope("shape"), []int64{-1, 10, 10, 1}))
	in := op.Placeholder(root.SubScope("in"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 28, 28, 1)))
	prob := op.Mean(root.SubScope("prob"), in, op.Const(root.SubScope("axes"), []int32{1, 2}), op.MeanKeepDims(false))
	saver, err := tfops.NewSaver(root, vars.All())
	if err != nil {
		t.Fatal(err)
	}
	g, err := root.Finalize()
	if err != nil {
		t.Fatal(tfops.Err(root))
	}
	sess, err := tfops.NewSession(g, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, tfops.InitOps(vars.All())); err != nil {
		t.Fatal(err)
	}
	sigs := map[string]tfops.Signature{
		graphs.GenerateSignature:     {Inputs: map[string]tf.Output{graphs.NoiseKey: z}, Outputs: map[string]tf.Output{graphs.ImagesKey: images}},
		graphs.DiscriminateSignature: {Inputs: map[string]tf.Output{graphs.ImagesKey: in}, Outputs: map[string]tf.Output{graphs.ProbabilityKey: prob}},
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tfops.WriteSavedModel(dir, g, sess, saver, sigs); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateRefusesAModelThatDrawsNoMNISTDigits(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	wrongShapeModel(t, model)
	each := filepath.Join(dir, "each")
	_, err := Generate(GenerateOptions{Model: model, N: 4, Seed: 1, Each: each})
	if err == nil || !strings.Contains(err.Error(), "want 4 images of 28 x 28 x 1") {
		t.Errorf("generate with 10 x 10 images: %v, want an error about their shape", err)
	}
	if _, err := os.Stat(each); err == nil {
		t.Errorf("the failed generate left %s", each)
	}
}

func TestACheckpointCutShortIsRefusedOnOpen(t *testing.T) {
	ckpt := trainedCheckpoint(t)
	dir := filepath.Join(t.TempDir(), filepath.Base(ckpt.Dir))
	if err := os.CopyFS(dir, os.DirFS(ckpt.Dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(dir); err != nil {
		t.Fatalf("the intact copy: %v", err)
	}
	// Half the weights gone: the generator's tensors may still all be there,
	// so TensorFlow restoring the inference graph alone would not notice.
	data := filepath.Join(dir, bundleFiles[1])
	st, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(data, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("is damaged: %s has %d bytes, %d when it was written", bundleFiles[1], st.Size()/2, st.Size())) {
		t.Errorf("a checkpoint cut short: %v, want it refused as damaged", err)
	}
}
