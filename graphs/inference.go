package graphs

import (
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/mnistgan/mnistgan/tfops"
)

// The signatures of an exported model, and the keys of their tensors.
const (
	GenerateSignature     = "serving_default" // z -> images
	DiscriminateSignature = "discriminate"    // images -> probability

	NoiseKey       = "z"
	ImagesKey      = "images"
	ProbabilityKey = "probability"
)

// Inference is the graph a trained model is used and served from: the
// generator and the discriminator in inference mode (batch norm on its moving
// statistics, no dropout) over the model's variables alone, with a saver that
// restores them from a training checkpoint and writes a SavedModel's variables.
type Inference struct {
	Graph *tf.Graph

	Z           tf.Output // float32 [N, 100] placeholder "z", noise in [-1, 1]
	Generated   tf.Output // float32 [N, 28, 28, 1] "generate/images", in [0, 1]
	Images      tf.Output // float32 [N, 28, 28, 1] placeholder "images", in [0, 1]
	Probability tf.Output // float32 [N, 1] "discriminate/probability" that each image is real

	Vars  []*tfops.Variable // weights and batch-norm statistics, no optimizer state
	Saver *tfops.Saver
}

// NewInference builds the inference graph. Nothing in it is random, so the
// graph's own seed does not matter: every value comes from restored variables.
func NewInference() (*Inference, error) {
	root := op.NewScope()
	m := &Inference{}
	vars := tfops.NewVars(root, 0)
	// Inference passes draw nothing, so the step that keys random streams is moot.
	pass := tfops.NewPass("inference", vars, false, op.Const(root.SubScope("step"), int64(0)))

	// The inputs get plain names ("z:0", "images:0"): they are what people see in
	// saved_model_cli and feed by hand.
	m.Z = placeholder(root, NoiseKey, -1, NoiseDim)
	m.Images = placeholder(root, ImagesKey, -1, ImageSide, ImageSide, 1)
	gen := Generator(tfops.NewCtx(root.SubScope("generator"), pass, "generator"), m.Z)
	d := Discriminator(tfops.NewCtx(root.SubScope("discriminator"), pass, "discriminator"), m.Images)
	if err := tfops.Err(root); err != nil {
		return nil, fmt.Errorf("build inference graph: %w", err)
	}
	m.Generated = named(root.SubScope("generate"), ImagesKey, gen.Images)
	m.Probability = named(root.SubScope("discriminate"), ProbabilityKey, d.Probability)

	m.Vars = append(vars.Under("generator"), vars.Under("discriminator")...)
	if len(m.Vars) != len(vars.All()) {
		return nil, fmt.Errorf("build inference graph: %d variables outside the two networks", len(vars.All())-len(m.Vars))
	}
	var err error
	if m.Saver, err = tfops.NewSaver(root, m.Vars); err != nil {
		return nil, err
	}
	if m.Graph, err = root.Finalize(); err != nil {
		return nil, fmt.Errorf("build inference graph: %w", tfops.Err(root))
	}
	return m, nil
}

// Signatures are the entry points of the exported model.
func (m *Inference) Signatures() map[string]tfops.Signature {
	return map[string]tfops.Signature{
		GenerateSignature: {
			Inputs:  map[string]tf.Output{NoiseKey: m.Z},
			Outputs: map[string]tf.Output{ImagesKey: m.Generated},
		},
		DiscriminateSignature: {
			Inputs:  map[string]tf.Output{ImagesKey: m.Images},
			Outputs: map[string]tf.Output{ProbabilityKey: m.Probability},
		},
	}
}

// placeholder adds a float32 placeholder called exactly name.
func placeholder(s *op.Scope, name string, dims ...int64) tf.Output {
	return s.AddOperation(tf.OpSpec{
		Type:  "Placeholder",
		Name:  name,
		Attrs: map[string]interface{}{"dtype": tf.Float, "shape": tf.MakeShape(dims...)},
	}).Output(0)
}

// named gives x a stable, readable name (s's namespace + "/" + name) for
// signatures to point at.
func named(s *op.Scope, name string, x tf.Output) tf.Output {
	return s.AddOperation(tf.OpSpec{Type: "Identity", Name: name, Input: []tf.Input{x}}).Output(0)
}

// Noise builds a graph that draws n noise vectors [n, 100] uniform in [-1, 1),
// keyed on seed, with the training graph's noise kernel: the same seed gives the
// same vectors on every machine. It returns the graph and the vectors' tensor.
func Noise(n, seed int64) (*tf.Graph, tf.Output, error) {
	if n <= 0 {
		return nil, tf.Output{}, fmt.Errorf("noise: %d vectors", n)
	}
	root := op.NewScope()
	pass := tfops.NewPass("generate", tfops.NewVars(root, seed), false, op.Const(root.SubScope("step"), int64(0)))
	z := noise(root.SubScope("noise"), pass, n, "noise")
	g, err := root.Finalize()
	if err != nil {
		return nil, tf.Output{}, fmt.Errorf("build noise graph: %w", tfops.Err(root))
	}
	return g, z, nil
}
