// Package quality measures sets of digits with a classifier trained on MNIST
// (graphs.Classifier): the classifier Inception Score, the Frechet distance
// between the classifier's penultimate-layer features of the digits and of
// MNIST's test set, the share of each predicted class (mode coverage) and the
// mean top-class confidence. TensorFlow computes every figure (graphs.Scores);
// Go feeds the images and reports.
package quality

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/mnist"
	"github.com/mnistgan/mnistgan/tfops"
)

// InfoFile is the record of how a classifier was trained, in its directory
// beside the SavedModel's files.
const InfoFile = "classifier.json"

// HeldOut is how many images at the end of MNIST's training split the
// classifier is not trained on: real digits it has never seen, whose scores
// are the ceiling a generator is compared with.
const HeldOut = 10000

// chunk bounds the images one Session.Run classifies.
const chunk = 500

// ErrNoClassifier is returned when the classifier directory holds none.
var ErrNoClassifier = errors.New("no classifier")

// Info is what classifier.json records.
type Info struct {
	TestAccuracy float64           `json:"test_accuracy"` // on MNIST's 10,000 test images
	TestImages   int               `json:"test_images"`
	TrainImages  int               `json:"train_images"` // the first N of the training split
	Steps        int               `json:"steps"`
	Batch        int               `json:"batch"`
	Seed         int64             `json:"seed"`
	Seconds      float64           `json:"training_seconds"`
	Trained      string            `json:"trained"`
	Versions     map[string]string `json:"versions,omitempty"`
}

// Classifier is a trained classifier, loaded from its SavedModel by
// TensorFlow's loader.
type Classifier struct {
	Info                    Info
	Dir                     string
	sess                    *tf.Session
	images, probs, features tf.Output
}

// CheckClassifier reports ErrNoClassifier, with what to do, unless dir holds
// a classifier's record; it reads nothing else, so it is cheap.
func CheckClassifier(dir string) error {
	_, err := os.Stat(filepath.Join(dir, InfoFile))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w in %s; train it once with mnistgan eval --train-classifier (a few minutes), or point --classifier at one", ErrNoClassifier, dir)
	}
	if err != nil {
		return fmt.Errorf("classifier %s: %w", dir, err)
	}
	return nil
}

// LoadClassifier loads the classifier `mnistgan eval --train-classifier`
// wrote to dir.
func LoadClassifier(dir string) (*Classifier, error) {
	if err := CheckClassifier(dir); err != nil {
		return nil, err
	}
	var info Info
	data, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return nil, fmt.Errorf("classifier %s: %w", dir, err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("classifier %s: %s is not valid JSON (%v); train it again with mnistgan eval --train-classifier --force", dir, InfoFile, err)
	}
	// The held-out ceiling depends on these: the images the classifier
	// learnt from must be known, and its accuracy a real one.
	if !(info.TestAccuracy > 0 && info.TestAccuracy <= 1) || info.TrainImages < 1 || info.TestImages < 1 {
		return nil, fmt.Errorf("classifier %s: %s records test accuracy %g on %d test images after training on %d, which no trained classifier has; train it again with mnistgan eval --train-classifier --force",
			dir, InfoFile, info.TestAccuracy, info.TestImages, info.TrainImages)
	}
	sm, err := tfops.LoadSavedModel(dir, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return nil, fmt.Errorf("classifier %w; train it again with mnistgan eval --train-classifier --force", err)
	}
	c := &Classifier{Info: info, Dir: dir, sess: sm.Session}
	if c.images, c.probs, err = tfops.SignatureIO(sm, graphs.ClassifySignature, graphs.ImagesKey, graphs.ProbabilitiesKey); err == nil {
		_, c.features, err = tfops.SignatureIO(sm, graphs.ClassifySignature, graphs.ImagesKey, graphs.FeaturesKey)
	}
	if err == nil {
		err = checkTensors(c)
	}
	if err != nil {
		sm.Session.Close()
		return nil, fmt.Errorf("classifier %s is not one mnistgan eval --train-classifier wrote: %w", dir, err)
	}
	return c, nil
}

