package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mnistgan/mnistgan/quality"
	"github.com/mnistgan/mnistgan/trainer"
)

func evalCommand() *cli.Command {
	def := trainer.DefaultClassifierConfig()
	return &cli.Command{
		Name:  "eval",
		Usage: "measure generated digits: Inception Score, Frechet distance, mode coverage",
		Description: "Generates --n digits with a model (--model, --checkpoint or --run) and scores them with an\n" +
			"MNIST classifier trained in the same Go + TensorFlow stack: the classifier Inception Score,\n" +
			"the Frechet distance of its penultimate-layer features to those of MNIST's test set, the\n" +
			"share of each predicted digit and the mean top-class confidence, beside the same figures for\n" +
			"10,000 real digits the classifier never saw (the ceiling). Prints a table and writes JSON.\n" +
			"--train-classifier trains the classifier once (a few minutes); later evals reuse it.",
		OnUsageError: usageError,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "train-classifier", Usage: "train the evaluation classifier and save it to --classifier"},
			&cli.BoolFlag{Name: "force", Usage: "with --train-classifier: replace the classifier already in --classifier"},
			&cli.StringFlag{Name: "classifier", Value: def.Dir, Usage: "the classifier's `DIR` (a SavedModel and classifier.json)"},
			&cli.IntFlag{Name: "classifier-steps", Value: def.Steps, Usage: fmt.Sprintf("with --train-classifier: training steps of %d images", def.Batch)},
			&cli.StringFlag{Name: "model", Usage: "a SavedModel `DIR` written by mnistgan export"},
		}, append(checkpointFlags(),
			&cli.IntFlag{Name: "n", Value: trainer.DefaultEvalN, Usage: fmt.Sprintf("digits to generate and score (2 to %d)", trainer.MaxEval)},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the noise vectors (as mnistgan generate --seed)"},
			&cli.StringFlag{Name: "json", Usage: "write the figures to `FILE` (default: RUN/eval/ckpt-N.json, or DIR.eval.json for --model)"},
			&cli.StringFlag{Name: "data", Usage: "directory with the MNIST idx files (default: $MNISTGAN_DATA, data/mnist, or the GoMNIST module)"},
			&cli.IntFlag{Name: "threads", Usage: "with --train-classifier: TensorFlow threads per kernel, at most 1024", DefaultText: "one per core"},
		)...),
		Action: eval,
	}
}

func eval(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see mnistgan eval --help)", c.Args().First())
	}
	if err := checkLibrary(); err != nil {
		return err
	}
	model := c.String("model")
	wantsModel := model != "" || c.String("checkpoint") != "" || c.String("run") != ""
	if !c.Bool("train-classifier") && !wantsModel {
		return fmt.Errorf("what to evaluate? add --run runs/NAME, --checkpoint DIR or --model DIR; or --train-classifier to train the classifier first")
	}
	if !c.Bool("train-classifier") {
		for _, name := range []string{"force", "classifier-steps", "threads"} {
			if c.IsSet(name) {
				return fmt.Errorf("--%s is about training the classifier, so it goes with --train-classifier", name)
			}
		}
	}
	opts := trainer.EvalOptions{
		Model: model, N: c.Int("n"), Seed: c.Int64("seed"), Classifier: c.String("classifier"),
		Data: c.String("data"), JSON: c.String("json"), Versions: versionMap(),
	}
	// Find the model before minutes of classifier training, not after.
	if wantsModel {
		if err := trainer.CheckEvalN("--n", opts.N); err != nil {
			return err
		}
		var err error
		if opts.Checkpoint, err = modelFromFlags(c); err != nil {
			return err
		}
	}

	if c.Bool("train-classifier") {
		cfg := trainer.DefaultClassifierConfig()
		cfg.Dir, cfg.Data, cfg.Steps, cfg.Threads, cfg.Force = opts.Classifier, opts.Data, c.Int("classifier-steps"), c.Int("threads"), c.Bool("force")
		cfg.Versions = opts.Versions
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		info, err := trainer.TrainClassifier(ctx, cfg, c.App.Writer)
		stop()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "classifier saved to %s: %.2f%% of the %d test digits right, trained in %.0f s\n",
			cfg.Dir, 100*info.TestAccuracy, info.TestImages, info.Seconds)
		if !wantsModel {
			return nil
		}
	}

	res, err := trainer.Evaluate(opts, c.App.Writer)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintln(w)
	if err := quality.WriteTable(w,
		quality.Column{Name: "generated", Report: res.Generated},
		quality.Column{Name: "real (held out)", Report: res.HeldOut}); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nwritten to %s\n", res.JSON)
	return nil
}
