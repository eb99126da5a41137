package tfops

import (
	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// Every layer takes the Ctx it is built in (the network opens one per layer:
// c.In("conv1")) and returns its output. Shapes are NHWC; N, the batch, may be
// unknown until run time, every other dimension must be known at build time.

// Dense is a fully connected layer with bias: [N, in] -> [N, units]. The kernel
// [in, units] is Glorot-uniform, the bias zero.
func Dense(c Ctx, x tf.Output, units int64) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	dims, ok := c.expectRank("dense", x, 2)
	if !ok {
		return tf.Output{}
	}
	kernel := c.Variable("kernel", []int64{dims[1], units}, true, GlorotUniform)
	bias := c.Variable("bias", []int64{units}, true, Zeros)
	return op.BiasAdd(c.Scope, op.MatMul(c.Scope, x, kernel), bias)
}

// Conv2D is a convolution with bias and SAME padding:
// [N, H, W, C] -> [N, ceil(H/stride), ceil(W/stride), filters]. The kernel
// [size, size, C, filters] is Glorot-uniform, the bias zero.
func Conv2D(c Ctx, x tf.Output, filters, size, stride int64) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	dims, ok := c.expectRank("conv2d", x, 4)
	if !ok {
		return tf.Output{}
	}
	kernel := c.Variable("kernel", []int64{size, size, dims[3], filters}, true, GlorotUniform)
	bias := c.Variable("bias", []int64{filters}, true, Zeros)
	y := op.Conv2D(c.Scope, x, kernel, []int64{1, stride, stride, 1}, "SAME")
	return op.BiasAdd(c.Scope, y, bias)
}

// Conv2DTranspose is a transposed convolution (the gradient of Conv2D with
// respect to its input, as Keras' Conv2DTranspose) with bias and SAME padding:
// [N, H, W, C] -> [N, H*stride, W*stride, filters]. The kernel is
// [size, size, filters, C], Keras' layout, Glorot-uniform; the bias zero.
func Conv2DTranspose(c Ctx, x tf.Output, filters, size, stride int64) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	dims, ok := c.expectRank("conv2d_transpose", x, 4)
	if !ok {
		return tf.Output{}
	}
	kernel := c.Variable("kernel", []int64{size, size, filters, dims[3]}, true, GlorotUniform)
	bias := c.Variable("bias", []int64{filters}, true, Zeros)
	outSize := []int32{int32(dims[1] * stride), int32(dims[2] * stride), int32(filters)}
	outShape := op.ConcatV2(c.Scope.SubScope("output_shape"), []tf.Output{
		batchDim(c.Scope, x),
		op.Const(c.Scope.SubScope("output_hwc"), outSize),
	}, op.Const(c.Scope.SubScope("axis"), int32(0)))
	y := op.Conv2DBackpropInput(c.Scope, outShape, kernel, x, []int64{1, stride, stride, 1}, "SAME")
	// The output shape is a run-time tensor (the batch is dynamic), so shape
	// inference loses H, W and C; a reshape (free, and unlike EnsureShape it has a
	// registered gradient) pins them for later layers.
	y = op.Reshape(c.Scope, y, op.Const(c.Scope.SubScope("static_shape"), []int64{-1, dims[1] * stride, dims[2] * stride, filters}))
	return op.BiasAdd(c.Scope, y, bias)
}

// batchDim is the run-time batch size of x as a one-element int32 vector.
func batchDim(s *op.Scope, x tf.Output) tf.Output {
	s = s.SubScope("batch")
	return op.Slice(s, op.Shape(s, x), op.Const(s.SubScope("begin"), []int32{0}), op.Const(s.SubScope("size"), []int32{1}))
}

// BatchNorm normalises the last axis of a [N, C] or [N, H, W, C] input, as Keras'
// BatchNormalization: gamma (1) and beta (0) are trained; in training the batch's
// statistics are used and moving_mean (0) and moving_variance (1) move towards
// them by (1 - momentum) per step; in inference the moving statistics are used.
// It runs TensorFlow's fused kernel (FusedBatchNormV3).
func BatchNorm(c Ctx, x tf.Output, momentum, epsilon float32) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	dims := Shape(x)
	if len(dims) != 2 && len(dims) != 4 {
		c.Fail("batch norm needs a rank-2 or rank-4 input, got %s", FormatShape(dims))
		return tf.Output{}
	}
	if _, ok := c.expectRank("batch norm", x, len(dims)); !ok {
		return tf.Output{}
	}
	channels := dims[len(dims)-1]
	gamma := c.Variable("gamma", []int64{channels}, true, Ones)
	beta := c.Variable("beta", []int64{channels}, true, Zeros)
	movingMean, meanRead := c.variable("moving_mean", []int64{channels}, false, Zeros)
	movingVar, varRead := c.variable("moving_variance", []int64{channels}, false, Ones)

	in := x
	if len(dims) == 2 { // the fused kernel wants NHWC: treat features as channels
		in = op.Reshape(c.Scope.SubScope("to_nhwc"), x, op.Const(c.Scope.SubScope("nhwc"), []int64{-1, 1, 1, channels}))
	}
	var y tf.Output
	if c.Pass.Training() {
		empty := op.Const(c.Scope.SubScope("no_stats"), []float32{})
		var batchMean, batchVar tf.Output
		y, batchMean, batchVar, _, _, _ = op.FusedBatchNormV3(c.Scope, in, gamma, beta, empty, empty,
			op.FusedBatchNormV3Epsilon(epsilon), op.FusedBatchNormV3IsTraining(true))
		rate := op.Const(c.Scope.SubScope("rate"), 1-momentum)
		c.Pass.AddUpdate(movingAverage(c.Scope.SubScope("update_moving_mean"), movingMean, meanRead, batchMean, rate))
		c.Pass.AddUpdate(movingAverage(c.Scope.SubScope("update_moving_variance"), movingVar, varRead, batchVar, rate))
	} else {
		y, _, _, _, _, _ = op.FusedBatchNormV3(c.Scope, in, gamma, beta, meanRead, varRead,
			op.FusedBatchNormV3Epsilon(epsilon), op.FusedBatchNormV3IsTraining(false))
	}
	if len(dims) == 2 {
		y = op.Reshape(c.Scope.SubScope("from_nhwc"), y, op.Const(c.Scope.SubScope("nc"), []int64{-1, channels}))
	}
	return y
}

