// Package trainer runs the GAN's alternating training loop on a graph from
// package graphs: it feeds the data once, steps the discriminator and the
// adversarial network, and writes progress, sample grids, checkpoints and a
// TensorBoard log.
package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/mnist"
	"github.com/mnistgan/mnistgan/quality"
	"github.com/mnistgan/mnistgan/tfops"
)

// Directory names inside a run directory.
const (
	samplesDir = "samples"
	gridSide   = 4 // sample grids are 4 x 4
)

// ErrInterrupted is returned when the context was cancelled (SIGINT, SIGTERM):
// the run stopped after a whole step and saved a checkpoint.
var ErrInterrupted = errors.New("training interrupted")

// ErrDiverged is returned when a loss became NaN or infinite.
var ErrDiverged = errors.New("training diverged")

// Result describes how a run ended.
type Result struct {
	Step       int        // steps completed
	Checkpoint Checkpoint // the last checkpoint written
	LastGrid   string     // path of the last sample grid
	LogDir     string     // directory of the TensorBoard event files
	Metrics    Metrics    // of the last step
	// Eval is the last --eval-every evaluation, with its step (0: none).
	Eval     quality.Report
	EvalStep int
}

// Options are the parts of a run that are not settings: where output goes and
// versions to record.
type Options struct {
	Stdout   io.Writer
	Resume   bool
	Versions map[string]string
	// AfterStep, if set, is called after every step with its 1-based number and
	// metrics (tests use it to watch the run).
	AfterStep func(step int, m Metrics)
	// Stats, if set, names a JSON file that receives every step's timing when
	// the run ends (scripts/bench reads it).
	Stats string
}

// Run trains as cfg says. With opts.Resume it continues the run in cfg.Out from
// its latest checkpoint; otherwise cfg.Out must not already hold a run.
func Run(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Resume {
		return train(ctx, cfg, opts, new(bool))
	}
	// A new run that fails before run.json records it (bad data, an
	// unmakeable log directory, a missing GPU) takes back the directories
	// and lock file it made, so it leaves nothing behind.
	made := missingPaths(cfg.Out, filepath.Join(cfg.Out, samplesDir), filepath.Join(cfg.Out, lockFile), cfg.EventsDir())
	var recorded bool
	res, err := train(ctx, cfg, opts, &recorded)
	if err != nil && !recorded {
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i]) // best effort, and only empty directories: err is the one to report
		}
	}
	return res, err
}

