package trainer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/mnist"
	"github.com/mnistgan/mnistgan/quality"
)

// MaxEval bounds --n and --eval-n.
const MaxEval = 100000

// DefaultEvalN is the number of digits an evaluation scores: as many as the
// test set, which the Frechet distance compares them with (the distance is
// biased upwards for fewer digits, so figures compare only at the same N).
const DefaultEvalN = 10000

// EvalOptions say what `mnistgan eval` measures. Exactly one of Model and
// Checkpoint is set.
type EvalOptions struct {
	Model      string      // a SavedModel directory (mnistgan export)
	Checkpoint *Checkpoint // or a training checkpoint

	N          int   // digits to generate and score
	Seed       int64 // of their noise vectors (as mnistgan generate --seed)
	Classifier string
	Data       string // MNIST directory; "" finds the default
	JSON       string // where the result goes; "" picks EvalJSONPath's
	Versions   map[string]string
}

// EvalResult is what an evaluation measured; it is also the JSON file.
type EvalResult struct {
	Model              string            `json:"model"`
	Step               int               `json:"step,omitempty"` // of the checkpoint
	Seed               int64             `json:"seed"`
	Classifier         string            `json:"classifier"`
	ClassifierAccuracy float64           `json:"classifier_test_accuracy"`
	Generated          quality.Report    `json:"generated"`
	HeldOut            quality.Report    `json:"real_held_out"` // the ceiling
	Seconds            float64           `json:"seconds"`
	Written            string            `json:"written"`
	Versions           map[string]string `json:"versions,omitempty"`
	JSON               string            `json:"-"` // where it was written
}

// EvalJSONPath is where an evaluation's JSON goes by default: RUN/eval/ckpt-N.json
// for a checkpoint of a run (CKPT.eval.json beside one outside a run), and
// DIR.eval.json beside a SavedModel.
func EvalJSONPath(opts EvalOptions) string {
	if opts.Checkpoint != nil {
		ckpt := absPath(opts.Checkpoint.Dir)
		if parent := filepath.Dir(ckpt); filepath.Base(parent) == checkpointsDir {
			return filepath.Join(filepath.Dir(parent), "eval", filepath.Base(ckpt)+".json")
		}
		return ckpt + ".eval.json"
	}
	return absPath(opts.Model) + ".eval.json"
}

// absPath is path made absolute, or cleaned if it cannot be ("." becomes the
// directory's name, so a suffix makes a sibling, not a hidden file).
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

// CheckEvalN refuses a number of digits to evaluate outside 2 to MaxEval.
func CheckEvalN(flag string, n int) error {
	if n < 2 || n > MaxEval {
		return fmt.Errorf("%s %d: evaluate 2 to %d digits (%d, the size of the test set, is the usual)", flag, n, MaxEval, DefaultEvalN)
	}
	return nil
}

