package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/trainer"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a trained model as a TensorFlow SavedModel",
		Description: "Writes the generator and discriminator of a checkpoint, in inference mode, as a\n" +
			"TensorFlow SavedModel (tag serve) that tf.saved_model.load, saved_model_cli, TF Serving\n" +
			"and graft's LoadSavedModel load. Signatures: serving_default (z [N,100] -> images\n" +
			"[N,28,28,1]) and discriminate (images -> probability [N,1]).",
		OnUsageError: usageError,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "savedmodel", Usage: "the `DIR` to write the SavedModel to (must not exist, unless --force)"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing SavedModel at --savedmodel"},
		}, checkpointFlags()...),
		Action: export,
	}
}

func export(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see mnistgan export --help)", c.Args().First())
	}
	dir := c.String("savedmodel")
	if dir == "" {
		return fmt.Errorf("--savedmodel DIR is needed: the directory to write the model to")
	}
	if err := checkLibrary(); err != nil {
		return err
	}
	ckpt, err := checkpointFromFlags(c, "")
	if err != nil {
		return err
	}
	if err := trainer.Export(ckpt, dir, c.Bool("force")); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "exported %s (step %d) to %s: signatures %s (%s -> %s) and %s (%s -> %s)\n",
		ckpt.Dir, ckpt.State.Step, dir,
		graphs.GenerateSignature, graphs.NoiseKey, graphs.ImagesKey,
		graphs.DiscriminateSignature, graphs.ImagesKey, graphs.ProbabilityKey)
	return nil
}

// checkpointFlags are how export and generate name a training checkpoint.
func checkpointFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Usage: "a checkpoint `DIR`, e.g. runs/NAME/checkpoints/ckpt-00000500"},
		&cli.StringFlag{Name: "run", Usage: "a run `DIR`: use its latest checkpoint"},
	}
}

// checkpointFromFlags opens the checkpoint --checkpoint or --run names. alt
// names another way to give a model, for the message when none is given.
func checkpointFromFlags(c *cli.Context, alt string) (trainer.Checkpoint, error) {
	path, run := c.String("checkpoint"), c.String("run")
	switch {
	case path != "" && run != "":
		return trainer.Checkpoint{}, fmt.Errorf("--checkpoint and --run both name a model; give one of them")
	case path != "":
		return openCheckpointFlag(path)
	case run != "":
		if err := isDir("--run", run); err != nil {
			return trainer.Checkpoint{}, err
		}
		ckpt, err := trainer.LatestCheckpoint(run)
		if err != nil {
			return trainer.Checkpoint{}, fmt.Errorf("--run %s: %w; is it a run directory of mnistgan train?", run, err)
		}
		for _, why := range ckpt.PassedOver {
			fmt.Fprintf(c.App.Writer, "--run %s: passed over a newer checkpoint: %s\n", run, why)
		}
		return ckpt, nil
	}
	return trainer.Checkpoint{}, fmt.Errorf("which model? add --run runs/NAME (its latest checkpoint) or --checkpoint runs/NAME/checkpoints/ckpt-NNNNNNNN%s", alt)
}

// openCheckpointFlag opens --checkpoint PATH. Besides a checkpoint directory
// it takes the tensor-bundle prefix inside one (PATH/variables), the name
// tf.train.load_checkpoint is given.
func openCheckpointFlag(path string) (trainer.Checkpoint, error) {
	if filepath.Base(path) == "variables" {
		if _, err := os.Stat(path + ".index"); err == nil {
			path = filepath.Dir(path)
		}
	}
	if err := isDir("--checkpoint", path); err != nil {
		return trainer.Checkpoint{}, err
	}
	if _, err := os.Stat(filepath.Join(path, "checkpoints")); err == nil {
		return trainer.Checkpoint{}, fmt.Errorf("--checkpoint %s is a run directory; use --run %s for its latest checkpoint", path, path)
	}
	ckpt, err := trainer.OpenCheckpoint(path)
	if errors.Is(err, trainer.ErrDamaged) {
		return trainer.Checkpoint{}, fmt.Errorf("--checkpoint: %w; use another checkpoint of the run", err)
	}
	if err != nil {
		return trainer.Checkpoint{}, fmt.Errorf("--checkpoint: %w; give a checkpoint directory such as runs/NAME/checkpoints/ckpt-00000500", err)
	}
	return ckpt, nil
}

// isDir checks that the directory a flag names exists.
func isDir(flag, path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s does not exist", flag, path)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s %s is a file, not a directory", flag, path)
	}
	return nil
}
