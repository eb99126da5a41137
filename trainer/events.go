package trainer

import (
	"bytes"
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/quality"
	"github.com/mnistgan/mnistgan/tblog"
)

// The run's TensorBoard log. Each session of a run (the first, and each
// --resume) writes a new event file in EventsDir, starting with a SessionLog
// START at its first step so TensorBoard drops anything an earlier session
// logged from that step on (the steps a crashed run logged after its last
// checkpoint). The graph goes into the first file only.
const (
	logsDir = "logs" // in the run directory, without --logdir

	samplesTag = "samples" // the fixed-noise grid, every --sample-every
	realTag    = "real"    // the real-digit grid, at step 0
)

// eventLog writes the TensorBoard events of one session of a run.
type eventLog struct {
	dir string
	w   *tblog.Writer
}

// checkLogFree refuses to start a new run whose log directory already holds
// events (another run's, under the same --logdir and run name): mixed into
// one TensorBoard run, the two would overwrite each other's steps.
func checkLogFree(cfg Config) error {
	dir := cfg.EventsDir()
	files, err := tblog.Files(dir)
	if err != nil && cfg.LogDir != "" {
		return fmt.Errorf("--logdir %s: %w; give a directory for TensorBoard logs", cfg.LogDir, err)
	}
	if err != nil {
		return err
	}
	if len(files) > 0 {
		return fmt.Errorf("TensorBoard log %s already holds another run's events; choose another --logdir or --out", dir)
	}
	// Made now, before run.json marks the directory as holding a run: a log
	// directory that cannot be made must not leave a run that cannot be
	// resumed (it has no checkpoint) nor started again (it has run.json).
	if err := checkWritable(dir); err != nil {
		return fmt.Errorf("TensorBoard log: %w", err)
	}
	return nil
}

// openLog starts a new event file for a session that begins after step
// start, writing the graph if the directory has no events yet.
func openLog(cfg Config, graph *tf.Graph, start int) (*eventLog, error) {
	dir := cfg.EventsDir()
	earlier, err := tblog.Files(dir)
	if err != nil {
		return nil, err
	}
	w, err := tblog.Create(dir)
	if err != nil {
		return nil, err
	}
	l := &eventLog{dir: dir, w: w}
	if len(earlier) == 0 {
		var def bytes.Buffer
		if _, err := graph.WriteTo(&def); err != nil {
			w.Close()
			return nil, fmt.Errorf("serialize the graph for TensorBoard: %w", err)
		}
		if err := w.Graph(def.Bytes()); err != nil {
			w.Close()
			return nil, err
		}
	}
	if err := w.SessionStart(int64(start + 1)); err != nil {
		w.Close()
		return nil, err
	}
	return l, nil
}

// scalars logs a step's metrics, learning rates and speed.
func (l *eventLog) scalars(step int, m Metrics, stepsPerSec float64) error {
	return l.w.Scalars(int64(step),
		tblog.Scalar{Tag: "d_loss", Value: m.DLoss}, tblog.Scalar{Tag: "d_acc", Value: m.DAcc},
		tblog.Scalar{Tag: "g_loss", Value: m.GLoss}, tblog.Scalar{Tag: "g_acc", Value: m.GAcc},
		tblog.Scalar{Tag: "lr_d", Value: m.DLR}, tblog.Scalar{Tag: "lr_g", Value: m.GLR},
		tblog.Scalar{Tag: "steps_per_sec", Value: float32(stepsPerSec)})
}

// eval logs an evaluation's figures (see package quality).
func (l *eventLog) eval(step int, r quality.Report) error {
	return l.w.Scalars(int64(step),
		tblog.Scalar{Tag: "eval/inception_score", Value: float32(r.InceptionScore)},
		tblog.Scalar{Tag: "eval/frechet_distance", Value: float32(r.FrechetDistance)},
		tblog.Scalar{Tag: "eval/top_confidence", Value: float32(r.TopConfidence)})
}

// image logs an encoded grid.
func (l *eventLog) image(step int, tag string, png []byte) error {
	return l.w.Image(int64(step), tag, png)
}

// histograms logs the weights' histograms, computed by TensorFlow.
func (l *eventLog) histograms(step int, sess *tf.Session, gan *graphs.GAN) error {
	out, err := sess.Run(nil, []tf.Output{gan.Histograms}, nil)
	if err != nil {
		return fmt.Errorf("weight histograms at step %d: %w", step, err)
	}
	return l.w.Summary(int64(step), []byte(out[0].Value().(string)))
}

func (l *eventLog) flush() error { return l.w.Flush() }
func (l *eventLog) close() error { return l.w.Close() }