// Evaluate generates opts.N digits with the model and scores them, and the
// held-out real digits, with the classifier; it writes the result as JSON.
func Evaluate(opts EvalOptions, stdout io.Writer) (*EvalResult, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if (opts.Model == "") == (opts.Checkpoint == nil) {
		return nil, fmt.Errorf("eval: give a SavedModel or a checkpoint, not both or neither")
	}
	if err := CheckEvalN("--n", opts.N); err != nil {
		return nil, err
	}
	began := time.Now()
	jsonPath := opts.JSON
	if jsonPath == "" {
		jsonPath = EvalJSONPath(opts)
	}
	// Before a minute of generating: the figures must have somewhere to go.
	if err := checkCreatable(jsonPath, false); err != nil {
		return nil, fmt.Errorf("--json %s: %w", jsonPath, err)
	}
	clf, err := quality.LoadClassifier(opts.Classifier)
	if err != nil {
		return nil, err
	}
	defer clf.Close()
	var model *Model
	res := &EvalResult{Seed: opts.Seed, Classifier: opts.Classifier, ClassifierAccuracy: clf.Info.TestAccuracy, Versions: opts.Versions}
	if opts.Model != "" {
		model, err = LoadSavedModel(opts.Model)
		res.Model = opts.Model
	} else {
		model, err = LoadCheckpoint(*opts.Checkpoint)
		res.Model, res.Step = opts.Checkpoint.Dir, opts.Checkpoint.State.Step
	}
	if err != nil {
		return nil, err
	}
	defer model.Close()
	train, test, err := loadSplits(opts.Data)
	if err != nil {
		return nil, err
	}
	if err := clf.CheckHeldOut(train); err != nil { // before a minute of generating
		return nil, err
	}
	ev, err := quality.NewEvaluator(clf, test)
	if err != nil {
		return nil, err
	}
	defer ev.Close()

	fmt.Fprintf(stdout, "generating %d digits with %s (seed %d)\n", opts.N, res.Model, opts.Seed)
	z, err := Noise(opts.N, opts.Seed)
	if err != nil {
		return nil, err
	}
	genStart := time.Now()
	pixels, err := model.Generate(z)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "generated in %s; scoring them and %d held-out real digits with the classifier in %s (test accuracy %.2f%%)\n",
		formatDuration(time.Since(genStart)), quality.HeldOut, opts.Classifier, 100*clf.Info.TestAccuracy)
	if res.Generated, err = ev.Score(pixels, opts.N); err != nil {
		return nil, err
	}
	if res.HeldOut, err = ev.Ceiling(train); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(began).Seconds()
	res.Written = time.Now().UTC().Format(time.RFC3339)
	res.JSON = jsonPath
	if err := os.MkdirAll(filepath.Dir(jsonPath), 0o755); err != nil {
		return nil, fmt.Errorf("--json %s: %w", jsonPath, err)
	}
	if err := writeJSONAtomic(res.JSON, res); err != nil {
		return nil, fmt.Errorf("--json %w", err)
	}
	return res, nil
}

// evaluator scores the generator of a training run every --eval-every steps,
// on the same noise vectors each time.
type evaluator struct {
	clf     *quality.Classifier
	ev      *quality.Evaluator
	noise   []*tf.Tensor // chunks of EvalNoise
	n       int
	ceiling quality.Report
}

// newEvaluator loads the classifier and MNIST's test split and scores the
// real held-out digits of train (the whole training split) once.
func newEvaluator(cfg Config, dataDir string, train *mnist.Set) (*evaluator, error) {
	clf, err := quality.LoadClassifier(cfg.Classifier)
	if err != nil {
		return nil, fmt.Errorf("--eval-every: %w", err)
	}
	e := &evaluator{clf: clf, n: cfg.EvalN}
	fail := func(err error) (*evaluator, error) {
		e.close()
		return nil, err
	}
	test, err := mnist.Load(dataDir, mnist.Test)
	if err != nil {
		return fail(fmt.Errorf("load MNIST: %w", err))
	}
	if e.ev, err = quality.NewEvaluator(clf, test); err != nil {
		return fail(err)
	}
	if e.ceiling, err = e.ev.Ceiling(train); err != nil {
		return fail(err)
	}
	// Noise of its own seed stream, the one `mnistgan eval --seed` draws for the
	// run's seed: the last evaluation of a run equals mnistgan eval on its
	// final checkpoint.
	z, err := Noise(cfg.EvalN, cfg.Seed)
	if err != nil {
		return fail(err)
	}
	for start := 0; start < len(z); start += chunk {
		t, err := tf.NewTensor(z[start:min(start+chunk, len(z))])
		if err != nil {
			return fail(err)
		}
		e.noise = append(e.noise, t)
	}
	return e, nil
}

func (e *evaluator) close() {
	if e.ev != nil {
		e.ev.Close()
	}
	e.clf.Close()
}

// score generates the evaluation digits with the session's current generator
// and scores them.
func (e *evaluator) score(ctx context.Context, sess *tf.Session, gan *graphs.GAN) (quality.Report, error) {
	pixels := make([]float32, 0, e.n*mnist.Side*mnist.Side)
	for _, z := range e.noise {
		if err := ctx.Err(); err != nil {
			return quality.Report{}, err
		}
		out, err := sess.Run(map[tf.Output]*tf.Tensor{gan.EvalNoise: z}, []tf.Output{gan.EvalImages}, nil)
		if err != nil {
			return quality.Report{}, fmt.Errorf("generate digits to evaluate: %w", err)
		}
		pixels = append(pixels, flatten4(out[0].Value().([][][][]float32))...)
	}
	return e.ev.Score(pixels, e.n)
}
