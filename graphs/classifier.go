package graphs

import (
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/mnistgan/mnistgan/tfops"
)

// The evaluation classifier: a small CNN trained on MNIST whose class
// probabilities give the Inception Score and whose penultimate layer is the
// feature space of the Frechet distance (`mnistgan eval`).
const (
	Classes    = 10  // digits 0 to 9
	FeatureDim = 128 // width of the penultimate layer

	classifierDropout = 0.5
	classifierKernel  = 5
)

// Names of the classifier's exported signature and its tensors.
const (
	ClassifySignature = "classify" // images -> probabilities, features
	ProbabilitiesKey  = "probabilities"
	FeaturesKey       = "features"
)

// Classified is a built classifier.
type Classified struct {
	Logits        tf.Output // N x 10
	Probabilities tf.Output // N x 10, softmax of the logits
	Features      tf.Output // N x 128, the penultimate layer (after its ReLU)
	Layers        []Layer
}

// Classifier maps images N x 28 x 28 x 1 (pixels in [0, 1]) to digit classes.
// Variables live under c.Path.
func Classifier(c tfops.Ctx, images tf.Output) *Classified {
	var t trace
	x := t.add("conv1", convReLU(c.In("conv1"), images, 32))                          // N x 28 x 28 x 32
	x = t.add("pool1", tfops.MaxPool2D(c.In("pool1"), x, 2))                          // N x 14 x 14 x 32
	x = t.add("conv2", convReLU(c.In("conv2"), x, 64))                                // N x 14 x 14 x 64
	x = t.add("pool2", tfops.MaxPool2D(c.In("pool2"), x, 2))                          // N x 7 x 7 x 64
	x = t.add("flatten", tfops.Reshape(c.In("flatten"), x, 7*7*64))                   // N x 3136
	features := t.add("features", denseReLU(c.In("features"), x, FeatureDim))         // N x 128
	x = t.add("dropout", tfops.Dropout(c.In("dropout"), features, classifierDropout)) // N x 128
	logits := t.add("logits", tfops.Dense(c.In("logits"), x, Classes))                // N x 10
	p := t.add("softmax", tfops.Softmax(c.In("softmax"), logits))                     // N x 10
	return &Classified{Logits: logits, Probabilities: p, Features: features, Layers: t}
}

// convReLU is Conv 5x5 (stride 1, SAME, bias), ReLU.
func convReLU(c tfops.Ctx, x tf.Output, filters int64) tf.Output {
	return tfops.ReLU(c, tfops.Conv2D(c, x, filters, classifierKernel, 1))
}

// denseReLU is Dense (bias), ReLU.
func denseReLU(c tfops.Ctx, x tf.Output, units int64) tf.Output {
	return tfops.ReLU(c, tfops.Dense(c, x, units))
}

// ClassifierConfig sizes the classifier's training graph.
type ClassifierConfig struct {
	Batch     int64 // images per step
	Examples  int64 // training images held in the graph
	Seed      int64
	Optimizer tfops.Optimizer
}

// ClassifierTraining trains the classifier on images held in the graph, as
// the GAN's graph does: a step gathers a random batch by index, so it feeds
// only its step number.
type ClassifierTraining struct {
	Graph *tf.Graph
	Step  tf.Output // int64 scalar fed to every run: keys the batch and dropout

	Images, Labels tf.Output     // uint8 [Examples, 28, 28, 1] and [Examples], fed once to LoadData
	LoadData       *tf.Operation // copies them into the graph's data variables
	Init           []*tf.Operation

	Train          *tf.Operation // one optimizer update on a batch
	Loss, Accuracy tf.Output     // of that batch

	// TestImages (uint8 [N, 28, 28, 1]) and TestLabels (uint8 [N]) feed an
	// inference pass (no dropout); TestCorrect counts the images it labels
	// right, a float32 scalar.
	TestImages, TestLabels, TestCorrect tf.Output

	// Saver holds the network's variables only, under the names the
	// inference graph restores.
	Saver *tfops.Saver
}

