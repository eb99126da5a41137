package trainer

import (
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/mnist"
	"github.com/mnistgan/mnistgan/tfops"
)

// chunk bounds how many images one session run makes: the generator's widest
// layer holds 28 x 28 x 128 floats an image, so memory stays flat for any --n.
const chunk = 64

// Model is a trained generator and discriminator, ready to run in inference
// mode: either a training checkpoint restored into graphs.Inference, or a
// SavedModel loaded by TensorFlow's own loader and run through its signatures.
type Model struct {
	sess        *tf.Session
	z, images   tf.Output // the generator's input and output
	in, prob    tf.Output // the discriminator's input and output
	description string    // where the model came from, for messages
}

// LoadCheckpoint builds the inference graph and restores the networks' weights
// and batch-norm statistics from ckpt (its optimizer state is not read).
func LoadCheckpoint(ckpt Checkpoint) (*Model, error) {
	inf, err := graphs.NewInference()
	if err != nil {
		return nil, err
	}
	sess, err := tfops.NewSession(inf.Graph, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return nil, err
	}
	if err := inf.Saver.Restore(sess, ckpt.VariablesPrefix()); err != nil {
		sess.Close()
		return nil, fmt.Errorf("checkpoint %s: %w; is it a complete checkpoint of mnistgan train?", ckpt.Dir, err)
	}
	return &Model{sess: sess, z: inf.Z, images: inf.Generated, in: inf.Images, prob: inf.Probability, description: ckpt.Dir}, nil
}

// LoadSavedModel loads the SavedModel in dir with TensorFlow's loader (the one
// TF_LoadSessionFromSavedModel and TF Serving use) and finds its signatures.
func LoadSavedModel(dir string) (*Model, error) {
	sm, err := tfops.LoadSavedModel(dir, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return nil, fmt.Errorf("%w; export a model with mnistgan export --savedmodel DIR", err)
	}
	m := &Model{sess: sm.Session, description: dir}
	if m.z, m.images, err = tfops.SignatureIO(sm, graphs.GenerateSignature, graphs.NoiseKey, graphs.ImagesKey); err == nil {
		m.in, m.prob, err = tfops.SignatureIO(sm, graphs.DiscriminateSignature, graphs.ImagesKey, graphs.ProbabilityKey)
	}
	if err != nil {
		sm.Session.Close()
		return nil, fmt.Errorf("%s is not a model exported by mnistgan export: %w", dir, err)
	}
	return m, nil
}

// Close releases the model's session.
func (m *Model) Close() error { return m.sess.Close() }

// Generate runs the generator on the noise vectors z (each of graphs.NoiseDim
// values) and returns len(z) images of 28 x 28 pixels in [0, 1], one after
// another, row-major.
func (m *Model) Generate(z [][]float32) ([]float32, error) {
	var out []float32
	for start := 0; start < len(z); start += chunk {
		batch := z[start:min(start+chunk, len(z))]
		for i, v := range batch {
			if len(v) != graphs.NoiseDim {
				return nil, fmt.Errorf("noise vector %d has %d values, the generator takes %d", start+i, len(v), graphs.NoiseDim)
			}
		}
		t, err := tf.NewTensor(batch)
		if err != nil {
			return nil, err
		}
		res, err := m.sess.Run(map[tf.Output]*tf.Tensor{m.z: t}, []tf.Output{m.images}, nil)
		if err != nil {
			return nil, fmt.Errorf("generate with %s: %w", m.description, err)
		}
		images, ok := res[0].Value().([][][][]float32)
		if shape := res[0].Shape(); !ok || len(shape) != 4 || shape[0] != int64(len(batch)) ||
			shape[1] != mnist.Side || shape[2] != mnist.Side || shape[3] != 1 {
			return nil, fmt.Errorf("generate with %s: got %v, want %d images of 28 x 28 x 1", m.description, res[0].Shape(), len(batch))
		}
		out = append(out, flatten4(images)...)
	}
	return out, nil
}

// Discriminate runs the discriminator on n images (28 x 28 pixels in [0, 1],
// row-major, one after another) and returns the probability that each is real.
func (m *Model) Discriminate(images []float32, n int) ([]float32, error) {
	size := mnist.Side * mnist.Side
	if n <= 0 || len(images) != n*size {
		return nil, fmt.Errorf("discriminate: %d values are not %d images of 28 x 28", len(images), n)
	}
	var out []float32
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		t, err := tf.NewTensor(images[start*size : end*size])
		if err != nil {
			return nil, err
		}
		if err := t.Reshape([]int64{int64(end - start), mnist.Side, mnist.Side, 1}); err != nil {
			return nil, err
		}
		res, err := m.sess.Run(map[tf.Output]*tf.Tensor{m.in: t}, []tf.Output{m.prob}, nil)
		if err != nil {
			return nil, fmt.Errorf("discriminate with %s: %w", m.description, err)
		}
		p, ok := res[0].Value().([][]float32)
		if !ok || len(p) != end-start {
			return nil, fmt.Errorf("discriminate with %s: got %v, want %d probabilities", m.description, res[0].Shape(), end-start)
		}
		for _, row := range p {
			out = append(out, row...)
		}
	}
	return out, nil
}

// Noise draws n noise vectors uniform in [-1, 1) keyed on seed. TensorFlow's
// stateless RNG draws them, so a seed gives the same vectors on every run.
func Noise(n int, seed int64) ([][]float32, error) {
	g, z, err := graphs.Noise(int64(n), seed)
	if err != nil {
		return nil, err
	}
	sess, err := tfops.NewSession(g, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	res, err := sess.Run(nil, []tf.Output{z}, nil)
	if err != nil {
		return nil, fmt.Errorf("draw noise: %w", err)
	}
	return res[0].Value().([][]float32), nil
}
