package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	eventpb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"

	"github.com/mnistgan/mnistgan/tblog"
)

// logged sorts a run's events by kind: scalars[tag][step], steps of each
// image and histogram tag, session starts and graphs.
type logged struct {
	scalars    map[string]map[int64]float32
	images     map[string][]int64
	pngs       map[int64][]byte // the "samples" images by step
	histograms map[string][]int64
	starts     []int64
	graphs     int
}

func readLog(t *testing.T, dir string) logged {
	t.Helper()
	events, err := tblog.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := logged{scalars: map[string]map[int64]float32{}, images: map[string][]int64{}, pngs: map[int64][]byte{}, histograms: map[string][]int64{}}
	for _, e := range events {
		switch {
		case e.GetGraphDef() != nil:
			l.graphs++
		case e.GetSessionLog().GetStatus() == eventpb.SessionLog_START:
			l.starts = append(l.starts, e.Step)
		}
		for _, v := range e.GetSummary().GetValue() {
			switch {
			case v.GetImage() != nil:
				l.images[v.Tag] = append(l.images[v.Tag], e.Step)
				if v.Tag == samplesTag {
					l.pngs[e.Step] = v.GetImage().EncodedImageString
				}
			case v.GetHisto() != nil:
				l.histograms[v.Tag] = append(l.histograms[v.Tag], e.Step)
			default:
				if l.scalars[v.Tag] == nil {
					l.scalars[v.Tag] = map[int64]float32{}
				}
				if _, dup := l.scalars[v.Tag][e.Step]; dup {
					t.Errorf("%s logged twice at step %d", v.Tag, e.Step)
				}
				l.scalars[v.Tag][e.Step] = v.GetSimpleValue()
			}
		}
	}
	return l
}

func sameSteps(got []int64, want ...int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestEventLogHoldsWhatTheRunComputed(t *testing.T) {
	cfg := smallConfig(t, filepath.Join(t.TempDir(), "run"), 4)
	cfg.SampleEvery, cfg.HistogramEvery, cfg.LogEvery = 2, 3, 1
	var got []Metrics
	res, err := Run(context.Background(), cfg, Options{AfterStep: record(&got)})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cfg.Out, "logs"); res.LogDir != want {
		t.Errorf("log in %s, want %s", res.LogDir, want)
	}
	l := readLog(t, res.LogDir)
	// Every scalar of every step, bit for bit the values the steps fetched.
	for i, m := range got {
		step := int64(i + 1)
		for tag, want := range map[string]float32{"d_loss": m.DLoss, "d_acc": m.DAcc, "g_loss": m.GLoss, "g_acc": m.GAcc, "lr_d": m.DLR, "lr_g": m.GLR} {
			if v, ok := l.scalars[tag][step]; !ok || v != want {
				t.Errorf("%s at step %d: logged %v (%v), want %v", tag, step, v, ok, want)
			}
		}
		if v := l.scalars["steps_per_sec"][step]; !(v > 0) {
			t.Errorf("steps_per_sec at step %d is %v", step, v)
		}
	}
	// The rate is Keras' lr / (1 + decay * iterations), computed by TensorFlow.
	if got[0].DLR != float32(cfg.LRD) || got[0].GLR != float32(cfg.LRG) {
		t.Errorf("first learning rates %v, %v; want %v, %v", got[0].DLR, got[0].GLR, cfg.LRD, cfg.LRG)
	}
	if !sameSteps(l.images[samplesTag], 2, 4) || !sameSteps(l.images[realTag], 0) {
		t.Errorf("image steps %v, want samples at 2, 4 and real at 0", l.images)
	}
	for _, step := range []int64{2, 4} {
		file, err := os.ReadFile(filepath.Join(cfg.Out, samplesDir, fmt.Sprintf("step-%08d.png", step)))
		if err != nil || string(file) != string(l.pngs[step]) {
			t.Errorf("logged grid at step %d differs from the PNG on disk (%v)", step, err)
		}
	}
	if len(l.histograms) != 28 || !sameSteps(l.histograms["generator/deconv1/kernel"], 0, 3, 4) {
		t.Errorf("%d histogram tags, generator/deconv1/kernel at %v; want 28 tags at 0, 3, 4 (start, every 3, end)", len(l.histograms), l.histograms["generator/deconv1/kernel"])
	}
	if l.graphs != 1 || !sameSteps(l.starts, 1) {
		t.Errorf("%d graphs and session starts at %v, want 1 graph and a start at step 1", l.graphs, l.starts)
	}
}

func TestResumedRunAppendsToItsLog(t *testing.T) {
	cfg := smallConfig(t, filepath.Join(t.TempDir(), "run"), 2)
	cfg.LogDir = filepath.Join(t.TempDir(), "tb")
	if _, err := Run(context.Background(), cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	cfg.Steps = 3
	res, err := Run(context.Background(), cfg, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cfg.LogDir, "run"); res.LogDir != want {
		t.Fatalf("log in %s, want %s (--logdir/<run name>)", res.LogDir, want)
	}
	files, _ := tblog.Files(res.LogDir)
	l := readLog(t, res.LogDir)
	if len(files) != 2 || l.graphs != 1 || !sameSteps(l.starts, 1, 3) {
		t.Errorf("%d files, %d graphs, starts at %v; want a file per session, one graph, starts at 1 and 3", len(files), l.graphs, l.starts)
	}
	if len(l.scalars["d_loss"]) != 3 {
		t.Errorf("d_loss at steps %v, want 1, 2, 3", l.scalars["d_loss"])
	}
	// Another run of the same name may not log into the same place.
	other := smallConfig(t, filepath.Join(t.TempDir(), "run"), 1)
	other.LogDir = cfg.LogDir
	if _, err := Run(context.Background(), other, Options{}); err == nil || !strings.Contains(err.Error(), "already holds another run's events") {
		t.Errorf("a second run named run in the same --logdir: %v", err)
	}
}

func TestInterruptedRunFlushesItsLog(t *testing.T) {
	cfg := smallConfig(t, filepath.Join(t.TempDir(), "run"), 50)
	cfg.SampleEvery, cfg.HistogramEvery = 0, 0
	ctx, cancel := context.WithCancel(context.Background())
	res, err := Run(ctx, cfg, Options{AfterStep: func(step int, _ Metrics) {
		if step == 2 {
			cancel()
		}
	}})
	if err == nil || res.Step != 2 {
		t.Fatalf("interrupted run: step %d, %v", res.Step, err)
	}
	l := readLog(t, res.LogDir)
	if len(l.scalars["g_loss"]) != 2 || !sameSteps(l.images[samplesTag], 2) || !sameSteps(l.histograms["discriminator/dense/kernel"], 0, 2) {
		t.Errorf("log of a run stopped at step 2: g_loss at %v, grids at %v, histograms at %v; want steps 1-2, a grid and histograms at 2",
			l.scalars["g_loss"], l.images[samplesTag], l.histograms["discriminator/dense/kernel"])
	}
}
