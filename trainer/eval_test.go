package trainer

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/mnist"
	"github.com/mnistgan/mnistgan/quality"
	"github.com/mnistgan/mnistgan/tblog"
)

// The classifier these tests share: the default one, trained once (minutes).
var (
	classifierOnce sync.Once
	classifierRoot string // removed by TestMain
	classifierDir  string
	classifierInfo quality.Info
	classifierErr  error
)

func sharedClassifier(t *testing.T) (string, quality.Info) {
	t.Helper()
	data := realData(t)
	classifierOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mnistgan-classifier-test-")
		if err != nil {
			classifierErr = err
			return
		}
		cfg := DefaultClassifierConfig()
		classifierRoot = dir
		cfg.Dir, cfg.Data = filepath.Join(dir, "classifier"), data
		classifierDir = cfg.Dir
		classifierInfo, classifierErr = TrainClassifier(context.Background(), cfg, nil)
	})
	if classifierErr != nil {
		t.Fatalf("train the classifier: %v", classifierErr)
	}
	return classifierDir, classifierInfo
}

// accuracyOf is the share of the first n test digits the loaded classifier
// labels right, counted here from its probabilities.
func accuracyOf(t *testing.T, clf *quality.Classifier, test *mnist.Set, n int) float64 {
	t.Helper()
	probs, _, err := clf.Classify(quality.UnitPixels(test.Pixels[:n*mnist.Side*mnist.Side]), n)
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	for i := 0; i < n; i++ {
		row := probs[i*graphs.Classes : (i+1)*graphs.Classes]
		best := 0
		for k, p := range row {
			if p > row[best] {
				best = k
			}
		}
		if byte(best) == test.Labels[i] {
			right++
		}
	}
	return float64(right) / float64(n)
}

func TestTheClassifierIsRightAbout99PercentOfTheTime(t *testing.T) {
	dir, info := sharedClassifier(t)
	if info.TestAccuracy < 0.99 {
		t.Errorf("test accuracy %.4f, want at least 0.99", info.TestAccuracy)
	}
	if info.TestImages != 10000 || info.TrainImages != 50000 || info.Steps != 3000 {
		t.Errorf("classifier.json: %+v", info)
	}
	// What was saved is what was measured: the SavedModel, loaded by
	// TensorFlow's loader, labels a test subset as well.
	clf, err := quality.LoadClassifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	_, test, err := loadSplits(realData(t))
	if err != nil {
		t.Fatal(err)
	}
	if acc := accuracyOf(t, clf, test, 2000); acc < 0.985 {
		t.Errorf("the saved classifier labels %.4f of 2,000 test digits right, want at least 0.985", acc)
	}
	if clf.Info.TestAccuracy != info.TestAccuracy {
		t.Errorf("classifier.json says %v, training measured %v", clf.Info.TestAccuracy, info.TestAccuracy)
	}

	// A classifier.json that no training wrote is refused at load.
	copyDir := filepath.Join(t.TempDir(), "classifier")
	if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	for _, record := range []string{`null`, `{"test_accuracy": 0.99, "test_images": 10000, "train_images": -5}`, `{"test_accuracy": 7, "test_images": 10000, "train_images": 50000}`} {
		if err := os.WriteFile(filepath.Join(copyDir, quality.InfoFile), []byte(record), 0o644); err != nil {
			t.Fatal(err)
		}
		if c, err := quality.LoadClassifier(copyDir); err == nil || !strings.Contains(err.Error(), "which no trained classifier has") {
			if c != nil {
				c.Close()
			}
			t.Errorf("classifier.json %s: %v, want a refusal", record, err)
		}
	}
}

