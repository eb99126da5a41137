package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mnistgan/mnistgan/trainer"
)

func TestEvalFromTheCommandLine(t *testing.T) {
	run := trainedRun(t)
	data := realData(t)
	dir := t.TempDir()
	clf := filepath.Join(dir, "classifier")

	// No classifier yet: one line saying how to make it.
	code, _, errOut := mnistgan(t, "eval", "--run", run, "--classifier", clf, "--data", data)
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "mnistgan eval --train-classifier") {
		t.Fatalf("eval without a classifier: exit %d, %q", code, errOut)
	}

	// A short classifier: the plumbing, not the accuracy (trainer tests that).
	code, out, errOut := mnistgan(t, "eval", "--train-classifier", "--classifier-steps", "150", "--classifier", clf, "--data", data)
	if code != 0 {
		t.Fatalf("eval --train-classifier: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "classifier saved to "+clf) || !strings.Contains(out, "test digits right") {
		t.Errorf("training output: %s", out)
	}
	code, _, errOut = mnistgan(t, "eval", "--train-classifier", "--classifier", clf, "--data", data)
	if code != 1 || !strings.Contains(errOut, "add --force") {
		t.Errorf("training over a classifier: exit %d, %q", code, errOut)
	}

	jsonPath := filepath.Join(dir, "eval.json")
	code, out, errOut = mnistgan(t, "eval", "--run", run, "--n", "300", "--seed", "5", "--classifier", clf, "--data", data, "--json", jsonPath)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"generated", "real (held out)", "Inception Score", "Frechet distance", "classified as 9", "written to " + jsonPath} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
	var res trainer.EvalResult
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Generated.Images != 300 || res.HeldOut.Images != 10000 || res.Seed != 5 || res.Step != 2 ||
		res.Generated.InceptionScore < 1 || res.Generated.InceptionScore > 10 || res.HeldOut.InceptionScore <= res.Generated.InceptionScore {
		t.Errorf("JSON: %+v", res)
	}

	// Without --json, a run's evaluation goes into the run: RUN/eval/ckpt-N.json.
	if code, _, errOut := mnistgan(t, "eval", "--run", run, "--n", "50", "--classifier", clf, "--data", data); code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(run, "eval", "ckpt-00000002.json")); err != nil {
		t.Errorf("default JSON: %v", err)
	}

	// A training split too small for the held-out ceiling, with the real
	// test split: refused before the digits are generated.
	small := smallData(t)
	for _, f := range []string{"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		if err := os.Symlink(filepath.Join(data, f), filepath.Join(small, f)); err != nil {
			t.Fatal(err)
		}
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"eval"}, "what to evaluate?"},
		{[]string{"eval", "--run", run, "--n", "1", "--classifier", clf}, "--n 1: evaluate 2 to"},
		{[]string{"eval", "--run", run, "--model", dir, "--classifier", clf}, "--model and --run both name a model"},
		{[]string{"eval", "--run", run, "--force", "--classifier", clf}, "--force is about training the classifier"},
		{[]string{"eval", "--run", run, "--classifier-steps", "9", "--classifier", clf}, "--classifier-steps is about training"},
		{[]string{"eval", "--train-classifier", "--classifier", "/proc/mnistgan-classifier"}, "--classifier /proc/mnistgan-classifier: cannot write in /proc"},
		{[]string{"eval", "--run", run, "--classifier", clf, "--data", data, "--json", run}, "--json " + run + ": " + run + " is a directory"},
		{[]string{"eval", "--run", run, "--classifier", clf, "--data", small}, "the training split has 512 images; the held-out ceiling needs its last 10000"},
		{[]string{"eval", "--train-classifier", "--threads", "5000", "--classifier", filepath.Join(dir, "new-classifier")}, "--threads 5000: must be 0 (one per core) up to 1024"},
		{[]string{"eval", "--run", filepath.Join(dir, "nothing"), "--classifier", clf}, "--run"},
		{[]string{"eval", "--model", dir, "--classifier", clf, "--data", data}, "is not a TensorFlow SavedModel"},
		{[]string{"eval", "--run", run, "--classifier", run, "--data", data}, "no classifier in " + run},
		{[]string{"eval", "--run", run, "--classifier", clf, "--data", data, "--json", filepath.Join(run, "run.json", "x.json")}, "--json"},
	}
	for _, b := range bad {
		code, out, errOut := mnistgan(t, b.args...)
		if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, b.want) {
			t.Errorf("%v: exit %d, %q; want one line with %q", b.args, code, errOut, b.want)
		}
		if strings.Contains(out, "generated in") {
			t.Errorf("%v: refused only after generating the digits:\n%s", b.args, out)
		}
	}
}
