package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mnistgan/mnistgan/trainer"
)

var (
	tinyOnce sync.Once
	tinyRun  string
	tinyErr  string
	tinyDir  string
)

func TestMain(m *testing.M) {
	// Re-executed by startMnistgan: be the program, not its tests.
	switch os.Getenv(asMainEnv) {
	case "1":
		os.Exit(run(os.Args, os.Stdout, os.Stderr))
	case "log-level": // for TestTensorFlowStaysQuietUnlessAsked
		fmt.Printf("TF_CPP_MIN_LOG_LEVEL=%s\n", os.Getenv("TF_CPP_MIN_LOG_LEVEL"))
		os.Exit(0)
	}
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

// trainedRun is a 2-step run made with `mnistgan train`, shared by this file's
// tests; its checkpoint is ckpt-00000002.
func trainedRun(t *testing.T) string {
	t.Helper()
	data := realData(t)
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mnistgan-cmd-test-")
		if err != nil {
			tinyErr = err.Error()
			return
		}
		tinyDir, tinyRun = dir, filepath.Join(dir, "run")
		if code, _, errOut := mnistgan(t, "train", "--out", tinyRun, "--data", data, "--subset", "256", "--batch", "4", "--steps", "2"); code != 0 {
			tinyErr = errOut
		}
	})
	if tinyErr != "" {
		t.Fatalf("train: %s", tinyErr)
	}
	return tinyRun
}

// readImages reads a --npy file of generated images.
func readImages(t *testing.T, path string) []float32 {
	t.Helper()
	shape, values, err := trainer.ReadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 4 || shape[1] != 28 || shape[2] != 28 || shape[3] != 1 {
		t.Fatalf("%s has shape %v, want [N 28 28 1]", path, shape)
	}
	return values
}

func TestExportThenGenerateFromTheCommandLine(t *testing.T) {
	run := trainedRun(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	code, out, errOut := mnistgan(t, "export", "--savedmodel", model, "--run", run)
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"ckpt-00000002", "serving_default (z -> images)", "discriminate (images -> probability)"} {
		if !strings.Contains(out, want) {
			t.Errorf("export output lacks %q: %s", want, out)
		}
	}

	gen := func(name string, args ...string) []float32 {
		t.Helper()
		npy := filepath.Join(dir, name+".npy")
		code, out, errOut := mnistgan(t, append(append([]string{"generate"}, args...), "--npy", npy)...)
		if code != 0 {
			t.Fatalf("generate %v: exit %d: %s", args, code, errOut)
		}
		if !strings.Contains(out, "wrote 6 digits from ") {
			t.Errorf("generate output: %s", out)
		}
		return readImages(t, npy)
	}
	ckpt := filepath.Join(run, "checkpoints", "ckpt-00000002")
	fromModel := gen("model", "--model", model, "--n", "6", "--seed", "3", "--out", filepath.Join(dir, "grid.png"), "--each", filepath.Join(dir, "each"))
	fromCkpt := gen("ckpt", "--checkpoint", ckpt, "--n", "6", "--seed", "3")
	fromRun := gen("run", "--run", run, "--n", "6", "--seed", "3")
	fromPrefix := gen("prefix", "--checkpoint", filepath.Join(ckpt, "variables"), "--n", "6", "--seed", "3")
	otherSeed := gen("other", "--model", model, "--n", "6", "--seed", "4")

	diff := func(a, b []float32) float64 {
		if len(a) != len(b) {
			t.Fatalf("%d values against %d", len(a), len(b))
		}
		d := 0.0
		for i := range a {
			d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		}
		return d
	}
	if d := diff(fromModel, fromCkpt); d > 1e-5 {
		t.Errorf("the SavedModel's digits differ from the checkpoint's by up to %g", d)
	}
	if d := diff(fromCkpt, fromRun) + diff(fromCkpt, fromPrefix); d != 0 {
		t.Errorf("--checkpoint DIR, DIR/variables and --run give different digits (by %g)", d)
	}
	if diff(fromModel, otherSeed) == 0 {
		t.Errorf("seeds 3 and 4 gave the same digits")
	}
	for _, f := range []string{"grid.png", "each/digit-0000.png", "each/digit-0005.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("generate did not write %s", f)
		}
	}

	// An existing model is replaced only with --force.
	if code, _, errOut := mnistgan(t, "export", "--savedmodel", model, "--run", run); code == 0 || !strings.Contains(errOut, "add --force") {
		t.Errorf("export over a model: exit %d, %q", code, errOut)
	}
	if code, _, errOut := mnistgan(t, "export", "--savedmodel", model, "--checkpoint", ckpt, "--force"); code != 0 {
		t.Errorf("export --force: exit %d, %s", code, errOut)
	}
	if d := diff(fromModel, gen("again", "--model", model, "--n", "6", "--seed", "3")); d != 0 {
		t.Errorf("the replaced model draws other digits (by %g)", d)
	}
}

