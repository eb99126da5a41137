package trainer

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mnistgan/mnistgan/mnist"
)

// realData finds the real MNIST files (make data puts them in data/mnist).
func realData(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{filepath.Join("..", "data", "mnist")} {
		if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err == nil {
			abs, _ := filepath.Abs(dir)
			return abs
		}
	}
	dir, err := mnist.Locate()
	if err != nil {
		t.Fatalf("these tests train on real MNIST: %v", err)
	}
	return dir
}

// smallConfig is a quick run on a real-MNIST subset.
func smallConfig(t *testing.T, out string, steps int) Config {
	cfg := DefaultConfig()
	cfg.Out = out
	cfg.Data = realData(t)
	cfg.Subset = 512
	cfg.Steps = steps
	cfg.Batch = 8
	cfg.SampleEvery = 0
	cfg.CheckpointEvery = 0
	cfg.LogEvery = 1
	cfg.Threads = 1 // single-threaded kernels: runs are bit-reproducible
	return cfg
}

func record(into *[]Metrics) func(int, Metrics) {
	return func(_ int, m Metrics) { *into = append(*into, m) }
}

func TestShortRunOnRealMNISTLearns(t *testing.T) {
	cfg := smallConfig(t, filepath.Join(t.TempDir(), "run"), 40)
	cfg.Batch = 16
	cfg.Subset = 2048
	cfg.Optimizer = "adam"
	cfg.Threads = 0
	var got []Metrics
	res, err := Run(context.Background(), cfg, Options{AfterStep: record(&got)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != cfg.Steps || len(got) != cfg.Steps {
		t.Fatalf("ran %d steps (%d reported), want %d", res.Step, len(got), cfg.Steps)
	}
	for i, m := range got {
		if nonFinite(m) != "" {
			t.Fatalf("step %d: non-finite metrics %+v", i+1, m)
		}
	}
	// The discriminator's loss starts at about ln 2 (it cannot tell yet) and
	// must move once it learns.
	first := got[0].DLoss
	var late float64
	for _, m := range got[len(got)-5:] {
		late += float64(m.DLoss) / 5
	}
	if math.Abs(float64(first)-math.Ln2) > 0.1 {
		t.Errorf("first d_loss %.3f, want about ln 2 = 0.693 for an untrained discriminator", first)
	}
	if math.Abs(late-float64(first)) < 0.05 {
		t.Errorf("d_loss did not move: %.4f at step 1, %.4f over the last 5 steps", first, late)
	}

	// The final grid: 16 generated digits, neither blank nor constant.
	tiles := gridTiles(t, res.LastGrid)
	var distinct int
	for i, tile := range tiles {
		if spread(tile) < 0.05 {
			t.Errorf("generated image %d is (nearly) constant", i)
		}
		if i > 0 && meanAbsDiff(tile, tiles[0]) > 0.01 {
			distinct++
		}
	}
	if distinct == 0 {
		t.Error("all 16 generated images are the same")
	}

	for _, f := range []string{runFile, "samples/real.png", "checkpoints/latest"} {
		if _, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
}

// gridTiles decodes a sample grid into its 16 images (values in [0, 1]).
func gridTiles(t *testing.T, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	cell := mnist.Side + gridGutter
	var tiles [][]float64
	for k := 0; k < gridSide*gridSide; k++ {
		x0, y0 := gridGutter+(k%gridSide)*cell, gridGutter+(k/gridSide)*cell
		var tile []float64
		for y := 0; y < mnist.Side; y++ {
			for x := 0; x < mnist.Side; x++ {
				r, _, _, _ := img.At((x0+x)*gridScale, (y0+y)*gridScale).RGBA()
				tile = append(tile, float64(r)/0xffff)
			}
		}
		tiles = append(tiles, tile)
	}
	return tiles
}

func spread(v []float64) float64 {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return hi - lo
}

func meanAbsDiff(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += math.Abs(a[i] - b[i])
	}
	return s / float64(len(a))
}

func TestResumeContinuesExactlyWhereItStopped(t *testing.T) {
	dir := t.TempDir()
	// One run of 6 steps...
	whole := smallConfig(t, filepath.Join(dir, "whole"), 6)
	var want []Metrics
	if _, err := Run(context.Background(), whole, Options{AfterStep: record(&want)}); err != nil {
		t.Fatal(err)
	}
	// ...against 3 steps, then a resume to 6.
	split := smallConfig(t, filepath.Join(dir, "split"), 3)
	var got []Metrics
	res, err := Run(context.Background(), split, Options{AfterStep: record(&got)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checkpoint.State.Step != 3 {
		t.Fatalf("first half ended with checkpoint at step %d, want 3", res.Checkpoint.State.Step)
	}
	split.Steps = 6
	var resumedAt []int
	res, err = Run(context.Background(), split, Options{Resume: true, AfterStep: func(step int, m Metrics) {
		resumedAt = append(resumedAt, step)
		got = append(got, m)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resumedAt) != 3 || resumedAt[0] != 4 || res.Step != 6 {
		t.Fatalf("resumed steps %v (ended at %d), want 4, 5, 6", resumedAt, res.Step)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: resumed run %+v, unbroken run %+v", i+1, got[i], want[i])
		}
	}
	// And the same final weights, batch-norm statistics, optimizer slots and
	// counts, bit for bit.
	a, b := checkpointBytes(t, whole, filepath.Join(whole.Out, checkpointsDir, "ckpt-00000006")), checkpointBytes(t, split, res.Checkpoint.Dir)
	if len(a) != len(b) || len(a) < 28 {
		t.Fatalf("%d variables against %d", len(a), len(b))
	}
	for name, v := range a {
		if !bytes.Equal(v, b[name]) {
			t.Errorf("variable %s differs between the unbroken and the resumed run", name)
		}
	}
}

func TestRunRefusesToOverwriteOrInventARun(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(t, filepath.Join(dir, "run"), 1)
	if _, err := Run(context.Background(), cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("second run into the same --out: %v, want a refusal suggesting --resume", err)
	}
	fresh := smallConfig(t, filepath.Join(dir, "empty"), 1)
	if _, err := Run(context.Background(), fresh, Options{Resume: true}); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("--resume of an empty directory: %v, want ErrNoCheckpoint", err)
	}
	big := smallConfig(t, filepath.Join(dir, "big"), 1)
	big.Batch = 600
	if _, err := Run(context.Background(), big, Options{}); err == nil || !strings.Contains(err.Error(), "--batch 600") {
		t.Errorf("batch larger than the data: %v", err)
	}
}

func TestInterruptedRunSavesAndStops(t *testing.T) {
	cfg := smallConfig(t, filepath.Join(t.TempDir(), "run"), 50)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := Run(ctx, cfg, Options{AfterStep: func(step int, _ Metrics) {
		if step == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if res.Step != 2 || res.Checkpoint.State.Step != 2 || res.LastGrid == "" {
		t.Errorf("stopped at step %d with checkpoint at %d and grid %q; want 2, 2 and a grid", res.Step, res.Checkpoint.State.Step, res.LastGrid)
	}
	c, err := LatestCheckpoint(cfg.Out)
	if err != nil || c.State.Step != 2 {
		t.Errorf("latest checkpoint %+v, %v; want step 2", c.State, err)
	}
}
