package tfops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// scaleModel is the smallest model with a variable: y = x * w, w [3] starting
// at ones.
func scaleModel(t *testing.T) (*tf.Graph, *Saver, *Variable, Signature) {
	t.Helper()
	root := op.NewScope()
	vars := NewVars(root, 1)
	x := op.Placeholder(root.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 3)))
	pass := NewPass("p", vars, false, op.Const(root.SubScope("step"), int64(0)))
	w := NewCtx(root.SubScope("scale"), pass, "scale").Variable("w", []int64{3}, true, Ones)
	y := op.Mul(root.SubScope("y"), x, w)
	saver, err := NewSaver(root, vars.All())
	if err != nil {
		t.Fatal(err)
	}
	g, err := root.Finalize()
	if err != nil {
		t.Fatal(Err(root))
	}
	sig := Signature{Inputs: map[string]tf.Output{"x": x}, Outputs: map[string]tf.Output{"y": y}}
	return g, saver, vars.All()[0], sig
}

func TestSavedModelRoundTripsThroughTensorFlowsLoader(t *testing.T) {
	g, saver, w, sig := scaleModel(t)
	sess, err := NewSession(g, SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// Give the variable a value no initializer would: the loader must restore it.
	value, _ := tf.NewTensor([]float32{2, -3, 0.5})
	assign := op.NewScopeWithGraph(g).SubScope("test_assign")
	in := op.Placeholder(assign, tf.Float)
	set := op.AssignVariableOp(assign, w.Handle, in)
	if _, err := sess.Run(map[tf.Output]*tf.Tensor{in: value}, nil, []*tf.Operation{set}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteSavedModel(dir, g, sess, saver, map[string]Signature{"serving_default": sig}); err != nil {
		t.Fatal(err)
	}

	m, err := LoadSavedModel(dir, SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Session.Close()
	info := m.Signatures["serving_default"]
	if got := info.Inputs["x"]; got.Name != "x/Placeholder:0" || got.DType != tf.Float {
		t.Errorf("input x: %+v", got)
	}
	if dims, _ := info.Outputs["y"].Shape.ToSlice(); FormatShape(dims) != "N x 3" {
		t.Errorf("output y has shape %v, want [-1 3]", dims)
	}
	x, y, err := SignatureIO(m, "serving_default", "x", "y")
	if err != nil {
		t.Fatal(err)
	}
	feed, _ := tf.NewTensor([][]float32{{1, 1, 1}, {2, 2, 2}})
	out, err := m.Session.Run(map[tf.Output]*tf.Tensor{x: feed}, []tf.Output{y}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := out[0].Value().([][]float32)
	want := [][]float32{{2, -3, 0.5}, {4, -6, 1}}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("y = %v, want %v: the variable was not restored", got, want)
			}
		}
	}

	if _, _, err := SignatureIO(m, "predict", "x", "y"); err == nil || !strings.Contains(err.Error(), "serving_default") {
		t.Errorf("unknown signature: %v, want an error listing serving_default", err)
	}
	if _, _, err := SignatureIO(m, "serving_default", "z", "y"); err == nil || !strings.Contains(err.Error(), `no input "z"`) {
		t.Errorf("unknown input: %v", err)
	}
}

func TestLoadSavedModelRejectsWhatIsNotOne(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	junk := filepath.Join(dir, "junk")
	os.MkdirAll(filepath.Join(junk, "variables"), 0o755)
	os.WriteFile(filepath.Join(junk, "saved_model.pb"), []byte("not a protocol buffer"), 0o644)
	os.WriteFile(filepath.Join(junk, "variables", "variables.index"), nil, 0o644)
	novars := filepath.Join(dir, "novars")
	os.MkdirAll(novars, 0o755)
	os.WriteFile(filepath.Join(novars, "saved_model.pb"), nil, 0o644)
	tests := []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "does not exist"},
		{file, "is a file"},
		{dir, "has no saved_model.pb"},
		{novars, "has no variables/variables.index"},
		{junk, "TensorFlow cannot load it"},
	}
	for _, tc := range tests {
		_, err := LoadSavedModel(tc.dir, SessionConfig{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("load %s: %v, want one line saying %q", tc.dir, err, tc.want)
		}
	}
}

func TestDTypeNameIsTensorFlowsName(t *testing.T) {
	for dt, want := range map[tf.DataType]string{tf.Float: "float", tf.Double: "double", tf.Int64: "int64", tf.Uint8: "uint8"} {
		if got := DTypeName(dt); got != want {
			t.Errorf("DTypeName(%d) = %q, want %q", dt, got, want)
		}
	}
}
