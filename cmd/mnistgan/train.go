package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mnistgan/mnistgan/trainer"
)

// runsDir is where runs go when --out is not given.
const runsDir = "runs"

func trainCommand() *cli.Command {
	def := trainer.DefaultConfig()
	return &cli.Command{
		Name:  "train",
		Usage: "train the DCGAN on MNIST",
		Description: "Runs the seed's alternating loop: each step updates the discriminator on B real and\n" +
			"B generated images, then the generator through the frozen discriminator. Writes sample\n" +
			"grids, checkpoints, run.json and a TensorBoard log to --out; --resume continues the run there.",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "steps", Value: def.Steps, Usage: "training steps (one discriminator and one generator update each)"},
			&cli.IntFlag{Name: "batch", Value: def.Batch, Usage: "B: real images and noise vectors per step"},
			&cli.StringFlag{Name: "optimizer", Value: def.Optimizer, Usage: "rmsprop or adam (Keras defaults: rho 0.9 / beta 0.9, 0.999; epsilon 1e-7)"},
			&cli.Float64Flag{Name: "lr-d", Value: def.LRD, Usage: "discriminator learning rate"},
			&cli.Float64Flag{Name: "lr-g", Value: def.LRG, Usage: "adversarial (generator) learning rate"},
			&cli.Float64Flag{Name: "decay-d", Value: def.DecayD, Usage: "discriminator time-based decay: lr / (1 + decay * step)"},
			&cli.Float64Flag{Name: "decay-g", Value: def.DecayG, Usage: "adversarial time-based decay"},
			&cli.Float64Flag{Name: "beta1", Value: def.Beta1, Usage: "Adam's first-moment decay (Keras 0.9; the DCGAN paper's 0.5 is steadier)"},
			&cli.Int64Flag{Name: "seed", Value: def.Seed, Usage: "seed of every random draw: initial weights, batches, noise, dropout"},
			&cli.IntFlag{Name: "sample-every", Value: def.SampleEvery, Usage: "write a 4x4 grid from the fixed noise every N steps (0: only at the end)"},
			&cli.IntFlag{Name: "checkpoint-every", Value: def.CheckpointEvery, Usage: "write a checkpoint every N steps (0: only at the end)"},
			&cli.IntFlag{Name: "keep", Value: def.Keep, Usage: "checkpoints to keep, newest first (0: all)"},
			&cli.IntFlag{Name: "log-every", Value: def.LogEvery, Usage: "log TensorBoard scalars, and print a progress line when output is not a terminal, every N steps"},
			&cli.IntFlag{Name: "histogram-every", Value: def.HistogramEvery, Usage: "log histograms of the weights to TensorBoard every N steps (0: only at the start and the end)"},
			&cli.StringFlag{Name: "logdir", Usage: "write the TensorBoard log to DIR/<name of --out>, to view several runs together (default: OUT/logs)"},
			&cli.StringFlag{Name: "out", Usage: "run directory (default: runs/run-DATE-TIME; with --resume, the newest run in runs/)"},
			&cli.StringFlag{Name: "data", Usage: "directory with the MNIST idx files (default: $MNISTGAN_DATA, data/mnist, or the GoMNIST module)"},
			&cli.IntFlag{Name: "subset", Usage: "train on the first N training images only", DefaultText: "all 60,000"},
			&cli.StringFlag{Name: "device", Value: def.Device, Usage: "cpu, gpu or gpu:N"},
			&cli.IntFlag{Name: "threads", Usage: "TensorFlow threads per kernel, at most 1024", DefaultText: "one per core"},
			&cli.IntFlag{Name: "inter-op-threads", Usage: "kernels TensorFlow runs at once, at most 1024", DefaultText: "one per core"},
			&cli.BoolFlag{Name: "resume", Usage: "continue the run in --out from its latest checkpoint"},
			&cli.IntFlag{Name: "eval-every", Usage: "score the generator every N steps and at the end (Inception Score, Frechet distance; see mnistgan eval); 0: never"},
			&cli.IntFlag{Name: "eval-n", Value: def.EvalN, Usage: "digits each --eval-every evaluation generates and scores"},
			&cli.StringFlag{Name: "classifier", Value: def.Classifier, Usage: "the evaluation classifier's `DIR`, for --eval-every (mnistgan eval --train-classifier makes it)"},
			&cli.StringFlag{Name: "stats", Usage: "write each step's timing (wall time, time inside Session.Run) as JSON to `FILE` at the end (for benchmarks)"},
		},
		Action: train,
	}
}

