package graphs

import (
	"fmt"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/mnistgan/mnistgan/tfops"
)

// GANConfig sizes the training graph.
type GANConfig struct {
	Batch      int64           // B: real images per discriminator step, noise vectors per step
	Examples   int64           // training images held in the graph
	Seed       int64           // every random stream derives from it
	D, G       tfops.Optimizer // the discriminator's and the adversarial network's optimizers
	Device     string          // TensorFlow device for the networks, e.g. "/device:CPU:0"
	SampleSize int64           // images in the fixed-noise sample batch (16 for a 4x4 grid)
}

// GAN is the whole training graph: data held in a variable, a training step (one
// discriminator update, then one adversarial (generator) update, in one
// Session.Run), a fixed-noise sampler and a saver.
// Everything random (batches, noise, dropout, initial weights) is drawn by
// TensorFlow's stateless RNG from (seed, step), so a step is reproducible from
// its number alone and a resumed run continues exactly.
type GAN struct {
	Graph *tf.Graph
	Vars  *tfops.Vars

	Step tf.Output // int64 scalar fed to every run: the step number

	Data     tf.Output     // uint8 [Examples, 28, 28, 1] fed once, to LoadData
	LoadData *tf.Operation // copies Data into the graph's data variable
	Init     []*tf.Operation

	// Train is one whole step: the discriminator update on B real and B
	// generated images, then the generator update through the frozen, just
	// updated discriminator (its reads wait for DTrain). DTrain alone is the
	// first half. Fetch the metrics below in the same run as Train.
	Train, DTrain *tf.Operation
	DLoss, DAcc, GLoss, GAcc,
	DLearningRate, GLearningRate tf.Output

	Samples tf.Output // generator (inference mode) on the fixed noise: [SampleSize, 28, 28, 1]

	// EvalImages is the generator in inference mode on EvalNoise (float32
	// [N, 100], fed): digits to score during training.
	EvalNoise, EvalImages tf.Output

	// Histograms is a string scalar: one serialized Summary proto holding a
	// histogram of each trainable variable of both networks, tagged with its
	// name ("generator/deconv1/kernel"), for TensorBoard. Fetch it on its own:
	// it reads the variables and changes nothing.
	Histograms tf.Output

	Saver *tfops.Saver // every variable: weights, batch-norm statistics, optimizer slots and counts

	DVars, GVars []*tfops.Variable // each network's variables (trainable and not)
}