func TestExportAndGenerateRefuseBadInput(t *testing.T) {
	run := trainedRun(t)
	ckpt := filepath.Join(run, "checkpoints", "ckpt-00000002")
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }

	model := path("model")
	if code, _, errOut := mnistgan(t, "export", "--savedmodel", model, "--run", run); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	file := path("a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	empty := path("empty")
	os.Mkdir(empty, 0o755)
	photos := path("photos")
	os.Mkdir(photos, 0o755)
	os.WriteFile(filepath.Join(photos, "cat.jpg"), []byte("x"), 0o644)
	junk := path("junk-model")
	os.MkdirAll(filepath.Join(junk, "variables"), 0o755)
	os.WriteFile(filepath.Join(junk, "saved_model.pb"), []byte("not a protocol buffer"), 0o644)
	os.WriteFile(filepath.Join(junk, "variables", "variables.index"), nil, 0o644)
	// Checkpoints broken three ways: a bad index, a truncated data file, no state.
	broken := func(name string, spoil func(dir string)) string {
		d := path(name)
		os.MkdirAll(d, 0o755)
		for _, f := range []string{"variables.index", "variables.data-00000-of-00001", "state.json"} {
			b, err := os.ReadFile(filepath.Join(ckpt, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, f), b, 0o644)
		}
		spoil(d)
		return d
	}
	// Garbage of the index's own size: past the size check, for TensorFlow to find.
	badIndex := broken("bad-index", func(d string) {
		st, _ := os.Stat(filepath.Join(d, "variables.index"))
		os.WriteFile(filepath.Join(d, "variables.index"), bytes.Repeat([]byte("g"), int(st.Size())), 0o644)
	})
	truncated := broken("truncated", func(d string) { os.Truncate(filepath.Join(d, "variables.data-00000-of-00001"), 1000) })
	noState := broken("no-state", func(d string) { os.Remove(filepath.Join(d, "state.json")) })
	png := path("out.png")

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"export", "--run", run}, "--savedmodel DIR is needed"},
		{[]string{"export", "--savedmodel", path("m")}, "which model? add --run"},
		{[]string{"export", "--savedmodel", path("m"), "--run", path("nope")}, "--run " + path("nope") + " does not exist"},
		{[]string{"export", "--savedmodel", path("m"), "--run", empty}, "no checkpoint"},
		{[]string{"export", "--savedmodel", path("m"), "--run", run, "--checkpoint", ckpt}, "give one of them"},
		{[]string{"export", "--savedmodel", path("m"), "--checkpoint", badIndex}, "checkpoint " + badIndex + ": restore variables"},
		{[]string{"export", "--savedmodel", path("m"), "--checkpoint", truncated}, "is damaged: variables.data-00000-of-00001 has 1000 bytes"},
		{[]string{"export", "--savedmodel", path("m"), "--checkpoint", noState}, "state.json"},
		{[]string{"export", "--savedmodel", path("m"), "--checkpoint", run}, "is a run directory; use --run"},
		{[]string{"export", "--savedmodel", path("m"), "--checkpoint", file}, "is a file"},
		{[]string{"export", "--savedmodel", model, "--run", run}, "already holds a SavedModel; add --force"},
		{[]string{"export", "--savedmodel", file, "--run", run, "--force"}, "is a file"},
		{[]string{"export", "--savedmodel", photos, "--run", run, "--force"}, "is not a SavedModel"},
		{[]string{"export", "--savedmodel", filepath.Join(file, "m"), "--run", run}, "not a directory"},
		{[]string{"export", "--savedmodel", path("m"), "--run", run, "stray"}, `unexpected argument "stray"`},
		{[]string{"generate", "--out", png}, "which model?"},
		{[]string{"generate", "--model", empty, "--out", png}, "has no saved_model.pb"},
		{[]string{"generate", "--model", run, "--out", png}, "is not a TensorFlow SavedModel"},
		{[]string{"generate", "--model", path("nope"), "--out", png}, "does not exist"},
		{[]string{"generate", "--model", junk, "--out", png}, "TensorFlow cannot load it"},
		{[]string{"generate", "--model", model, "--run", run, "--out", png}, "give one of them"},
		{[]string{"generate", "--model", model}, "nothing to write"},
		{[]string{"generate", "--model", model, "--n", "0", "--out", png}, "--n 0"},
		{[]string{"generate", "--model", model, "--n", "5000", "--out", png}, "--n 5000"},
		{[]string{"generate", "--model", model, "--z", file, "--out", png}, "is not a float32 .npy file"},
		{[]string{"generate", "--model", model, "--z", file, "--seed", "2", "--out", png}, "drop them"},
		{[]string{"generate", "--model", model, "--out", filepath.Join(file, "x.png")}, "a-file is not a directory"},
		{[]string{"generate", "--model", model, "--out", dir}, "is a directory"},
		{[]string{"generate", "--checkpoint", badIndex, "--out", png}, "is it a complete checkpoint"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errOut := mnistgan(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure")
			}
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "mnistgan: ") {
				t.Errorf("stderr is not one 'mnistgan: ...' line:\n%s", errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stderr shows a panic:\n%s", errOut)
			}
		})
	}

	// Nothing failed half-way: no model, no grid, no stray files; the model and
	// the directory that was not a model are as they were.
	for _, p := range []string{path("m"), png} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a failed command left %s", p)
		}
	}
	if _, err := os.Stat(filepath.Join(photos, "cat.jpg")); err != nil {
		t.Errorf("export --force removed a directory that was not a model")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("a failed export left %s", e.Name())
		}
	}
	if code, _, errOut := mnistgan(t, "generate", "--model", model, "--n", "2", "--out", png); code != 0 {
		t.Errorf("the model no longer serves after the failed exports: %s", errOut)
	}
}