// checkTensors insists on the classifier's types and shapes, so a SavedModel
// with a look-alike signature is refused at load, not at its first run.
func checkTensors(c *Classifier) error {
	for _, want := range []struct {
		name string
		t    tf.Output
		dims []int64
	}{
		{graphs.ImagesKey, c.images, []int64{-1, mnist.Side, mnist.Side, 1}},
		{graphs.ProbabilitiesKey, c.probs, []int64{-1, graphs.Classes}},
		{graphs.FeaturesKey, c.features, []int64{-1, graphs.FeatureDim}},
	} {
		got := tfops.Shape(want.t)
		if want.t.DataType() != tf.Float || tfops.FormatShape(got) != tfops.FormatShape(want.dims) {
			return fmt.Errorf("its %s tensor is %s %s, want float %s", want.name, tfops.DTypeName(want.t.DataType()), tfops.FormatShape(got), tfops.FormatShape(want.dims))
		}
	}
	return nil
}

// CheckHeldOut fails unless train's last HeldOut images are digits c never
// saw: those after the ones it learnt from. With another --data they could
// be digits it has seen, or too few.
func (c *Classifier) CheckHeldOut(train *mnist.Set) error {
	if train.Count < HeldOut {
		return fmt.Errorf("the training split has %d images; the held-out ceiling needs its last %d", train.Count, HeldOut)
	}
	if learnt := c.Info.TrainImages; learnt != train.Count-HeldOut {
		return fmt.Errorf("the classifier in %s learnt from the first %d training images, so the held-out ceiling needs %d in the training split, not %d; use the --data it was trained on, or train it again", c.Dir, learnt, learnt+HeldOut, train.Count)
	}
	return nil
}

// Close releases the classifier's session.
func (c *Classifier) Close() error { return c.sess.Close() }

// Classify runs the classifier on n images (28 x 28 pixels in [0, 1],
// row-major, one after another) and returns their class probabilities
// (n x 10) and features (n x 128), row-major.
func (c *Classifier) Classify(pixels []float32, n int) (probs, features []float32, err error) {
	size := mnist.Side * mnist.Side
	if n <= 0 || len(pixels) != n*size {
		return nil, nil, fmt.Errorf("classify: %d values are not %d images of 28 x 28", len(pixels), n)
	}
	probs = make([]float32, 0, n*graphs.Classes)
	features = make([]float32, 0, n*graphs.FeatureDim)
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		t, err := tf.NewTensor(pixels[start*size : end*size])
		if err != nil {
			return nil, nil, err
		}
		if err := t.Reshape([]int64{int64(end - start), mnist.Side, mnist.Side, 1}); err != nil {
			return nil, nil, err
		}
		out, err := c.sess.Run(map[tf.Output]*tf.Tensor{c.images: t}, []tf.Output{c.probs, c.features}, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("classify with %s: %w", c.Dir, err)
		}
		p, okP := out[0].Value().([][]float32)
		f, okF := out[1].Value().([][]float32)
		if !okP || !okF || len(p) != end-start || len(f) != end-start {
			return nil, nil, fmt.Errorf("classify with %s: got %v and %v, want %d rows of probabilities and features", c.Dir, out[0].Shape(), out[1].Shape(), end-start)
		}
		for i := range p {
			probs = append(probs, p[i]...)
			features = append(features, f[i]...)
		}
	}
	return probs, features, nil
}

// Report holds the figures of one set of digits.
type Report struct {
	Images          int       `json:"images"`
	InceptionScore  float64   `json:"inception_score"`     // 1 to 10
	FrechetDistance float64   `json:"frechet_distance"`    // to the test set's features; 0 is identical statistics
	ClassShares     []float64 `json:"class_shares"`        // share classified as 0, 1, ..., 9
	TopConfidence   float64   `json:"mean_top_confidence"` // mean of the largest class probability
}