// runSettings are flags that define what is trained; a resumed run keeps them.
var runSettings = []string{"batch", "optimizer", "lr-d", "lr-g", "decay-d", "decay-g", "beta1", "seed", "subset"}

func train(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see mnistgan train --help)", c.Args().First())
	}
	if err := checkLibrary(); err != nil {
		return err
	}
	cfg, err := trainConfig(c)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan os.Signal, 1)
	signal.Notify(got, os.Interrupt, syscall.SIGTERM)
	var caught os.Signal
	go func() {
		if s, ok := <-got; ok {
			caught = s
			fmt.Fprintf(c.App.ErrWriter, "\nmnistgan: %s received; finishing this step and saving a checkpoint (send it again to quit now)\n", signalName(s))
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			cancel()
		}
	}()
	defer signal.Stop(got)

	res, err := trainer.Run(ctx, cfg, trainer.Options{Stdout: c.App.Writer, Resume: c.Bool("resume"), Versions: versionMap(), Stats: c.String("stats")})
	if errors.Is(err, trainer.ErrInterrupted) {
		return interrupted(c, cfg, res, caught)
	}
	if err != nil {
		return withAdvice(err, cfg)
	}
	samples := res.LastGrid
	if samples == "" {
		samples = "none this session"
	}
	fmt.Fprintf(c.App.Writer, "done: %d steps; samples %s, checkpoint %s\n", res.Step, samples, res.Checkpoint.Dir)
	return nil
}

// interrupted reports where a stopped run left its files and exits 128+signal.
func interrupted(c *cli.Context, cfg trainer.Config, res *trainer.Result, sig os.Signal) error {
	w := c.App.Writer
	fmt.Fprintf(w, "stopped after step %d of %d.\n", res.Step, cfg.Steps)
	if res.Checkpoint.Dir != "" {
		fmt.Fprintf(w, "checkpoint: %s\n", res.Checkpoint.Dir)
	}
	if res.LastGrid != "" {
		fmt.Fprintf(w, "samples:    %s\n", res.LastGrid)
	}
	if res.LogDir != "" {
		fmt.Fprintf(w, "TensorBoard log: %s\n", res.LogDir)
	}
	fmt.Fprintf(w, "resume with: mnistgan train --out %s --resume\n", cfg.Out)
	code := 130
	if sig == syscall.SIGTERM {
		code = 143
	}
	return exitError{fmt.Errorf("interrupted by %s at step %d", signalName(sig), res.Step), code}
}

// signalName is the name users know a signal by (Go prints "interrupt" and
// "terminated").
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case nil:
		return "a signal"
	}
	return sig.String()
}

// withAdvice adds what to do to a failure that left the run resumable: a
// full disk stops a run, but its last checkpoint is intact.
func withAdvice(err error, cfg trainer.Config) error {
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return err
	}
	// What --resume would continue from, whether this session wrote it or
	// an earlier one.
	last, lerr := trainer.LatestCheckpoint(cfg.Out)
	if lerr != nil {
		return adviceError{err, fmt.Sprintf("free some disk space, then start again (delete %s or choose another --out)", cfg.Out)}
	}
	return adviceError{err, fmt.Sprintf("the last checkpoint, %s (step %d), is intact: free some disk space, then mnistgan train --out %s --resume",
		last.Dir, last.State.Step, cfg.Out)}
}

// adviceError appends advice to the first line of an error: main prints
// only that line, and a failure can carry a second one (a log that could
// not be flushed either).
type adviceError struct {
	error
	advice string
}

func (e adviceError) Error() string {
	first, _, _ := strings.Cut(e.error.Error(), "\n")
	return first + "; " + e.advice
}

func (e adviceError) Unwrap() error { return e.error }

type exitError struct {
	error
	code int
}

func (e exitError) ExitCode() int { return e.code }
func (e exitError) Unwrap() error { return e.error }

