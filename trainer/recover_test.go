package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/tfops"
)

// fakeCheckpoint writes a checkpoint's files (empty variables: these tests
// look at names only) directly under name in dir.
func fakeCheckpoint(t *testing.T, dir, name string, step int) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeJSONAtomic(filepath.Join(path, stateFile), State{Step: step}); err != nil {
		t.Fatal(err)
	}
	for _, f := range bundleFiles {
		if err := os.WriteFile(filepath.Join(path, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestRecoverStaleClearsWhatAKilledRunLeft(t *testing.T) {
	run := t.TempDir()
	ck := filepath.Join(run, checkpointsDir)
	fakeCheckpoint(t, ck, "ckpt-00000002", 2)
	fakeCheckpoint(t, ck, "ckpt-00000004", 4)
	fakeCheckpoint(t, ck, ".ckpt-00000006.tmp", 6)     // being written
	fakeCheckpoint(t, ck, ".ckpt-00000001.del", 1)     // being pruned
	fakeCheckpoint(t, ck, ".ckpt-00000004.old", 4)     // replaced, and the replacement landed
	fakeCheckpoint(t, ck, ".ckpt-00000008.old", 8)     // replaced, and the replacement did not land
	os.MkdirAll(filepath.Join(run, samplesDir), 0o755) // and writeFileAtomic's temporaries:
	for _, f := range []string{".run.json.tmp-123", "samples/.step-00000004.png.tmp-9", "checkpoints/.latest.tmp-77"} {
		if err := os.WriteFile(filepath.Join(run, f), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := []string{"run.json", "samples/step-00000004.png", "samples/.hidden-by-the-user", lockFile}
	for _, f := range keep {
		os.WriteFile(filepath.Join(run, f), []byte("x"), 0o644)
	}
	os.WriteFile(filepath.Join(ck, latestFile), []byte("ckpt-00000004\n"), 0o644)

	did, err := recoverStale(run)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(t, ck), []string{"ckpt-00000002", "ckpt-00000004", "ckpt-00000008", "latest"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("checkpoints/ holds %v, want %v", got, want)
	}
	if got, want := names(t, filepath.Join(run, samplesDir)), []string{".hidden-by-the-user", "step-00000004.png"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("samples/ holds %v, want %v", got, want)
	}
	if got, want := names(t, run), []string{lockFile, "checkpoints", "run.json", "samples"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the run directory holds %v, want %v", got, want)
	}
	if len(did) != 7 || !strings.Contains(strings.Join(did, "\n"), "restored "+filepath.Join(ck, "ckpt-00000008")) {
		t.Errorf("recoverStale reported:\n%s", strings.Join(did, "\n"))
	}
	// The restored checkpoint is the newest complete one.
	if c, err := LatestCheckpoint(run); err != nil || c.State.Step != 8 {
		t.Errorf("LatestCheckpoint: step %d, %v; want 8", c.State.Step, err)
	}
}

func TestLatestCheckpointIsTheNewestCompleteOne(t *testing.T) {
	run := t.TempDir()
	ck := filepath.Join(run, checkpointsDir)
	if _, err := LatestCheckpoint(run); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("no checkpoints directory: %v, want ErrNoCheckpoint", err)
	}
	fakeCheckpoint(t, ck, "ckpt-00000002", 2)
	fakeCheckpoint(t, ck, "ckpt-00000004", 4)
	fakeCheckpoint(t, ck, ".ckpt-00000006.tmp", 6)
	// A crash between the rename of ckpt-4 and the update of the index.
	os.WriteFile(filepath.Join(ck, latestFile), []byte("ckpt-00000002\n"), 0o644)
	if c, err := LatestCheckpoint(run); err != nil || c.State.Step != 4 || c.Dir != filepath.Join(ck, "ckpt-00000004") {
		t.Errorf("LatestCheckpoint: %+v, %v; want ckpt-00000004", c, err)
	}
	// A checkpoint that lost a file is passed over.
	os.Remove(filepath.Join(ck, "ckpt-00000004", bundleFiles[1]))
	if c, err := LatestCheckpoint(run); err != nil || c.State.Step != 2 {
		t.Errorf("LatestCheckpoint with ckpt-4 incomplete: step %d, %v; want 2", c.State.Step, err)
	} else if len(c.PassedOver) != 1 || !strings.Contains(c.PassedOver[0], "ckpt-00000004 is incomplete") {
		t.Errorf("LatestCheckpoint with ckpt-4 incomplete says it passed over %q, want ckpt-00000004 and why", c.PassedOver)
	}
	os.Remove(filepath.Join(ck, "ckpt-00000002", stateFile))
	if _, err := LatestCheckpoint(run); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("no complete checkpoint: %v, want ErrNoCheckpoint", err)
	}
}

func TestASecondRunInTheSameDirectoryIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	lock, err := lockRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockRun(dir)
	if want := fmt.Sprintf("--out %s is in use by another mnistgan train (pid %d)", dir, os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second lock: %v, want %q", err, want)
	}
	// What Run says, before it touches anything.
	cfg := smallConfig(t, dir, 1)
	if _, err := Run(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another mnistgan train") {
		t.Errorf("Run in a locked directory: %v", err)
	}
	lock.Close()
	again, err := lockRun(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Close()
}

// checkpointBytes reads every variable of the checkpoint in dir, as
// TensorFlow restores it into a training graph of cfg's run, and returns each
// one's raw bytes by name.
func checkpointBytes(t *testing.T, cfg Config, dir string) map[string][]byte {
	t.Helper()
	d, g, err := cfg.optimizers()
	if err != nil {
		t.Fatal(err)
	}
	gan, err := graphs.NewGAN(graphs.GANConfig{Batch: int64(cfg.Batch), Examples: int64(cfg.Subset), Seed: cfg.Seed, D: d, G: g, Device: "/device:CPU:0", SampleSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tfops.NewSession(gan.Graph, tfops.SessionConfig{IntraOpThreads: 1, CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := gan.Saver.Restore(sess, filepath.Join(dir, variablesName)); err != nil {
		t.Fatal(err)
	}
	values, err := gan.Saver.Values(sess)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(values))
	for name, v := range values {
		var b bytes.Buffer
		if _, err := v.WriteContentsTo(&b); err != nil {
			t.Fatal(err)
		}
		out[name] = b.Bytes()
	}
	return out
}

func TestACheckpointWhoseStateWasEditedIsRefused(t *testing.T) {
	ck := t.TempDir()
	for _, tc := range []struct {
		name string
		step int
		want string
	}{
		{"ckpt-00000003", -3, "says step -3; a checkpoint is written after step 1 or later"},
		{"ckpt-00000004", 999, "says step 999, but the checkpoint is named for step 4"},
	} {
		fakeCheckpoint(t, ck, tc.name, tc.step)
		if _, err := OpenCheckpoint(filepath.Join(ck, tc.name)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with step %d: %v, want an error saying %q", tc.name, tc.step, err, tc.want)
		}
	}
	// A copy under a name of the user's keeps its step.
	fakeCheckpoint(t, ck, "best", 7)
	if c, err := OpenCheckpoint(filepath.Join(ck, "best")); err != nil || c.State.Step != 7 {
		t.Errorf("a checkpoint named best: step %d, %v; want 7", c.State.Step, err)
	}
}
