package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/mnist"
	"github.com/mnistgan/mnistgan/tblog"
	"github.com/mnistgan/mnistgan/tfops"
	"github.com/mnistgan/mnistgan/trainer"
)

// oneLine checks that stderr is one "mnistgan: ..." line holding want, with
// no panic.
func assertOneLine(t *testing.T, code int, errOut, want string) {
	t.Helper()
	if code == 0 {
		t.Errorf("exit 0, want failure")
	}
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "mnistgan: ") {
		t.Errorf("stderr is not one 'mnistgan: ...' line:\n%s", errOut)
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr %q lacks %q", errOut, want)
	}
	if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
		t.Errorf("stderr shows a panic:\n%s", errOut)
	}
}

var (
	smallOnce                sync.Once
	smallImages, smallLabels []byte
)

// smallData is a new data directory holding the first 512 digits of real
// MNIST's training set and their labels, as plain idx files: the runs of
// these tests train on 256 of them, and need not decompress all 60,000 at
// every start.
func smallData(t *testing.T) string {
	t.Helper()
	real := realData(t)
	smallOnce.Do(func() {
		set, err := mnist.Load(real, mnist.Train)
		if err != nil {
			return
		}
		const n = 512
		var im, lb bytes.Buffer
		binary.Write(&im, binary.BigEndian, []uint32{0x00000803, n, mnist.Side, mnist.Side})
		im.Write(set.Pixels[:n*mnist.Side*mnist.Side])
		binary.Write(&lb, binary.BigEndian, []uint32{0x00000801, n})
		lb.Write(set.Labels[:n])
		smallImages, smallLabels = im.Bytes(), lb.Bytes()
	})
	if smallImages == nil {
		t.Fatalf("cannot read MNIST in %s", real)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte"), smallImages, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), smallLabels, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// trainOneStep makes a one-step run in dir, with its checkpoint at step 1.
func trainOneStep(t *testing.T, dir string, extra ...string) {
	t.Helper()
	args := append([]string{"train", "--out", dir, "--data", smallData(t), "--subset", "256", "--batch", "4", "--steps", "1", "--threads", "1"}, extra...)
	if code, _, errOut := mnistgan(t, args...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
}

func TestBadDataAndDirectoriesGetOneClearLine(t *testing.T) {
	real := realData(t)
	dir := t.TempDir()
	labels, err := os.ReadFile(filepath.Join(real, "train-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	images, err := os.ReadFile(filepath.Join(real, "train-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	// dataDir writes a data directory with these train-images bytes and the
	// real labels (or only the images, without labels).
	dataDir := func(name string, images []byte, withLabels bool) string {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, "train-images-idx3-ubyte.gz"), images, 0o644); err != nil {
			t.Fatal(err)
		}
		if withLabels {
			os.WriteFile(filepath.Join(d, "train-labels-idx1-ubyte.gz"), labels, 0o644)
		}
		return d
	}
	idx := func(magic uint32, count, rows, cols int) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		binary.Write(w, binary.BigEndian, []uint32{magic, uint32(count), uint32(rows), uint32(cols)})
		w.Write(make([]byte, count*rows*cols))
		w.Close()
		return b.Bytes()
	}
	file := filepath.Join(dir, "a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	noCheckpoint := filepath.Join(dir, "no-checkpoint")
	os.MkdirAll(noCheckpoint, 0o755)
	os.WriteFile(filepath.Join(noCheckpoint, "run.json"), []byte("{}\n"), 0o644)

	imagesIn := func(d string) string { return filepath.Join(d, "train-images-idx3-ubyte.gz") }
	truncated := dataDir("truncated", images[:len(images)/2], true)
	wrongMagic := dataDir("wrong-magic", idx(0x00000801, 60000, 28, 28), true)
	wrongShape := dataDir("wrong-shape", idx(0x00000803, 60000, 32, 32), true)
	noLabels := dataDir("no-labels", images, false)
	out := filepath.Join(dir, "out")
	run := []string{"--out", out, "--subset", "256", "--batch", "4", "--steps", "1"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"truncated images", append([]string{"--data", truncated}, run...), imagesIn(truncated) + ": header promises 60000 images of 28x28 (47040000 bytes of pixels): truncated: only"},
		{"wrong magic", append([]string{"--data", wrongMagic}, run...), imagesIn(wrongMagic) + ": magic number 0x00000801, want 0x00000803 (unsigned bytes, 3 dimension(s)); this is not an MNIST image file"},
		{"wrong shape", append([]string{"--data", wrongShape}, run...), imagesIn(wrongShape) + ": images are 32x32 pixels; MNIST digits are 28x28"},
		{"missing labels", append([]string{"--data", noLabels}, run...), "train-labels-idx1-ubyte"},
		{"out under a file", []string{"--data", real, "--out", filepath.Join(file, "run")}, "--out " + filepath.Join(file, "run") + ": cannot create the run directory: mkdir " + file + ": not a directory"},
		{"resume without checkpoint", []string{"--data", real, "--out", noCheckpoint, "--resume"}, "--resume: no checkpoint in " + noCheckpoint + " (the run stopped before writing its first)"},
		{"lr beyond float32", append([]string{"--data", real, "--lr-d", "1e39"}, run...), "--lr-d 1e+39: a learning rate must be a positive float32"},
		{"NaN decay", append([]string{"--data", real, "--decay-g", "NaN"}, run...), "--decay-g NaN: a decay must be 0 or a positive float32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := mnistgan(t, append([]string{"train"}, tc.args...)...)
			assertOneLine(t, code, errOut, tc.want)
		})
	}
	// Nothing was started in --out by any of them.
	if _, err := os.Stat(filepath.Join(out, "run.json")); err == nil {
		t.Errorf("a refused run left %s/run.json", out)
	}
}

func TestDivergenceStopsTheRunAndKeepsTheLastGoodCheckpoint(t *testing.T) {
	data := smallData(t)
	// --lr-g 1e20: the generator's weights explode in its first update,
	// and the discriminator's loss on its images is NaN the step after.
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--out", dir, "--data", data, "--subset", "256", "--batch", "4", "--steps", "6", "--checkpoint-every", "1", "--threads", "1", "--lr-g", "1e20"}
	code, _, errOut := mnistgan(t, args...)
	re := regexp.MustCompile(`^mnistgan: training diverged at step (\d+): [dg]_loss is (NaN|[+-]Inf); the last good checkpoint, (\S+) \(step (\d+)\), is kept; ` +
		`start a new run with a lower --lr-d/--lr-g \(this run has --lr-d 0\.0002 --lr-g 1e\+20\)\n$`)
	m := re.FindStringSubmatch(errOut)
	if code != 1 || m == nil {
		t.Fatalf("exit %d, stderr %q; want exit 1 and one line matching %s", code, errOut, re)
	}
	step, _ := strconv.Atoi(m[1])
	good, _ := strconv.Atoi(m[4])
	if good != step-1 || m[3] != filepath.Join(dir, "checkpoints", fmt.Sprintf("ckpt-%08d", good)) {
		t.Fatalf("diverged at step %d; the last good checkpoint named is %s at step %d, want the one of step %d", step, m[3], good, step-1)
	}
	// The last good checkpoint is the latest, and nothing after it was saved.
	if c, err := trainer.LatestCheckpoint(dir); err != nil || c.Dir != m[3] {
		t.Errorf("LatestCheckpoint: %s, %v; want %s", c.Dir, err, m[3])
	}
	names, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "*"))
	for _, name := range names {
		if base := filepath.Base(name); base > fmt.Sprintf("ckpt-%08d", good) && base != "latest" {
			t.Errorf("%s was written", name)
		}
	}
	// It is intact and finite (its step's losses were, but the weights the
	// step left are the ones to check), and a resume restores it and, with
	// the same learning rates, diverges at the same step again.
	if bad := nonFinite(t, dir, m[3]); len(bad) > 0 {
		t.Errorf("the last good checkpoint holds NaN or Inf in %v", bad)
	}
	code, out, again := mnistgan(t, "train", "--out", dir, "--resume")
	if !strings.Contains(out, fmt.Sprintf("resuming %s from step %d\n", dir, good)) || code != 1 || again != errOut {
		t.Errorf("resume: exit %d, stdout\n%s\nstderr %q\nwant a resume from step %d and the same divergence", code, out, again, good)
	}

	// --lr-d 1e3: the first step's losses are finite, but its updates leave
	// NaN or Inf in the optimizer's slots, which must not be saved.
	dir = filepath.Join(t.TempDir(), "run")
	args = []string{"train", "--out", dir, "--data", data, "--subset", "256", "--batch", "4", "--steps", "6", "--checkpoint-every", "1", "--threads", "1", "--lr-d", "1e3"}
	code, _, errOut = mnistgan(t, args...)
	assertOneLine(t, code, errOut, "mnistgan: training diverged at step 1: variable ")
	if !strings.Contains(errOut, " holds NaN or Inf") || !strings.Contains(errOut, "; no checkpoint was written before it; start a new run with a lower --lr-d/--lr-g") {
		t.Errorf("stderr %q", errOut)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "*")); len(names) > 0 {
		t.Errorf("diverged weights were saved: %v", names)
	}
}