// trainConfig turns flags into a config. For --resume the run's saved settings
// are the base: flags may change how long and how it runs, not what it trains.
func trainConfig(c *cli.Context) (trainer.Config, error) {
	cfg := trainer.Config{
		Steps: c.Int("steps"), Batch: c.Int("batch"), Optimizer: c.String("optimizer"),
		LRD: c.Float64("lr-d"), LRG: c.Float64("lr-g"), DecayD: c.Float64("decay-d"), DecayG: c.Float64("decay-g"), Beta1: c.Float64("beta1"),
		Seed: c.Int64("seed"), SampleEvery: c.Int("sample-every"), CheckpointEvery: c.Int("checkpoint-every"),
		Keep: c.Int("keep"), LogEvery: c.Int("log-every"), HistogramEvery: c.Int("histogram-every"), LogDir: c.String("logdir"),
		Out: c.String("out"), Data: c.String("data"),
		Subset: c.Int("subset"), Device: c.String("device"), Threads: c.Int("threads"), InterOpThreads: c.Int("inter-op-threads"),
		EvalEvery: c.Int("eval-every"), EvalN: c.Int("eval-n"), Classifier: c.String("classifier"),
	}
	if !c.Bool("resume") {
		if cfg.Out == "" {
			cfg.Out = filepath.Join(runsDir, "run-"+time.Now().Format("20060102-150405"))
		}
		return cfg, nil
	}
	if cfg.Out == "" {
		newest, err := newestRun(runsDir)
		if err != nil {
			return cfg, err
		}
		cfg.Out = newest
	}
	saved, err := trainer.ResumeConfig(cfg.Out)
	if err != nil {
		return cfg, err
	}
	for _, name := range runSettings {
		if c.IsSet(name) && fmt.Sprint(c.Value(name)) != fmt.Sprint(settingOf(saved, name)) {
			return cfg, fmt.Errorf("--%s %v differs from the %v the run in %s was started with; a resumed run keeps its settings (drop --%s, or start a new run)",
				name, c.Value(name), settingOf(saved, name), cfg.Out, name)
		}
	}
	// The log stays where it is: resumed elsewhere, TensorBoard would show one
	// run as two, the second without its graph or first steps.
	if c.IsSet("logdir") && c.String("logdir") != saved.LogDir {
		return cfg, fmt.Errorf("--logdir %s: the run in %s logs to %s, and a resumed run appends to its own log; drop --logdir",
			c.String("logdir"), cfg.Out, saved.EventsDir())
	}
	// What may change on resume: length, output cadence, data location, hardware.
	for name, apply := range map[string]func(){
		"steps":            func() { saved.Steps = cfg.Steps },
		"sample-every":     func() { saved.SampleEvery = cfg.SampleEvery },
		"checkpoint-every": func() { saved.CheckpointEvery = cfg.CheckpointEvery },
		"keep":             func() { saved.Keep = cfg.Keep },
		"log-every":        func() { saved.LogEvery = cfg.LogEvery },
		"histogram-every":  func() { saved.HistogramEvery = cfg.HistogramEvery },
		"data":             func() { saved.Data = cfg.Data },
		"device":           func() { saved.Device = cfg.Device },
		"threads":          func() { saved.Threads = cfg.Threads },
		"inter-op-threads": func() { saved.InterOpThreads = cfg.InterOpThreads },
		"eval-every":       func() { saved.EvalEvery = cfg.EvalEvery },
		"eval-n":           func() { saved.EvalN = cfg.EvalN },
		"classifier":       func() { saved.Classifier = cfg.Classifier },
	} {
		if c.IsSet(name) {
			apply()
		}
	}
	return saved, nil
}

func settingOf(cfg trainer.Config, flag string) any {
	switch flag {
	case "batch":
		return cfg.Batch
	case "optimizer":
		return cfg.Optimizer
	case "lr-d":
		return cfg.LRD
	case "lr-g":
		return cfg.LRG
	case "decay-d":
		return cfg.DecayD
	case "decay-g":
		return cfg.DecayG
	case "beta1":
		return cfg.Beta1
	case "seed":
		return cfg.Seed
	case "subset":
		return cfg.Subset
	}
	return nil
}

// newestRun returns the run directory under dir whose run.json is newest.
func newestRun(dir string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "run.json"))
	newest, newestTime := "", time.Time{}
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.ModTime().After(newestTime) {
			newest, newestTime = filepath.Dir(m), st.ModTime()
		}
	}
	if newest == "" {
		return "", fmt.Errorf("--resume: no run found in %s/; pass --out DIR to name the run to resume", dir)
	}
	return newest, nil
}