// NewClassifierTraining builds the classifier's training graph.
func NewClassifierTraining(cfg ClassifierConfig) (*ClassifierTraining, error) {
	if cfg.Batch <= 0 || cfg.Examples <= 0 {
		return nil, fmt.Errorf("classifier graph: batch %d and examples %d must be positive", cfg.Batch, cfg.Examples)
	}
	root := op.NewScope()
	vars := tfops.NewVars(root, cfg.Seed)
	m := &ClassifierTraining{}
	m.Step = op.Placeholder(root.SubScope("step"), tf.Int64, op.PlaceholderShape(tf.ScalarShape()))

	ds := root.SubScope("data")
	shape := tf.MakeShape(cfg.Examples, ImageSide, ImageSide, 1)
	m.Images = op.Placeholder(ds.SubScope("upload_images"), tf.Uint8, op.PlaceholderShape(shape))
	m.Labels = op.Placeholder(ds.SubScope("upload_labels"), tf.Uint8, op.PlaceholderShape(tf.MakeShape(cfg.Examples)))
	images := op.VarHandleOp(ds.SubScope("images"), tf.Uint8, shape, op.VarHandleOpSharedName("data/classifier_images"))
	labels := op.VarHandleOp(ds.SubScope("labels"), tf.Uint8, tf.MakeShape(cfg.Examples), op.VarHandleOpSharedName("data/classifier_labels"))
	m.LoadData = op.NoOp(ds.SubScope("load").WithControlDependencies(
		op.AssignVariableOp(ds.SubScope("load_images"), images, m.Images),
		op.AssignVariableOp(ds.SubScope("load_labels"), labels, m.Labels)))

	pass := tfops.NewPass("classifier", vars, true, m.Step)
	bs := root.SubScope("batch")
	idx := op.StatelessRandomUniformInt(bs, op.Const(bs.SubScope("shape"), []int64{cfg.Batch}), pass.StepSeed(bs, "batch"),
		op.Const(bs.SubScope("min"), int64(0)), op.Const(bs.SubScope("max"), cfg.Examples))
	batchImages := toUnit(bs.SubScope("images"), op.ResourceGather(bs.SubScope("images"), images, idx, tf.Uint8))
	batchLabels := op.Cast(bs.SubScope("labels"), op.ResourceGather(bs.SubScope("labels"), labels, idx, tf.Uint8), tf.Int32)
	net := Classifier(tfops.NewCtx(root.SubScope("classifier"), pass, "classifier"), batchImages)
	ls := root.SubScope("loss")
	m.Loss = tfops.SoftmaxCrossEntropy(ls.SubScope("cross_entropy"), net.Logits, batchLabels)
	m.Accuracy = tfops.CategoricalAccuracy(ls.SubScope("accuracy"), net.Logits, batchLabels)
	if err := tfops.Err(root); err != nil {
		return nil, fmt.Errorf("build classifier: %w", err)
	}
	netVars := vars.Under("classifier")
	step, err := cfg.Optimizer.Minimize(root.SubScope("optimizer"), vars, "classifier", m.Loss, pass, tfops.Trainable(netVars))
	if err != nil {
		return nil, err
	}
	m.Train = step.Op

	ts := root.SubScope("test")
	m.TestImages = op.Placeholder(ts.SubScope("images"), tf.Uint8, op.PlaceholderShape(tf.MakeShape(-1, ImageSide, ImageSide, 1)))
	m.TestLabels = op.Placeholder(ts.SubScope("labels"), tf.Uint8, op.PlaceholderShape(tf.MakeShape(-1)))
	testPass := tfops.NewPass("classifier_test", vars, false, m.Step)
	test := Classifier(tfops.NewCtx(root.SubScope("classifier_test"), testPass, "classifier"), toUnit(ts, m.TestImages))
	testAcc := tfops.CategoricalAccuracy(ts.SubScope("accuracy"), test.Logits, op.Cast(ts.SubScope("labels_int"), m.TestLabels, tf.Int32))
	n := op.Cast(ts.SubScope("count"), op.Size(ts.SubScope("count"), m.TestLabels), tf.Float)
	m.TestCorrect = op.Mul(ts.SubScope("correct"), testAcc, n)

	m.Init = tfops.InitOps(vars.All())
	if m.Saver, err = tfops.NewSaver(root, netVars); err != nil {
		return nil, err
	}
	if m.Graph, err = root.Finalize(); err != nil {
		return nil, fmt.Errorf("build classifier training graph: %w", tfops.Err(root))
	}
	return m, nil
}

