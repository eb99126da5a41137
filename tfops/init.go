package tfops

import (
	"math"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// Zeros initialises every element to 0 (Keras' default for biases and beta).
func Zeros(s *op.Scope, shape []int64, _ tf.Output) tf.Output { return fill(s, shape, 0) }

// Ones initialises every element to 1 (batch-norm gamma and moving variance).
func Ones(s *op.Scope, shape []int64, _ tf.Output) tf.Output { return fill(s, shape, 1) }

func fill(s *op.Scope, shape []int64, value float32) tf.Output {
	dims := op.Const(s.SubScope("dims"), shape)
	return op.Fill(s, dims, op.Const(s.SubScope("value"), value))
}

// GlorotUniform is Keras' default kernel initializer: uniform in [-l, l] with
// l = sqrt(6 / (fan_in + fan_out)). For a dense kernel [in, out] the fans are in
// and out; for a convolution kernel [h, w, a, b] they are h*w*a and h*w*b (Keras
// reads a transposed convolution's kernel the same way).
func GlorotUniform(s *op.Scope, shape []int64, seed tf.Output) tf.Output {
	fanIn, fanOut := fans(shape)
	limit := float32(math.Sqrt(6 / float64(fanIn+fanOut)))
	u := op.StatelessRandomUniform(s, op.Const(s.SubScope("shape"), shape), seed) // [0, 1)
	scaled := op.Mul(s, u, op.Const(s.SubScope("width"), 2*limit))
	return op.Sub(s, scaled, op.Const(s.SubScope("limit"), limit))
}

func fans(shape []int64) (fanIn, fanOut int64) {
	switch len(shape) {
	case 0:
		return 1, 1
	case 1:
		return shape[0], shape[0]
	case 2:
		return shape[0], shape[1]
	}
	receptive := int64(1)
	for _, d := range shape[:len(shape)-2] {
		receptive *= d
	}
	return receptive * shape[len(shape)-2], receptive * shape[len(shape)-1]
}