// train is Run once cfg is valid; it sets *recorded once run.json is written.
func train(ctx context.Context, cfg Config, opts Options, recorded *bool) (*Result, error) {
	if opts.Stats != "" {
		// Checked now, not when the run has ended.
		if err := checkCreatable(opts.Stats, false); err != nil {
			return nil, fmt.Errorf("--stats %s: %w", opts.Stats, err)
		}
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	resumeFrom, unlock, err := openRunDir(cfg, opts.Resume, stdout)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if resumeFrom != nil && resumeFrom.State.Step > cfg.Steps {
		return nil, fmt.Errorf("--steps %d: the run in %s is at step %d already; give a larger --steps to train it on", cfg.Steps, cfg.Out, resumeFrom.State.Step)
	}
	if resumeFrom != nil && resumeFrom.State.Step == cfg.Steps {
		// A finished run (or one killed after its last checkpoint): nothing
		// to train, and nothing to add to its log.
		fmt.Fprintf(stdout, "the run in %s is at step %d of %d already: nothing to train (give a larger --steps to train it on)\n", cfg.Out, cfg.Steps, cfg.Steps)
		res := &Result{Step: cfg.Steps, Checkpoint: *resumeFrom, LogDir: cfg.EventsDir()}
		if grid := gridPath(cfg.Out, cfg.Steps); fileExists(grid) {
			res.LastGrid = grid
		}
		return res, nil
	}

	dataDir := cfg.Data
	if dataDir == "" {
		var err error
		if dataDir, err = mnist.Locate(); err != nil {
			return nil, err
		}
	}
	set, err := mnist.Load(dataDir, mnist.Train)
	if err != nil {
		return nil, fmt.Errorf("load MNIST: %w", err)
	}
	if cfg.EvalEvery > 0 {
		// A missing classifier fails at once, not after the graph is built.
		if err := quality.CheckClassifier(cfg.Classifier); err != nil {
			return nil, fmt.Errorf("--eval-every: %w", err)
		}
	}
	full := set
	if cfg.Subset > set.Count {
		return nil, fmt.Errorf("--subset %d is more than the %d training images in %s; use at most %d, or 0 for all", cfg.Subset, set.Count, dataDir, set.Count)
	}
	set = set.Subset(cfg.Subset)
	if cfg.Batch > set.Count {
		return nil, fmt.Errorf("--batch %d is larger than the %d training images; use a smaller --batch", cfg.Batch, set.Count)
	}

	device, err := tfops.DeviceName(cfg.Device)
	if err != nil {
		return nil, err
	}
	dOpt, gOpt, err := cfg.optimizers()
	if err != nil {
		return nil, err
	}
	gan, err := graphs.NewGAN(graphs.GANConfig{
		Batch: int64(cfg.Batch), Examples: int64(set.Count), Seed: cfg.Seed,
		D: dOpt, G: gOpt, Device: device, SampleSize: gridSide * gridSide,
	})
	if err != nil {
		return nil, err
	}
	sess, err := tfops.NewSession(gan.Graph, tfops.SessionConfig{IntraOpThreads: cfg.Threads, InterOpThreads: cfg.InterOpThreads, CPUOnly: device == "/device:CPU:0"})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if err := tfops.CheckDevice(sess, device); err != nil {
		return nil, fmt.Errorf("--device %s: %w", cfg.Device, err)
	}
	// The evaluator's sessions come after the training session: TensorFlow
	// sizes its thread pools once per process, from the first session, and
	// --threads and --inter-op-threads are the training session's.
	var eval *evaluator
	if cfg.EvalEvery > 0 {
		if eval, err = newEvaluator(cfg, dataDir, full); err != nil {
			return nil, err
		}
		defer eval.close()
	}

	if err := initialize(sess, gan, set); err != nil {
		return nil, err
	}
	start := 0
	var realPNG []byte
	if resumeFrom != nil {
		if err := gan.Saver.Restore(sess, resumeFrom.VariablesPrefix()); err != nil {
			if errors.Is(err, tfops.ErrCorruptCheckpoint) {
				return nil, fmt.Errorf("--resume: %w (something changed %s after it was written; delete it to resume from the checkpoint before it)", err, resumeFrom.Dir)
			}
			return nil, fmt.Errorf("--resume: %w (was the checkpoint written by another version of the networks?)", err)
		}
		start = resumeFrom.State.Step
		fmt.Fprintf(stdout, "resuming %s from step %d\n", cfg.Out, start)
	} else {
		rec := runRecord{Config: cfg, Versions: opts.Versions, Started: time.Now().UTC().Format(time.RFC3339)}
		if err := writeJSONAtomic(filepath.Join(cfg.Out, runFile), rec); err != nil {
			return nil, err
		}
		*recorded = true
		if realPNG, err = writeRealGrid(cfg.Out, set); err != nil {
			return nil, err
		}
	}

	t := &loop{cfg: cfg, opts: opts, sess: sess, gan: gan, eval: eval, res: &Result{Step: start}, gridStep: -1, histStep: -1,
		feeds:   map[tf.Output]*tf.Tensor{},
		fetches: []tf.Output{gan.DLoss, gan.DAcc, gan.DLearningRate, gan.GLoss, gan.GAcc, gan.GLearningRate},
		targets: []*tf.Operation{gan.Train},
	}
	if resumeFrom != nil {
		t.res.Checkpoint = *resumeFrom
	}
	if t.log, err = openLog(cfg, gan.Graph, start); err != nil {
		return nil, err
	}
	t.res.LogDir = t.log.dir
	fmt.Fprintf(stdout, "TensorBoard log: %s\n", t.log.dir)
	res, err := t.res, t.startLog(realPNG)
	if err == nil {
		res, err = t.run(ctx, start, stdout)
	}
	// Close flushes: whatever ended the run, its log keeps every step logged.
	// A write error of the log sticks, and ended the run already if it is
	// the one close returns.
	if cerr := t.log.close(); cerr != nil && !errors.Is(err, cerr) {
		err = errors.Join(err, cerr)
	}
	if opts.Stats != "" {
		if serr := writeStats(opts.Stats, cfg, t.timings); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	return res, err
}

// startLog logs what a new run starts from: the real digits and the initial
// weights, at step 0.
func (t *loop) startLog(realPNG []byte) error {
	if realPNG == nil { // resumed: the first session logged them
		return nil
	}
	if err := t.log.image(0, realTag, realPNG); err != nil {
		return err
	}
	return t.histograms(0)
}

// openRunDir prepares cfg.Out for a new run, or finds the checkpoint a
// resumed one continues from, holding the directory's lock until unlock. What
// a killed run left half-written is cleared first, and said on stdout.
func openRunDir(cfg Config, resume bool, stdout io.Writer) (from *Checkpoint, unlock func(), err error) {
	if resume {
		if _, err := os.Stat(cfg.Out); err != nil {
			return nil, nil, fmt.Errorf("--resume: %w in %s; start a new run without --resume", ErrNoCheckpoint, cfg.Out)
		}
	} else if err := prepareRunDir(cfg.Out); err != nil {
		return nil, nil, err
	} else if err := checkLogFree(cfg); err != nil {
		return nil, nil, err
	}
	lock, err := lockRun(cfg.Out)
	if err != nil {
		return nil, nil, err
	}
	unlock = func() { lock.Close() }
	did, err := recoverStale(cfg.Out)
	for _, line := range did {
		fmt.Fprintf(stdout, "cleaned up after an interrupted run: %s\n", line)
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	if !resume {
		return nil, unlock, nil
	}
	c, err := LatestCheckpoint(cfg.Out)
	if err != nil {
		unlock()
		if errors.Is(err, ErrNoCheckpoint) && len(c.PassedOver) == 0 {
			return nil, nil, fmt.Errorf("--resume: %w in %s (the run stopped before writing its first); start it again: delete %s, or choose another --out, and drop --resume", ErrNoCheckpoint, cfg.Out, cfg.Out)
		}
		return nil, nil, fmt.Errorf("--resume: %w", err)
	}
	for _, why := range c.PassedOver {
		fmt.Fprintf(stdout, "passed over a newer checkpoint: %s\n", why)
	}
	return &c, unlock, nil
}

// prepareRunDir creates dir for a new run, refusing one that holds a run already.
func prepareRunDir(dir string) error {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return fmt.Errorf("--out %s is a file; give a directory for the run", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, runFile)); err == nil {
		return fmt.Errorf("--out %s already holds a run; add --resume to continue it, or choose another --out", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, samplesDir), 0o755); err != nil {
		return fmt.Errorf("--out %s: cannot create the run directory: %w", dir, err)
	}
	return nil
}

// initialize sets every variable to its initial value and uploads the images.
func initialize(sess *tf.Session, gan *graphs.GAN, set *mnist.Set) error {
	data, err := imageTensor(set.Pixels, set.Count)
	if err != nil {
		return err
	}
	if _, err := sess.Run(map[tf.Output]*tf.Tensor{gan.Data: data}, nil, append(gan.Init, gan.LoadData)); err != nil {
		return fmt.Errorf("initialize variables: %w", err)
	}
	return nil
}

// writeRealGrid writes samples/real.png and returns it.
func writeRealGrid(runDir string, set *mnist.Set) ([]byte, error) {
	n := gridSide * gridSide
	if set.Count < n {
		n = set.Count
	}
	png, err := GridPNG(quality.UnitPixels(set.Pixels[:n*mnist.Side*mnist.Side]), n, mnist.Side, gridSide)
	if err != nil {
		return nil, err
	}
	return png, writeFileAtomic(filepath.Join(runDir, samplesDir, "real.png"), png)
}

// gridPath is where the sample grid of step goes.
func gridPath(runDir string, step int) string {
	return filepath.Join(runDir, samplesDir, fmt.Sprintf("step-%08d.png", step))
}

// loop is one training run in progress.
type loop struct {
	cfg  Config
	opts Options
	sess *tf.Session
	gan  *graphs.GAN
	eval *evaluator // nil without --eval-every
	res  *Result
	prog *progress
	log  *eventLog
	// Steps whose grid and histograms are written, so an interrupted run
	// does not log them twice.
	gridStep, histStep int

	// The training step's feeds, fetches and targets, built once: a step
	// allocates nothing but its step-number tensor.
	feeds   map[tf.Output]*tf.Tensor
	fetches []tf.Output
	targets []*tf.Operation

	timings []StepTiming // per step, for Options.Stats
}

func (t *loop) run(ctx context.Context, start int, stdout io.Writer) (*Result, error) {
	t.prog = newProgress(stdout, t.cfg.Steps, t.cfg.LogEvery, start, time.Now())
	defer t.prog.finish()
	for step := start; step < t.cfg.Steps; step++ {
		if ctx.Err() != nil {
			return t.stop(ErrInterrupted)
		}
		began := time.Now()
		st, err := tf.NewTensor(int64(step))
		if err != nil {
			return t.res, err
		}
		m, inRun, err := t.trainStep(st)
		if err != nil {
			return t.res, fmt.Errorf("step %d: %w", step+1, err)
		}
		if bad := nonFinite(m); bad != "" {
			return t.res, t.diverged(fmt.Errorf("%w at step %d: %s", ErrDiverged, step+1, bad))
		}
		done := step + 1
		t.res.Step, t.res.Metrics = done, m
		t.prog.step(done, m, time.Now())
		if t.opts.AfterStep != nil {
			t.opts.AfterStep(done, m)
		}
		if t.prog.due(done) {
			if err := t.log.scalars(done, m, t.prog.stepsPerSecond()); err != nil {
				return t.res, err
			}
		}
		if every(done, t.cfg.SampleEvery) || done == t.cfg.Steps {
			if err := t.sampleGrid(done); err != nil {
				return t.res, err
			}
		}
		if every(done, t.cfg.HistogramEvery) || done == t.cfg.Steps {
			if err := t.histograms(done); err != nil {
				return t.res, err
			}
		}
		if every(done, t.cfg.CheckpointEvery) || done == t.cfg.Steps {
			if err := t.checkpoint(done); err != nil {
				return t.res, err
			}
		}
		// After the checkpoint: a failed evaluation costs no checkpoint, and
		// Ctrl-C during one stops the run at this step.
		if t.eval != nil && (every(done, t.cfg.EvalEvery) || done == t.cfg.Steps) {
			if err := t.evaluate(ctx, done); err != nil {
				return t.res, err
			}
		}
		t.timings = append(t.timings, StepTiming{Step: done, Wall: time.Since(began).Seconds(), Run: inRun.Seconds()})
	}
	return t.res, nil
}

// trainStep runs one whole step in one Session.Run: the discriminator update
// on B real and B generated images, then the generator update through the
// frozen discriminator on fresh noise labelled real (the graph orders them).
// It also returns the time spent inside Session.Run.
func (t *loop) trainStep(step *tf.Tensor) (Metrics, time.Duration, error) {
	t.feeds[t.gan.Step] = step
	began := time.Now()
	out, err := t.sess.Run(t.feeds, t.fetches, t.targets)
	inRun := time.Since(began)
	if err != nil {
		return Metrics{}, inRun, fmt.Errorf("training step: %w", err)
	}
	v := func(i int) float32 { return out[i].Value().(float32) }
	return Metrics{DLoss: v(0), DAcc: v(1), DLR: v(2), GLoss: v(3), GAcc: v(4), GLR: v(5)}, inRun, nil
}

// stop ends an interrupted run with a checkpoint, a grid and histograms of
// where it got to.
func (t *loop) stop(cause error) (*Result, error) {
	if t.res.Step > t.res.Checkpoint.State.Step || t.res.Checkpoint.Dir == "" {
		if t.gridStep != t.res.Step {
			if err := t.sampleGrid(t.res.Step); err != nil {
				return t.res, errors.Join(cause, err)
			}
		}
		if t.histStep != t.res.Step {
			if err := t.histograms(t.res.Step); err != nil {
				return t.res, errors.Join(cause, err)
			}
		}
		if err := t.checkpoint(t.res.Step); err != nil {
			return t.res, errors.Join(cause, err)
		}
	}
	return t.res, cause
}

func (t *loop) sampleGrid(step int) error {
	out, err := t.sess.Run(map[tf.Output]*tf.Tensor{}, []tf.Output{t.gan.Samples}, nil)
	if err != nil {
		return fmt.Errorf("generate samples: %w", err)
	}
	pixels := flatten4(out[0].Value().([][][][]float32))
	png, err := GridPNG(pixels, gridSide*gridSide, mnist.Side, gridSide)
	if err != nil {
		return err
	}
	path := gridPath(t.cfg.Out, step)
	if err := writeFileAtomic(path, png); err != nil {
		return err
	}
	if err := t.log.image(step, samplesTag, png); err != nil {
		return err
	}
	t.res.LastGrid, t.gridStep = path, step
	t.prog.note("step %d: samples written to %s", step, path)
	return nil
}

// evaluate scores the generator as it is after step, logs the figures to
// TensorBoard and prints them.
func (t *loop) evaluate(ctx context.Context, step int) error {
	r, err := t.eval.score(ctx, t.sess, t.gan)
	// Its minutes are not training time: the rate and ETA start afresh.
	t.prog.resume(time.Now())
	if ctx.Err() != nil {
		return nil // the loop stops at the next step, with a checkpoint
	}
	if err != nil {
		return fmt.Errorf("evaluate at step %d: %w", step, err)
	}
	if err := t.log.eval(step, r); err != nil {
		return err
	}
	t.res.Eval, t.res.EvalStep = r, step
	t.prog.note("step %d: %s", step, evalLine(r, t.eval.ceiling))
	return nil
}

// evalLine is the progress output of an evaluation.
func evalLine(r, ceiling quality.Report) string {
	return fmt.Sprintf("eval on %d digits: Inception Score %.3f (real %.3f), Frechet distance %.3f (real %.3f), confidence %.3f",
		r.Images, r.InceptionScore, ceiling.InceptionScore, r.FrechetDistance, ceiling.FrechetDistance, r.TopConfidence)
}

func (t *loop) histograms(step int) error {
	// TensorFlow's histogram kernel fails on NaN with a message about
	// summaries; say what it means instead.
	if bad, err := t.gan.Saver.NonFinite(t.sess); err != nil {
		return err
	} else if len(bad) > 0 {
		return t.diverged(fmt.Errorf("%w at step %d: variable %s holds NaN or Inf", ErrDiverged, step, bad[0]))
	}
	if err := t.log.histograms(step, t.sess, t.gan); err != nil {
		return err
	}
	t.histStep = step
	return nil
}

func (t *loop) checkpoint(step int) error {
	// The log first: every step a checkpoint holds is then in the log, however
	// the process dies afterwards, and a crash loses only the events after the
	// last checkpoint, the steps a resume trains, and logs, again.
	if err := t.log.flush(); err != nil {
		return err
	}
	c, err := saveCheckpoint(t.cfg.Out, t.sess, t.gan.Saver, State{
		Step: step, Seed: t.cfg.Seed, RNG: rngDescription(t.cfg.Seed, step), Saved: time.Now().UTC(),
	}, t.cfg.Keep)
	if errors.Is(err, ErrDiverged) {
		return t.diverged(err)
	}
	if err != nil {
		return err
	}
	t.res.Checkpoint = c
	t.prog.note("step %d: checkpoint written to %s", step, c.Dir)
	return nil
}

// diverged completes a divergence error with what is left and what to do.
// A resumed run keeps its learning rates, and would diverge again at the
// same step, so the advice is a new run.
func (t *loop) diverged(err error) error {
	kept := "no checkpoint was written before it"
	if c := t.res.Checkpoint; c.Dir != "" {
		kept = fmt.Sprintf("the last good checkpoint, %s (step %d), is kept", c.Dir, c.State.Step)
	}
	return fmt.Errorf("%w; %s; start a new run with a lower --lr-d/--lr-g (this run has --lr-d %g --lr-g %g)", err, kept, t.cfg.LRD, t.cfg.LRG)
}

// every reports whether step is a multiple of n (n = 0 means never).
func every(step, n int) bool { return n > 0 && step%n == 0 }

// nonFinite says which metric is NaN or infinite ("d_loss is NaN"), or
// returns "".
func nonFinite(m Metrics) string {
	for _, v := range []struct {
		name string
		x    float32
	}{{"d_loss", m.DLoss}, {"g_loss", m.GLoss}, {"d_acc", m.DAcc}, {"g_acc", m.GAcc}} {
		if math.IsNaN(float64(v.x)) || math.IsInf(float64(v.x), 0) {
			return fmt.Sprintf("%s is %v", v.name, v.x)
		}
	}
	return ""
}

// flatten4 turns an [N][H][W][1] tensor value into one row-major slice.
func flatten4(v [][][][]float32) []float32 {
	var out []float32
	for _, img := range v {
		for _, row := range img {
			for _, px := range row {
				out = append(out, px...)
			}
		}
	}
	return out
}