// toUnit scales uint8 pixels to float32 in [0, 1].
func toUnit(s *op.Scope, pixels tf.Output) tf.Output {
	return op.Mul(s, op.Cast(s, pixels, tf.Float), op.Const(s.SubScope("scale"), float32(1.0/255)))
}

// ClassifierInference is the classifier as it is saved and used: inference
// mode over its variables alone, with a saver to restore them.
type ClassifierInference struct {
	Graph *tf.Graph

	Images        tf.Output // float32 [N, 28, 28, 1] placeholder "images", in [0, 1]
	Probabilities tf.Output // float32 [N, 10] "classify/probabilities"
	Features      tf.Output // float32 [N, 128] "classify/features"

	Vars  []*tfops.Variable
	Saver *tfops.Saver
}

// NewClassifierInference builds the classifier's inference graph.
func NewClassifierInference() (*ClassifierInference, error) {
	root := op.NewScope()
	vars := tfops.NewVars(root, 0)
	pass := tfops.NewPass("inference", vars, false, op.Const(root.SubScope("step"), int64(0)))
	m := &ClassifierInference{Images: placeholder(root, ImagesKey, -1, ImageSide, ImageSide, 1)}
	net := Classifier(tfops.NewCtx(root.SubScope("classifier"), pass, "classifier"), m.Images)
	if err := tfops.Err(root); err != nil {
		return nil, fmt.Errorf("build classifier inference graph: %w", err)
	}
	out := root.SubScope("classify")
	m.Probabilities = named(out, ProbabilitiesKey, net.Probabilities)
	m.Features = named(out, FeaturesKey, net.Features)
	m.Vars = vars.All()
	var err error
	if m.Saver, err = tfops.NewSaver(root, m.Vars); err != nil {
		return nil, err
	}
	if m.Graph, err = root.Finalize(); err != nil {
		return nil, fmt.Errorf("build classifier inference graph: %w", tfops.Err(root))
	}
	return m, nil
}

// Signatures is the classifier's one entry point, for its SavedModel.
func (m *ClassifierInference) Signatures() map[string]tfops.Signature {
	return map[string]tfops.Signature{ClassifySignature: {
		Inputs:  map[string]tf.Output{ImagesKey: m.Images},
		Outputs: map[string]tf.Output{ProbabilitiesKey: m.Probabilities, FeaturesKey: m.Features},
	}}
}

// Scores computes the sample-quality figures of one set of digits from the
// classifier's outputs on them, against reference features (MNIST's test set).
type Scores struct {
	Graph *tf.Graph

	Probabilities tf.Output // float32 [N, 10] placeholder: the classifier on the digits
	Features      tf.Output // float32 [N, 128] placeholder: their features
	Reference     tf.Output // float32 [M, 128] placeholder: the reference set's features

	InceptionScore  tf.Output // float64 scalar, 1 to 10
	FrechetDistance tf.Output // float64 scalar, 0 for identical feature statistics
	ClassShares     tf.Output // float32 [10], share of the digits classified as each class
	TopConfidence   tf.Output // float32 scalar, mean top-class probability
}

// NewScores builds the scoring graph.
func NewScores() (*Scores, error) {
	root := op.NewScope()
	m := &Scores{
		Probabilities: op.Placeholder(root.SubScope("probabilities"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, Classes))),
		Features:      op.Placeholder(root.SubScope("features"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, FeatureDim))),
		Reference:     op.Placeholder(root.SubScope("reference"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, FeatureDim))),
	}
	m.InceptionScore = tfops.InceptionScore(root, m.Probabilities)
	mu1, cov1 := tfops.Moments(root.SubScope("digits"), m.Features)
	mu2, cov2 := tfops.Moments(root.SubScope("reference"), m.Reference)
	m.FrechetDistance = tfops.FrechetDistance(root, mu1, cov1, mu2, cov2)
	m.ClassShares = tfops.ClassShares(root, m.Probabilities, Classes)
	m.TopConfidence = tfops.TopConfidence(root, m.Probabilities)
	var err error
	if m.Graph, err = root.Finalize(); err != nil {
		return nil, fmt.Errorf("build scoring graph: %w", tfops.Err(root))
	}
	return m, nil
}
