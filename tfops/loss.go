package tfops

import (
	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// BinaryCrossEntropy is the batch mean of -[y log p + (1-y) log(1-p)] where
// p = sigmoid(logits): Keras' binary cross-entropy on the sigmoid output. It is
// computed from the logits as softplus(l) - y*l, which is exact and does not
// overflow or take log(0) when the sigmoid saturates.
func BinaryCrossEntropy(s *op.Scope, logits, labels tf.Output) tf.Output {
	perExample := op.Sub(s, softplus(s, logits), op.Mul(s, labels, logits))
	return op.Mean(s, perExample, allAxes(s, perExample))
}

// BinaryAccuracy is the share of examples where sigmoid(logits) > 0.5 agrees with
// labels > 0.5 (Keras' binary_accuracy).
func BinaryAccuracy(s *op.Scope, logits, labels tf.Output) tf.Output {
	predicted := op.Greater(s.SubScope("predicted"), logits, op.Const(s.SubScope("zero"), float32(0)))
	actual := op.Greater(s.SubScope("actual"), labels, op.Const(s.SubScope("half"), float32(0.5)))
	hits := op.Cast(s, op.Equal(s, predicted, actual), tf.Float)
	return op.Mean(s, hits, allAxes(s, hits))
}

// softplus is log(1 + exp(x)); graft hides the generated wrapper, so the op is
// added by name.
func softplus(s *op.Scope, x tf.Output) tf.Output {
	return s.AddOperation(tf.OpSpec{Type: "Softplus", Input: []tf.Input{x}}).Output(0)
}

// allAxes lists every axis of x, for reductions to a scalar.
func allAxes(s *op.Scope, x tf.Output) tf.Output {
	s = s.SubScope("all_axes")
	rank := op.Rank(s, x)
	return op.Range(s, op.Const(s.SubScope("start"), int32(0)), rank, op.Const(s.SubScope("delta"), int32(1)))
}

// SoftmaxCrossEntropy is the batch mean of -log softmax(logits)[label], Keras'
// sparse categorical cross-entropy: logits [N, K], labels int32 [N] in [0, K).
// The labels go one-hot into SoftmaxCrossEntropyWithLogits: TensorFlow's C++
// gradient registry has that op's gradient but not the sparse one's.
func SoftmaxCrossEntropy(s *op.Scope, logits, labels tf.Output) tf.Output {
	classes := op.Slice(s.SubScope("classes"), op.Shape(s.SubScope("classes"), logits), op.Const(s.SubScope("classes_begin"), []int32{1}), op.Const(s.SubScope("classes_size"), []int32{1}))
	oneHot := op.OneHot(s, labels, op.Squeeze(s.SubScope("depth"), classes),
		op.Const(s.SubScope("on"), float32(1)), op.Const(s.SubScope("off"), float32(0)))
	perExample, _ := op.SoftmaxCrossEntropyWithLogits(s, logits, oneHot)
	return op.Mean(s, perExample, allAxes(s, perExample))
}

// CategoricalAccuracy is the share of examples whose largest logit is at
// their label: logits [N, K], labels int32 [N].
func CategoricalAccuracy(s *op.Scope, logits, labels tf.Output) tf.Output {
	predicted := op.ArgMax(s, logits, op.Const(s.SubScope("axis"), int32(1)), op.ArgMaxOutputType(tf.Int32))
	hits := op.Cast(s, op.Equal(s, predicted, labels), tf.Float)
	return op.Mean(s, hits, allAxes(s, hits))
}