func TestResumingACheckpointOfAnotherArchitectureNamesTheVariable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	trainOneStep(t, dir)
	ckpt, err := trainer.LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the checkpoint as another architecture would have written
	// it: the same variables, but a 3x3 first convolution.
	const odd = "discriminator/conv1/kernel"
	rewriteCheckpoint(t, ckpt.VariablesPrefix(), odd, []int64{3, 3, 1, 64})
	before := dirNames(t, filepath.Join(dir, "checkpoints"))

	code, _, errOut := mnistgan(t, "train", "--out", dir, "--resume", "--steps", "2")
	assertOneLine(t, code, errOut, "variable "+odd+" has shape [3,3,1,64] in the checkpoint but [5,5,1,64] in this graph (was the checkpoint written by another version of the networks?)")
	if after := dirNames(t, filepath.Join(dir, "checkpoints")); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("the failed resume changed checkpoints/ from %v to %v", before, after)
	}
}

// nonFinite restores the checkpoint in ckpt into the training graph of the
// run in dir and names the variables holding NaN or Inf.
func nonFinite(t *testing.T, dir, ckpt string) []string {
	t.Helper()
	gan := trainingGraph(t)
	sess, err := tfops.NewSession(gan.Graph, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := gan.Saver.Restore(sess, filepath.Join(ckpt, "variables")); err != nil {
		t.Fatal(err)
	}
	bad, err := gan.Saver.NonFinite(sess)
	if err != nil {
		t.Fatal(err)
	}
	return bad
}

// trainingGraph is the training graph of the tests' runs (RMSprop, batch 4).
func trainingGraph(t *testing.T) *graphs.GAN {
	t.Helper()
	opt, err := tfops.NewOptimizer(tfops.RMSprop, 2e-4, 0)
	if err != nil {
		t.Fatal(err)
	}
	gan, err := graphs.NewGAN(graphs.GANConfig{Batch: 4, Examples: 256, Seed: 1, D: opt, G: opt, Device: "/device:CPU:0", SampleSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	return gan
}

// rewriteCheckpoint overwrites the bundle at prefix with one holding the
// training graph's variables (as zeros), variable odd with the given shape.
func rewriteCheckpoint(t *testing.T, prefix, odd string, shape []int64) {
	t.Helper()
	gan := trainingGraph(t)
	root := op.NewScope()
	vars := tfops.NewVars(root, 1)
	found := false
	for _, v := range gan.Vars.All() {
		s := v.Shape
		if v.Name == odd {
			s, found = shape, true
		}
		dtype := v.DType
		vars.Get(v.Name, s, dtype, v.Trainable, func(s *op.Scope, shape []int64, _ tf.Output) tf.Output {
			return op.Fill(s, op.Const(s.SubScope("dims"), shape), op.Cast(s, op.Const(s.SubScope("zero"), float32(0)), dtype))
		})
	}
	if !found {
		t.Fatalf("the training graph has no variable %s", odd)
	}
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
	if err := saver.Save(sess, prefix); err != nil {
		t.Fatal(err)
	}
	// As that architecture's mnistgan would, record the files' sizes.
	statePath := filepath.Join(filepath.Dir(prefix), "state.json")
	raw, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var state trainer.State
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatal(err)
	}
	for name := range state.Bytes {
		st, err := os.Stat(filepath.Join(filepath.Dir(prefix), name))
		if err != nil {
			t.Fatal(err)
		}
		state.Bytes[name] = st.Size()
	}
	if raw, err = json.Marshal(state); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mountTmpfs mounts a new tmpfs with opts (and flags) for the test.
func mountTmpfs(t *testing.T, flags uintptr, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		t.Fatalf("mount a tmpfs (%s) at %s: %v; this test runs mnistgan on a small file system it fills, "+
			"which needs root or CAP_SYS_ADMIN (CI runs as root)", opts, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// free returns the bytes free on the file system of path.
func free(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill leaves exactly leave bytes free on the tmpfs at mnt until the
// returned function is called.
func fill(t *testing.T, mnt string, leave int64) func() {
	t.Helper()
	path := filepath.Join(mnt, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, free(t, mnt)-leave); err != nil {
		t.Fatalf("fill %s: %v", mnt, err)
	}
	if got := free(t, mnt); got != leave {
		t.Fatalf("%s has %d bytes free, want %d", mnt, got, leave)
	}
	return func() { os.Remove(path) }
}

func TestAFullDiskStopsTheRunWithOneLineAndLosesNoCheckpoint(t *testing.T) {
	mnt := mountTmpfs(t, 0, "size=256m")
	dir := filepath.Join(mnt, "run")
	trainOneStep(t, dir)
	ck1 := filepath.Join(dir, "checkpoints", "ckpt-00000001")
	page := int64(os.Getpagesize())
	pages := func(path string) int64 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return (st.Size() + page - 1) / page * page
	}
	// A resumed session needs a page for its event file first; then, at
	// step 2 (with --sample-every 0, no grid), the checkpoint's tensor
	// bundle (as large as ckpt-1's), its state.json, then `latest`.
	bundle := pages(filepath.Join(ck1, "variables.index")) + pages(filepath.Join(ck1, "variables.data-00000-of-00001"))
	ckpt2 := filepath.Join(dir, "checkpoints", "ckpt-00000002")
	for _, tc := range []struct {
		name  string
		leave int64
		args  []string
		want  string
	}{
		{"the event log", 0, nil, "write TensorBoard log " + filepath.Join(dir, "logs", "events.out.tfevents.")},
		{"a sample grid", page, []string{"--sample-every", "1"}, "write " + filepath.Join(dir, "samples", "step-00000002.png") + ": no space left on device"},
		// The grid (7 kB) fits, the log's events with it do not: the
		// write is cut short (or, should the grid take a page more,
		// the grid fails).
		{"the event log, cut short", 3 * page, []string{"--sample-every", "1"}, ": no space left on device"},
		{"TensorFlow's SaveV2", page + bundle/2, nil, "checkpoint step 2: write " + ckpt2 + ": no space left on device"},
		{"state.json", page + bundle, nil, "checkpoint step 2: write " + ckpt2 + ": no space left on device"},
		{"latest", page + bundle + page, nil, "checkpoint step 2: write " + filepath.Join(dir, "checkpoints", "latest") + ": no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unfill := fill(t, mnt, tc.leave)
			defer unfill()
			args := append([]string{"train", "--out", dir, "--resume", "--steps", "3", "--checkpoint-every", "2", "--sample-every", "0"}, tc.args...)
			code, _, errOut := mnistgan(t, args...)
			assertOneLine(t, code, errOut, tc.want)
			assertOneLine(t, code, errOut, "no space left on device; the last checkpoint, "+ck1+" (step 1), is intact: free some disk space, then mnistgan train --out "+dir+" --resume")
			// Nothing half-written, and ckpt-1 still the latest.
			if got := dirNames(t, filepath.Join(dir, "checkpoints")); strings.Join(got, " ") != "ckpt-00000001 latest" {
				t.Errorf("checkpoints/ holds %v", got)
			}
			if idx, err := os.ReadFile(filepath.Join(dir, "checkpoints", "latest")); err != nil || string(idx) != "ckpt-00000001\n" {
				t.Errorf("latest holds %q (%v)", idx, err)
			}
			for _, sub := range []string{"", "samples", "logs"} {
				for _, name := range dirNames(t, filepath.Join(dir, sub)) {
					if strings.HasPrefix(name, ".") && name != ".lock" {
						t.Errorf("%s was left behind", filepath.Join(dir, sub, name))
					}
				}
			}
			files, _ := tblog.Files(filepath.Join(dir, "logs"))
			for _, f := range files {
				if _, err := tblog.Read(f); err != nil {
					t.Errorf("the TensorBoard log is damaged: %v", err)
				}
			}
		})
	}
	// With space again, the run resumes from ckpt-1.
	code, out, errOut := mnistgan(t, "train", "--out", dir, "--resume", "--steps", "2")
	if code != 0 || !strings.Contains(out, "resuming "+dir+" from step 1\n") {
		t.Fatalf("resume with space: exit %d: %s\n%s", code, errOut, out)
	}
	if c, err := trainer.LatestCheckpoint(dir); err != nil || c.State.Step != 2 {
		t.Errorf("latest checkpoint at step %d (%v), want 2", c.State.Step, err)
	}
}

func TestAReadOnlyOutIsRefused(t *testing.T) {
	mnt := mountTmpfs(t, syscall.MS_RDONLY, "size=1m")
	out := filepath.Join(mnt, "run")
	code, _, errOut := mnistgan(t, "train", "--out", out, "--data", smallData(t), "--subset", "256", "--batch", "4", "--steps", "1")
	assertOneLine(t, code, errOut, "--out "+out+": cannot create the run directory: mkdir "+out+": read-only file system")
}

func TestResumingADamagedCheckpointSaysHowToUseTheOneBefore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	trainOneStep(t, dir, "--steps", "2", "--checkpoint-every", "1")
	newest, err := trainer.LatestCheckpoint(dir)
	if err != nil || newest.State.Step != 2 {
		t.Fatalf("latest checkpoint: step %d, %v; want 2", newest.State.Step, err)
	}
	// Flip bytes in the middle of the weights: the bundle's checksums fail.
	data := newest.VariablesPrefix() + ".data-00000-of-00001"
	raw, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(raw) / 2; i < len(raw)/2+64; i++ {
		raw[i] ^= 0xff
	}
	if err := os.WriteFile(data, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := mnistgan(t, "train", "--out", dir, "--resume", "--steps", "3")
	assertOneLine(t, code, errOut, "the checkpoint's files are damaged")
	if !strings.Contains(errOut, "delete it to resume from the checkpoint before it") || strings.Contains(errOut, "another version") {
		t.Errorf("stderr %q: want the way out (delete it), not a guess at another architecture", errOut)
	}
	// Doing what it says resumes from step 1.
	if err := os.RemoveAll(newest.Dir); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mnistgan(t, "train", "--out", dir, "--resume", "--steps", "3")
	if code != 0 || !strings.Contains(out, "from step 1") {
		t.Errorf("resume after deleting the damaged checkpoint: exit %d, %q, stdout:\n%s", code, errOut, out)
	}
}
