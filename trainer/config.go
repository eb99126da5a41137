package trainer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/mnistgan/mnistgan/tfops"
)

// Config is everything a training run depends on: the flags of `mnistgan train`.
// It is saved as run.json in the run directory, and a resumed run reads it back.
type Config struct {
	Steps     int     `json:"steps"`
	Batch     int     `json:"batch"`
	Optimizer string  `json:"optimizer"`
	LRD       float64 `json:"lr_d"`
	LRG       float64 `json:"lr_g"`
	DecayD    float64 `json:"decay_d"`
	DecayG    float64 `json:"decay_g"`
	Beta1     float64 `json:"beta1"` // Adam's first-moment decay
	Seed      int64   `json:"seed"`

	SampleEvery     int `json:"sample_every"`
	CheckpointEvery int `json:"checkpoint_every"`
	Keep            int `json:"keep"`
	LogEvery        int `json:"log_every"`
	HistogramEvery  int `json:"histogram_every"`

	// LogDir gathers the TensorBoard logs of several runs, each in a
	// subdirectory named after its run directory; "" keeps the log in the
	// run directory. See EventsDir.
	LogDir string `json:"logdir"`

	Out    string `json:"out"`
	Data   string `json:"data"`   // directory of the idx files; "" finds the default
	Subset int    `json:"subset"` // train on the first N images only; 0 = all 60,000

	Device  string `json:"device"`
	Threads int    `json:"threads"` // TensorFlow intra-op threads; 0 = one per core
	// InterOpThreads is how many kernels TensorFlow runs at once; 0 lets
	// TensorFlow pick (one per core).
	InterOpThreads int `json:"inter_op_threads"`

	// EvalEvery scores the generator every N steps (0: never) on EvalN
	// digits with the classifier in Classifier (see package quality).
	EvalEvery  int    `json:"eval_every"`
	EvalN      int    `json:"eval_n"`
	Classifier string `json:"classifier"`
}

// DefaultConfig returns the seed's settings: RMSprop at 2e-4 (decay 6e-8) for
// the discriminator and 1e-4 (decay 3e-8) for the adversarial network, batch
// 256, 10,000 steps, a sample grid every 500 steps.
func DefaultConfig() Config {
	return Config{
		Steps: 10000, Batch: 256, Optimizer: tfops.RMSprop,
		LRD: 2e-4, LRG: 1e-4, DecayD: 6e-8, DecayG: 3e-8, Beta1: 0.9, Seed: 1,
		SampleEvery: 500, CheckpointEvery: 500, Keep: 3, LogEvery: 1, HistogramEvery: 500,
		Device: "cpu", EvalN: DefaultEvalN, Classifier: DefaultClassifierDir,
	}
}

// Validate checks the settings that need no data or TensorFlow to check.
func (c Config) Validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.Steps <= 0 {
		bad("--steps %d: must be at least 1", c.Steps)
	}
	if c.Batch <= 0 {
		bad("--batch %d: must be at least 1", c.Batch)
	}
	if _, err := tfops.NewOptimizer(c.Optimizer, float32(c.LRD), float32(c.DecayD)); err != nil {
		bad("--optimizer: %v", err)
	}
	for _, lr := range []struct {
		name string
		v    float64
	}{{"--lr-d", c.LRD}, {"--lr-g", c.LRG}} {
		// Any finite positive rate is accepted, however large: too large a
		// rate is a divergence the run detects and reports (NaN losses),
		// not a typo to guess at.
		if !(lr.v > 0 && lr.v <= math.MaxFloat32 && float32(lr.v) > 0) {
			bad("%s %g: a learning rate must be a positive float32 (the seed uses 2e-4 and 1e-4)", lr.name, lr.v)
		}
	}
	if !(c.Beta1 >= 0 && c.Beta1 < 1) {
		bad("--beta1 %g: must be in [0, 1) (Keras 0.9; DCGAN papers use 0.5)", c.Beta1)
	}
	if !(c.DecayD >= 0 && c.DecayD <= math.MaxFloat32) || !(c.DecayG >= 0 && c.DecayG <= math.MaxFloat32) {
		bad("--decay-d %g/--decay-g %g: a decay must be 0 or a positive float32", c.DecayD, c.DecayG)
	}
	for _, every := range []struct {
		name string
		v    int
	}{{"--sample-every", c.SampleEvery}, {"--checkpoint-every", c.CheckpointEvery}, {"--histogram-every", c.HistogramEvery}, {"--eval-every", c.EvalEvery}} {
		if every.v < 0 {
			bad("%s %d: must be 0 (never) or positive", every.name, every.v)
		}
	}
	if c.LogEvery < 1 {
		bad("--log-every %d: must be at least 1 (the scalars are what TensorBoard plots)", c.LogEvery)
	}
	if c.EvalEvery > 0 {
		if err := CheckEvalN("--eval-n", c.EvalN); err != nil {
			bad("%v", err)
		}
	}
	if c.EvalEvery > 0 && c.Classifier == "" {
		bad("--classifier: --eval-every needs the classifier's directory")
	}
	if c.Keep < 0 {
		bad("--keep %d: must be 0 (keep all) or positive", c.Keep)
	}
	if c.Subset < 0 {
		bad("--subset %d: must be 0 (all images) or positive", c.Subset)
	}
	if err := tfops.CheckThreads("--threads", c.Threads); err != nil {
		bad("%v", err)
	}
	if err := tfops.CheckThreads("--inter-op-threads", c.InterOpThreads); err != nil {
		bad("%v", err)
	}
	if _, err := tfops.DeviceName(c.Device); err != nil {
		bad("--device: %v", err)
	}
	if c.Out == "" {
		bad("--out: a run directory is needed")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// EventsDir is the directory of the run's TensorBoard event files:
// <out>/logs, or <logdir>/<name of out> with --logdir, so that runs sharing a
// --logdir stay apart and TensorBoard names each after its run directory.
func (c Config) EventsDir() string {
	if c.LogDir == "" {
		return filepath.Join(c.Out, logsDir)
	}
	out, err := filepath.Abs(c.Out)
	if err != nil {
		out = filepath.Clean(c.Out)
	}
	return filepath.Join(c.LogDir, filepath.Base(out))
}

// optimizers returns the discriminator's and the adversarial network's optimizers.
func (c Config) optimizers() (d, g tfops.Optimizer, err error) {
	if d, err = tfops.NewOptimizer(c.Optimizer, float32(c.LRD), float32(c.DecayD)); err != nil {
		return d, g, err
	}
	if g, err = tfops.NewOptimizer(c.Optimizer, float32(c.LRG), float32(c.DecayG)); err != nil {
		return d, g, err
	}
	d.Beta1, g.Beta1 = float32(c.Beta1), float32(c.Beta1)
	return d, g, nil
}

// runFile is the record of a run's settings in its directory.
const runFile = "run.json"

// runRecord is what run.json holds.
type runRecord struct {
	Config   Config            `json:"config"`
	Versions map[string]string `json:"versions"`
	Started  string            `json:"started"`
}

// ResumeConfig reads the settings a run in dir was started with.
func ResumeConfig(dir string) (Config, error) {
	// Settings added since the run started (none in its run.json) take
	// their defaults.
	rec := runRecord{Config: DefaultConfig()}
	path := filepath.Join(dir, runFile)
	if err := readJSON(path, &rec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("--resume: %s has no %s, so it holds no run to resume; drop --resume to start one there", dir, runFile)
		}
		return Config{}, fmt.Errorf("--resume: read %s: %w", path, err)
	}
	rec.Config.Out = dir
	return rec.Config, nil
}