// NewGAN builds the training graph.
func NewGAN(cfg GANConfig) (*GAN, error) {
	if cfg.Batch <= 0 || cfg.Examples <= 0 || cfg.SampleSize <= 0 {
		return nil, fmt.Errorf("gan graph: batch %d, examples %d and sample size %d must all be positive", cfg.Batch, cfg.Examples, cfg.SampleSize)
	}
	root := op.NewScope().WithDevice(cfg.Device)
	g := &GAN{Vars: tfops.NewVars(root, cfg.Seed)}
	g.Step = op.Placeholder(root.SubScope("step"), tf.Int64, op.PlaceholderShape(tf.ScalarShape()))

	// The training set lives in a variable, uploaded once, so a step feeds no
	// pixels: batches are gathered by index inside the graph.
	ds := root.SubScope("data")
	g.Data = op.Placeholder(ds.SubScope("upload"), tf.Uint8, op.PlaceholderShape(tf.MakeShape(cfg.Examples, ImageSide, ImageSide, 1)))
	data := op.VarHandleOp(ds, tf.Uint8, tf.MakeShape(cfg.Examples, ImageSide, ImageSide, 1), op.VarHandleOpSharedName("data/mnist_train"))
	g.LoadData = op.AssignVariableOp(ds, data, g.Data)

	// Discriminator step: B real images labelled 1 and B generated ones labelled 0.
	// The fakes come from the generator in training mode (batch statistics,
	// dropout), the same function the adversarial step trains; its batch-norm
	// updates are not run here, so the moving statistics move once per step.
	// (The seed's Keras code drew fakes with generator.predict, in inference mode;
	// with moving statistics lagging behind, the discriminator then judged other
	// images than the ones the generator learned to improve, and both networks
	// reached 100% accuracy within 30 steps. See README.)
	dPass := tfops.NewPass("d_step", g.Vars, true, g.Step)
	fakePass := tfops.NewPass("d_step_fakes", g.Vars, true, g.Step)
	real := realBatch(root.SubScope("real_batch"), dPass, data, cfg.Batch, cfg.Examples)
	fakes := Generator(tfops.NewCtx(root.SubScope("generator"), fakePass, "generator"), noise(root.SubScope("noise"), dPass, cfg.Batch, "noise"))
	ls := root.SubScope("discriminator_batch")
	both := op.ConcatV2(ls, []tf.Output{real, op.StopGradient(ls, fakes.Images)}, op.Const(ls.SubScope("axis"), int32(0)))
	dLabels := op.Const(ls.SubScope("labels"), halfOnes(cfg.Batch))
	d := Discriminator(tfops.NewCtx(root.SubScope("discriminator"), dPass, "discriminator"), both)
	lossScope := root.SubScope("loss")
	g.DLoss = tfops.BinaryCrossEntropy(lossScope.SubScope("d_loss"), d.Logits, dLabels)
	g.DAcc = tfops.BinaryAccuracy(lossScope.SubScope("d_acc"), d.Logits, dLabels)

	if err := tfops.Err(root); err != nil {
		return nil, fmt.Errorf("build networks: %w", err)
	}
	g.DVars = g.Vars.Under("discriminator")
	g.GVars = g.Vars.Under("generator")
	opt := root.SubScope("optimizer")
	dStep, err := cfg.D.Minimize(opt, g.Vars, "discriminator", g.DLoss, dPass, tfops.Trainable(g.DVars))
	if err != nil {
		return nil, err
	}

	// Adversarial step: fresh noise labelled 1 through generator and discriminator;
	// only the generator's trainable variables are updated. Its reads of the
	// discriminator wait for the discriminator update, so one run does the whole
	// step in the seed's order; its reads of the generator need not (the
	// discriminator step writes none of its variables), so TensorFlow runs the
	// adversarial generator's forward pass while the discriminator's backward
	// pass and update still run.
	aPass := tfops.NewPass("adversarial", g.Vars, true, g.Step, dStep.Op).
		OnlyWaitFor(func(v *tfops.Variable) bool { return strings.HasPrefix(v.Name, "discriminator/") })
	z := noise(root.SubScope("adversarial_noise"), aPass, cfg.Batch, "noise")
	_, ad := Adversarial(tfops.NewCtx(root.SubScope("adversarial"), aPass, ""), z)
	aLabels := op.Const(lossScope.SubScope("ones"), ones(cfg.Batch))
	g.GLoss = tfops.BinaryCrossEntropy(lossScope.SubScope("g_loss"), ad.Logits, aLabels)
	g.GAcc = tfops.BinaryAccuracy(lossScope.SubScope("g_acc"), ad.Logits, aLabels)
	gStep, err := cfg.G.Minimize(opt, g.Vars, "adversarial", g.GLoss, aPass, tfops.Trainable(g.GVars))
	if err != nil {
		return nil, err
	}
	g.DTrain, g.Train = dStep.Op, gStep.Op
	g.DLearningRate, g.GLearningRate = dStep.LR, gStep.LR

	// Fixed-noise samples: the same noise at every step (stream "fixed", step 0),
	// so grids compare across a run and across resumes.
	samplePass := tfops.NewPass("sample", g.Vars, false, g.Step)
	fixedPass := tfops.NewPass("fixed", g.Vars, false, op.Const(root.SubScope("step_zero"), int64(0)))
	g.Samples = Generator(tfops.NewCtx(root.SubScope("sample"), samplePass, "generator"), noise(root.SubScope("fixed_noise"), fixedPass, cfg.SampleSize, "noise")).Images
	// Digits for --eval-every: the generator in inference mode on noise fed in
	// chunks, the same noise at every evaluation.
	es := root.SubScope("eval")
	g.EvalNoise = op.Placeholder(es.SubScope("noise"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, NoiseDim)))
	evalPass := tfops.NewPass("eval", g.Vars, false, g.Step)
	g.EvalImages = Generator(tfops.NewCtx(es.SubScope("generator"), evalPass, "generator"), g.EvalNoise).Images
	g.Histograms = histograms(root.SubScope("summaries"), tfops.Trainable(append(append([]*tfops.Variable(nil), g.DVars...), g.GVars...)))

	g.Init = tfops.InitOps(g.Vars.All())
	if g.Saver, err = tfops.NewSaver(root, g.Vars.All()); err != nil {
		return nil, err
	}
	if err := tfops.Err(root); err != nil {
		return nil, fmt.Errorf("build training graph: %w", err)
	}
	g.Graph, err = root.Finalize()
	if err != nil {
		return nil, fmt.Errorf("build training graph: %w", tfops.Err(root))
	}
	return g, nil
}

// histograms merges a HistogramSummary of each of vars into one serialized
// Summary; TensorFlow buckets the values, Go only passes the bytes on.
func histograms(s *op.Scope, vars []*tfops.Variable) tf.Output {
	parts := make([]tf.Output, len(vars))
	for i, v := range vars {
		vs := s.SubScope(v.Name)
		parts[i] = op.HistogramSummary(vs, op.Const(vs.SubScope("tag"), v.Name), op.ReadVariableOp(vs, v.Handle, v.DType))
	}
	return op.MergeSummary(s, parts)
}

// realBatch draws n training images uniformly at random (with replacement, as
// the seed's np.random.randint does) and scales them to [0, 1].
func realBatch(s *op.Scope, pass *tfops.Pass, data tf.Output, n, examples int64) tf.Output {
	shape := op.Const(s.SubScope("shape"), []int64{n})
	idx := op.StatelessRandomUniformInt(s, shape, pass.StepSeed(s, "real_batch"),
		op.Const(s.SubScope("min"), int64(0)), op.Const(s.SubScope("max"), examples))
	pixels := op.ResourceGather(s, data, idx, tf.Uint8)
	return toUnit(s, pixels)
}

// noise draws n vectors uniform in [-1, 1) from the pass's stream.
func noise(s *op.Scope, pass *tfops.Pass, n int64, stream string) tf.Output {
	u := op.StatelessRandomUniform(s, op.Const(s.SubScope("shape"), []int64{n, NoiseDim}), pass.StepSeed(s, stream))
	return op.Sub(s, op.Mul(s, u, op.Const(s.SubScope("two"), float32(2))), op.Const(s.SubScope("one"), float32(1)))
}

func ones(n int64) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = []float32{1}
	}
	return out
}

// halfOnes is 2n labels: n ones (real) then n zeros (generated).
func halfOnes(n int64) [][]float32 {
	out := make([][]float32, 2*n)
	for i := range out {
		out[i] = []float32{0}
		if int64(i) < n {
			out[i][0] = 1
		}
	}
	return out
}