func TestRealDigitsScoreNearTheCeiling(t *testing.T) {
	dir, _ := sharedClassifier(t)
	clf, err := quality.LoadClassifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	train, test, err := loadSplits(realData(t))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := quality.NewEvaluator(clf, test)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()

	// A test split of one image has no covariance: a clear refusal, not
	// a failed eigendecomposition.
	if _, err := quality.NewEvaluator(clf, test.Subset(1)); err == nil || !strings.Contains(err.Error(), "test split has 1 image(s)") {
		t.Errorf("an evaluator on 1 test image: %v, want a refusal naming the test split", err)
	}

	// The test set against itself: identical features, distance 0 up to
	// the rounding of a float64 eigendecomposition of 128x128 covariances
	// (seen as large as 1e-6 either side of zero).
	self, err := ev.Score(quality.UnitPixels(test.Pixels), test.Count)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(self.FrechetDistance) > 1e-4 {
		t.Errorf("the test set against itself: Frechet distance %g, want 0", self.FrechetDistance)
	}
	ceiling, err := ev.Ceiling(train)
	if err != nil {
		t.Fatal(err)
	}
	if ceiling.InceptionScore < 9.5 || ceiling.FrechetDistance > 5 || ceiling.TopConfidence < 0.98 {
		t.Errorf("held-out real digits: %+v, want IS > 9.5, FD < 5, confidence > 0.98", ceiling)
	}
	for digit, share := range ceiling.ClassShares {
		if share < 0.08 || share > 0.12 {
			t.Errorf("held-out real digits: %.3f classified as %d, want about 0.1", share, digit)
		}
	}
	// A thousand copies of one digit: no variety (IS 1) and far from MNIST.
	one := quality.UnitPixels(test.Pixels[:mnist.Side*mnist.Side])
	var copies []float32
	for i := 0; i < 1000; i++ {
		copies = append(copies, one...)
	}
	same, err := ev.Score(copies, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(same.InceptionScore-1) > 1e-6 || same.FrechetDistance < 10*ceiling.FrechetDistance {
		t.Errorf("one digit 1000 times: IS %.6f (want 1), FD %.3f (want far above the ceiling's %.3f)", same.InceptionScore, same.FrechetDistance, ceiling.FrechetDistance)
	}
	if _, err := ev.Score(one, 1); err == nil {
		t.Error("scoring a single digit was accepted")
	}
}

func TestEvalEveryLogsTheFiguresEvalGivesTheCheckpoint(t *testing.T) {
	dir, _ := sharedClassifier(t)
	run := filepath.Join(t.TempDir(), "run")
	cfg := smallConfig(t, run, 4)
	cfg.EvalEvery, cfg.EvalN, cfg.Classifier = 2, 200, dir
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.EvalStep != 4 || res.Eval.Images != 200 {
		t.Fatalf("last evaluation at step %d of %d digits, want step 4 of 200", res.EvalStep, res.Eval.Images)
	}
	events, err := tblog.ReadDir(cfg.EventsDir())
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string][]int64{}
	var lastIS float32
	for _, e := range events {
		for _, v := range e.GetSummary().GetValue() {
			if strings.HasPrefix(v.Tag, "eval/") {
				logged[v.Tag] = append(logged[v.Tag], e.Step)
				if v.Tag == "eval/inception_score" {
					lastIS = v.GetSimpleValue()
				}
			}
		}
	}
	for _, tag := range []string{"eval/inception_score", "eval/frechet_distance", "eval/top_confidence"} {
		if got := logged[tag]; len(got) != 2 || got[0] != 2 || got[1] != 4 {
			t.Errorf("%s logged at steps %v, want [2 4]", tag, got)
		}
	}
	if lastIS != float32(res.Eval.InceptionScore) {
		t.Errorf("logged IS %v, evaluation %v", lastIS, res.Eval.InceptionScore)
	}

	// mnistgan eval on the final checkpoint with the run's seed draws the same
	// noise, so it measures the same digits (through the exported inference
	// graph rather than the training graph).
	ckpt, err := LatestCheckpoint(run)
	if err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(t.TempDir(), "eval.json")
	ev, err := Evaluate(EvalOptions{Checkpoint: &ckpt, N: 200, Seed: cfg.Seed, Classifier: dir, Data: cfg.Data, JSON: jsonPath}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(ev.Generated.InceptionScore - res.Eval.InceptionScore); d > 1e-3 {
		t.Errorf("eval IS %.6f, training's %.6f", ev.Generated.InceptionScore, res.Eval.InceptionScore)
	}
	if d := math.Abs(ev.Generated.FrechetDistance - res.Eval.FrechetDistance); d > 1e-3*res.Eval.FrechetDistance {
		t.Errorf("eval FD %.6f, training's %.6f", ev.Generated.FrechetDistance, res.Eval.FrechetDistance)
	}
	var onDisk EvalResult
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &onDisk); err != nil {
		t.Fatal(err)
	}
	if onDisk.Generated.InceptionScore != ev.Generated.InceptionScore || onDisk.HeldOut.Images != quality.HeldOut ||
		onDisk.Step != 4 || len(onDisk.Generated.ClassShares) != 10 || onDisk.ClassifierAccuracy < 0.99 {
		t.Errorf("JSON holds %+v", onDisk)
	}
}

func TestEvalEveryWithoutAClassifierFailsBeforeTraining(t *testing.T) {
	cfg := smallConfig(t, filepath.Join(t.TempDir(), "run"), 4)
	cfg.EvalEvery, cfg.Classifier = 2, filepath.Join(t.TempDir(), "none")
	steps := 0
	_, err := Run(context.Background(), cfg, Options{AfterStep: func(int, Metrics) { steps++ }})
	if err == nil || !strings.Contains(err.Error(), "mnistgan eval --train-classifier") {
		t.Fatalf("got %v, want advice to train the classifier", err)
	}
	if steps != 0 {
		t.Errorf("%d steps trained before the failure", steps)
	}
}

func TestTrainClassifierRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir   string
		force bool
		want  string
	}{
		{other, false, "already exists"},
		{other, true, "is not a classifier"},
		{file, false, "is a file"},
	} {
		cfg := DefaultClassifierConfig()
		cfg.Dir, cfg.Force, cfg.Data = c.dir, c.force, realData(t)
		if _, err := TrainClassifier(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (force %v): got %v, want %q", c.dir, c.force, err, c.want)
		}
	}
	if data, err := os.ReadFile(filepath.Join(other, "notes.txt")); err != nil || string(data) != "mine" {
		t.Errorf("the directory's file was touched: %q, %v", data, err)
	}
}