// Evaluator scores sets of digits against MNIST's test set.
type Evaluator struct {
	clf       *Classifier
	scores    *graphs.Scores
	sess      *tf.Session
	reference *tf.Tensor // the test set's features [M, 128]
}

// NewEvaluator classifies the reference digits (MNIST's test set) once, so
// each Score only classifies the digits it scores.
func NewEvaluator(clf *Classifier, reference *mnist.Set) (*Evaluator, error) {
	if reference.Count < 2 {
		return nil, fmt.Errorf("the MNIST test split has %d image(s); the Frechet distance needs a covariance, so at least 2 (MNIST's t10k files hold 10,000)", reference.Count)
	}
	_, feats, err := clf.Classify(UnitPixels(reference.Pixels), reference.Count)
	if err != nil {
		return nil, err
	}
	ref, err := matrix(feats, reference.Count, graphs.FeatureDim)
	if err != nil {
		return nil, err
	}
	scores, err := graphs.NewScores()
	if err != nil {
		return nil, err
	}
	sess, err := tfops.NewSession(scores.Graph, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return nil, err
	}
	return &Evaluator{clf: clf, scores: scores, sess: sess, reference: ref}, nil
}

// Close releases the evaluator's session (not the classifier's).
func (e *Evaluator) Close() error { return e.sess.Close() }

// Score measures n digits (28 x 28 pixels in [0, 1], row-major, one after
// another). The Frechet distance needs at least two digits.
func (e *Evaluator) Score(pixels []float32, n int) (Report, error) {
	if n < 2 {
		return Report{}, fmt.Errorf("score: %d digits; the Frechet distance needs at least 2", n)
	}
	probs, feats, err := e.clf.Classify(pixels, n)
	if err != nil {
		return Report{}, err
	}
	p, err := matrix(probs, n, graphs.Classes)
	if err != nil {
		return Report{}, err
	}
	f, err := matrix(feats, n, graphs.FeatureDim)
	if err != nil {
		return Report{}, err
	}
	s := e.scores
	out, err := e.sess.Run(map[tf.Output]*tf.Tensor{s.Probabilities: p, s.Features: f, s.Reference: e.reference},
		[]tf.Output{s.InceptionScore, s.FrechetDistance, s.ClassShares, s.TopConfidence}, nil)
	if err != nil {
		return Report{}, fmt.Errorf("score %d digits: %w", n, err)
	}
	// The scoring graph is built here, so its outputs' types are known.
	r := Report{
		Images:          n,
		InceptionScore:  out[0].Value().(float64),
		FrechetDistance: out[1].Value().(float64),
		TopConfidence:   float64(out[3].Value().(float32)),
	}
	for _, share := range out[2].Value().([]float32) {
		r.ClassShares = append(r.ClassShares, float64(share))
	}
	return r, nil
}

// Ceiling scores the held-out real digits: the last HeldOut images of the
// training split, which the classifier was not trained on.
func (e *Evaluator) Ceiling(train *mnist.Set) (Report, error) {
	if err := e.clf.CheckHeldOut(train); err != nil {
		return Report{}, err
	}
	size := train.Rows * train.Cols
	return e.Score(UnitPixels(train.Pixels[(train.Count-HeldOut)*size:]), HeldOut)
}

// UnitPixels scales MNIST's bytes to [0, 1], as the networks read pixels.
func UnitPixels(b []byte) []float32 {
	out := make([]float32, len(b))
	for i, v := range b {
		out[i] = float32(v) / 255
	}
	return out
}

// matrix makes a [rows, cols] tensor of row-major values.
func matrix(values []float32, rows, cols int) (*tf.Tensor, error) {
	t, err := tf.NewTensor(values)
	if err != nil {
		return nil, err
	}
	if err := t.Reshape([]int64{int64(rows), int64(cols)}); err != nil {
		return nil, fmt.Errorf("shape %d values as %d x %d: %w", len(values), rows, cols, err)
	}
	return t, nil
}