// movingAverage assigns v -= (v - batch) * rate, i.e. v = v*momentum + batch*(1-momentum).
func movingAverage(s *op.Scope, v *Variable, read, batch, rate tf.Output) *tf.Operation {
	delta := op.Mul(s, op.Sub(s, read, batch), rate)
	return op.AssignSubVariableOp(s, v.Handle, delta)
}

// LeakyReLU is max(x, alpha*x).
func LeakyReLU(c Ctx, x tf.Output, alpha float32) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	return op.LeakyRelu(c.Scope, x, op.LeakyReluAlpha(alpha))
}

// ReLU is max(x, 0).
func ReLU(c Ctx, x tf.Output) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	return op.Relu(c.Scope, x)
}

// Sigmoid is 1 / (1 + exp(-x)).
func Sigmoid(c Ctx, x tf.Output) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	return op.Sigmoid(c.Scope, x)
}

// Dropout zeroes each element with probability rate and scales the survivors by
// 1/(1-rate), in training passes only; inference passes get x unchanged. The mask
// comes from a stateless RNG keyed on (seed, layer path, step).
func Dropout(c Ctx, x tf.Output, rate float32) tf.Output {
	if c.Failed() || !c.Pass.Training() || rate == 0 {
		return x
	}
	if rate < 0 || rate >= 1 {
		c.Fail("dropout rate %g is outside [0, 1)", rate)
		return tf.Output{}
	}
	s := c.Scope
	u := op.StatelessRandomUniform(s, op.Shape(s, x), c.Pass.StepSeed(s, c.Path+"/dropout"))
	keep := op.GreaterEqual(s, u, op.Const(s.SubScope("rate"), rate))
	mask := op.Mul(s.SubScope("mask"), op.Cast(s, keep, tf.Float), op.Const(s.SubScope("scale"), 1/(1-rate)))
	return op.Mul(s, x, mask)
}

// UpSampling2D repeats every pixel factor times along height and width (nearest
// neighbour): [N, H, W, C] -> [N, H*factor, W*factor, C].
func UpSampling2D(c Ctx, x tf.Output, factor int64) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	dims, ok := c.expectRank("upsampling", x, 4)
	if !ok {
		return tf.Output{}
	}
	size := op.Const(c.Scope.SubScope("size"), []int32{int32(dims[1] * factor), int32(dims[2] * factor)})
	return op.ResizeNearestNeighbor(c.Scope, x, size)
}

// Reshape keeps the batch dimension and reshapes the rest to dims, which must
// hold as many elements as x's non-batch dimensions.
func Reshape(c Ctx, x tf.Output, dims ...int64) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	in := Shape(x)
	if len(in) < 1 {
		c.Fail("reshape needs an input of known rank")
		return tf.Output{}
	}
	have, want := int64(1), int64(1)
	for _, d := range in[1:] {
		have *= d
	}
	for _, d := range dims {
		want *= d
	}
	if have != want || have <= 0 {
		c.Fail("cannot reshape %s (%d values per example) to N x %s (%d values)", FormatShape(in), have, FormatShape(dims), want)
		return tf.Output{}
	}
	return op.Reshape(c.Scope, x, op.Const(c.Scope.SubScope("shape"), append([]int64{-1}, dims...)))
}

// MaxPool2D keeps the largest value of each size x size window, stepping by
// size: [N, H, W, C] -> [N, ceil(H/size), ceil(W/size), C].
func MaxPool2D(c Ctx, x tf.Output, size int64) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	if _, ok := c.expectRank("max pool", x, 4); !ok {
		return tf.Output{}
	}
	window := []int64{1, size, size, 1}
	return op.MaxPool(c.Scope, x, window, window, "SAME")
}

// Softmax turns logits [N, K] into class probabilities, rows summing to 1.
func Softmax(c Ctx, logits tf.Output) tf.Output {
	if c.Failed() {
		return tf.Output{}
	}
	if _, ok := c.expectRank("softmax", logits, 2); !ok {
		return tf.Output{}
	}
	return op.Softmax(c.Scope, logits)
}
