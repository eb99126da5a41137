package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mnistgan runs the command line in-process and returns exit status and output.
func mnistgan(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"mnistgan"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// realData is the MNIST copy `make data` makes.
func realData(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "data", "mnist"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Fatalf("run `make data` first: %v", err)
	}
	return dir
}

func TestVersionNamesAllThreeComponents(t *testing.T) {
	code, out, errOut := mnistgan(t, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"mnistgan ", "graft ", "v0.10.0", "libtensorflow ", "2.18."} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestBadInputGetsOneClearLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	data := realData(t)
	out := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"train", "--steps", "0", "--out", out("a")}, "--steps 0"},
		{[]string{"train", "--steps", "-5", "--out", out("a")}, "--steps -5"},
		{[]string{"train", "--batch", "0", "--out", out("a")}, "--batch 0"},
		{[]string{"train", "--optimizer", "sgd", "--out", out("a")}, `unknown optimizer "sgd"`},
		{[]string{"train", "--device", "tpu", "--out", out("a")}, `unknown device "tpu"`},
		{[]string{"train", "--lr-d", "-1", "--out", out("a")}, "--lr-d -1"},
		{[]string{"train", "--lr-g", "1e-46", "--out", out("a")}, "--lr-g 1e-46: a learning rate must be a positive float32"},
		{[]string{"train", "--out", out("f"), "--data", data, "--subset", "70000"}, "--subset 70000 is more than the 60000 training images"},
		{[]string{"train", "--histogram-every", "-1", "--out", out("a")}, "--histogram-every -1"},
		{[]string{"train", "--log-every", "0", "--out", out("a")}, "--log-every 0: must be at least 1"},
		{[]string{"train", "--stats", filepath.Join(file, "x.json"), "--out", out("a")}, "--stats " + filepath.Join(file, "x.json") + ": " + file + " is not a directory"},
		{[]string{"train", "--threads", "100000", "--out", out("a")}, "--threads 100000: must be 0 (one per core) up to 1024"},
		{[]string{"train", "--inter-op-threads", "-1", "--out", out("a")}, "--inter-op-threads -1"},
		{[]string{"train", "--out", out("e"), "--data", data, "--logdir", file}, "--logdir " + file},
		{[]string{"train", "--no-such-flag"}, "flag provided but not defined"},
		{[]string{"train", "--steps", "many"}, "invalid value"},
		{[]string{"train", "stray-argument"}, `unexpected argument "stray-argument"`},
		{[]string{"no-such-command"}, "no-such-command"},
		{[]string{"version", "--foo"}, "flag provided but not defined: -foo"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"train", "--out", file, "--data", data}, "is a file"},
		{[]string{"train", "--out", empty, "--resume"}, "no run.json"},
		{[]string{"train", "--out", out("b"), "--data", empty}, "train-images-idx3-ubyte"},
		{[]string{"train", "--out", out("c"), "--data", data, "--subset", "100", "--batch", "200"}, "--batch 200 is larger"},
		{[]string{"train", "--out", out("d"), "--data", data, "--subset", "100", "--batch", "4", "--device", "gpu"}, "not visible to libtensorflow, which sees only /device:CPU:0"},
	}
	before, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
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
	// A refused command leaves nothing: no run directory of its --out.
	after, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		var names []string
		for _, e := range after {
			names = append(names, e.Name())
		}
		t.Errorf("after the refused commands %s holds %v, before only a-file and empty", dir, names)
	}
}

func TestTrainThenResumeFromTheCommandLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	data := realData(t)
	code, out, errOut := mnistgan(t, "train", "--out", dir, "--data", data, "--subset", "256", "--batch", "4", "--steps", "2", "--sample-every", "1")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"TensorBoard log: " + filepath.Join(dir, "logs"), "step 1/2", "step 2/2", "d_loss", "d_acc", "g_loss", "g_acc", "ETA", "checkpoint written", "done: 2 steps"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"samples/real.png", "samples/step-00000001.png", "samples/step-00000002.png", "run.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	// A resumed run keeps what it trains...
	code, _, errOut = mnistgan(t, "train", "--out", dir, "--resume", "--batch", "8")
	if code == 0 || !strings.Contains(errOut, "--batch 8 differs from the 4") {
		t.Errorf("resume with another --batch: exit %d, %q", code, errOut)
	}
	// ...and its log.
	code, _, errOut = mnistgan(t, "train", "--out", dir, "--resume", "--logdir", filepath.Join(dir, "elsewhere"))
	if code == 0 || !strings.Contains(errOut, "logs to "+filepath.Join(dir, "logs")) {
		t.Errorf("resume with another --logdir: exit %d, %q", code, errOut)
	}
	// ...and may run longer.
	code, out, errOut = mnistgan(t, "train", "--out", dir, "--resume", "--steps", "3")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "resuming "+dir+" from step 2") || !strings.Contains(out, "step 3/3") {
		t.Errorf("resume output:\n%s", out)
	}
	// A finished run resumed has nothing to train: it says so and adds
	// nothing to the log; asked for fewer steps than it has, it refuses.
	events, _ := filepath.Glob(filepath.Join(dir, "logs", "events.out.tfevents.*"))
	code, out, errOut = mnistgan(t, "train", "--out", dir, "--resume", "--steps", "3")
	if code != 0 || !strings.Contains(out, "at step 3 of 3 already: nothing to train") || !strings.Contains(out, "samples "+filepath.Join(dir, "samples", "step-00000003.png")) {
		t.Errorf("resume of a finished run: exit %d, %q, stdout:\n%s", code, errOut, out)
	}
	if again, _ := filepath.Glob(filepath.Join(dir, "logs", "events.out.tfevents.*")); len(again) != len(events) {
		t.Errorf("resume of a finished run: %d event files, before %d", len(again), len(events))
	}
	code, _, errOut = mnistgan(t, "train", "--out", dir, "--resume", "--steps", "2")
	if code == 0 || !strings.Contains(errOut, "--steps 2: the run in "+dir+" is at step 3 already") {
		t.Errorf("resume with fewer steps: exit %d, %q", code, errOut)
	}
}

// A log directory that cannot be made fails before run.json marks --out as
// holding a run, so the corrected command can use the same --out.
func TestAnUnmakeableLogDirLeavesOutReusable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	data := realData(t)
	args := []string{"train", "--out", dir, "--data", data, "--subset", "256", "--batch", "4", "--steps", "1", "--threads", "1"}
	// Nothing can create a directory in /proc, not even root.
	code, _, errOut := mnistgan(t, append(args, "--logdir", "/proc/mnistgan-logs")...)
	if code == 0 || !strings.Contains(errOut, "TensorBoard log: cannot create /proc/mnistgan-logs/run") {
		t.Fatalf("exit %d, stderr %q; want a failure naming the log directory", code, errOut)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the failed start left %s behind", dir)
	}
	if code, _, errOut := mnistgan(t, args...); code != 0 {
		t.Errorf("the corrected command: exit %d, %s", code, errOut)
	}
}
