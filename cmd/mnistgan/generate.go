package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mnistgan/mnistgan/trainer"
)

func generateCommand() *cli.Command {
	return &cli.Command{
		Name:  "generate",
		Usage: "draw digits with a trained generator",
		Description: "Runs the generator of a SavedModel (--model) or of a training checkpoint (--checkpoint,\n" +
			"--run) on N noise vectors drawn by TensorFlow from --seed (or read from --z), and writes\n" +
			"a grid (--out), one PNG per digit (--each) and/or the exact values (--npy). The same\n" +
			"seed gives the same digits, from the checkpoint and from its export alike.",
		OnUsageError: usageError,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "a SavedModel `DIR` written by mnistgan export"},
		}, append(checkpointFlags(),
			&cli.IntFlag{Name: "n", Value: 16, Usage: fmt.Sprintf("digits to draw (1 to %d)", trainer.MaxGenerate)},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the noise vectors: the same seed draws the same digits"},
			&cli.StringFlag{Name: "z", Usage: "an .npy `FILE` of noise vectors, float32 [N, 100], to use instead of --n and --seed"},
			&cli.StringFlag{Name: "out", Usage: "write a grid of the digits to `FILE`.png"},
			&cli.StringFlag{Name: "each", Usage: "write one 28x28 PNG per digit into `DIR` (digit-0000.png, ...)"},
			&cli.StringFlag{Name: "npy", Usage: "write the images as a float32 .npy array [N, 28, 28, 1] to `FILE`"},
		)...),
		Action: generate,
	}
}

func generate(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see mnistgan generate --help)", c.Args().First())
	}
	opts := trainer.GenerateOptions{
		Model: c.String("model"), N: c.Int("n"), Seed: c.Int64("seed"), Z: c.String("z"),
		Out: c.String("out"), Each: c.String("each"), NPY: c.String("npy"),
	}
	if opts.Z != "" && (c.IsSet("n") || c.IsSet("seed")) {
		return fmt.Errorf("--z gives the noise vectors, so --n and --seed have nothing to do; drop them")
	}
	if err := checkLibrary(); err != nil {
		return err
	}
	var err error
	if opts.Checkpoint, err = modelFromFlags(c); err != nil {
		return err
	}
	res, err := trainer.Generate(opts)
	if err != nil {
		return err
	}
	from := opts.Model
	if opts.Checkpoint != nil {
		from = opts.Checkpoint.Dir
	}
	fmt.Fprintf(c.App.Writer, "wrote %d digits from %s: %s\n", res.N, from, strings.Join(res.Files, ", "))
	return nil
}

// modelFromFlags checks that --model, --checkpoint and --run name exactly one
// model, and opens the checkpoint when it is not --model.
func modelFromFlags(c *cli.Context) (*trainer.Checkpoint, error) {
	if c.String("model") != "" {
		for _, other := range []string{"checkpoint", "run"} {
			if c.String(other) != "" {
				return nil, fmt.Errorf("--model and --%s both name a model; give one of them", other)
			}
		}
		return nil, nil
	}
	ckpt, err := checkpointFromFlags(c, " or --model DIR (a SavedModel from mnistgan export)")
	if err != nil {
		return nil, err
	}
	return &ckpt, nil
}
