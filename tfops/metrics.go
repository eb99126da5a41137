package tfops

import (
	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// The sample-quality scores of `mnistgan eval`, as TensorFlow graph pieces. They
// compute in float64: a Frechet distance subtracts traces of 128 x 128
// covariances that are far larger than the distance itself.

// InceptionScore is exp(mean over x of KL(p(y|x) || p(y))) for class
// probabilities probs [N, K] (rows summing to 1), where p(y) is the mean row.
// It is 1 when every row is the same and K when the rows are one-hot and the
// classes equally frequent. Returns a float64 scalar.
func InceptionScore(s *op.Scope, probs tf.Output) tf.Output {
	s = s.SubScope("inception_score")
	p := op.Cast(s, probs, tf.Double)
	marginal := op.Mean(s.SubScope("marginal"), p, op.Const(s.SubScope("rows"), []int32{0}), op.MeanKeepDims(true))
	// xlogy(p, q) is p*log(q), and 0 where p is 0: classes a digit surely is not
	// add nothing, as in the sum's definition.
	kl := op.Sub(s.SubScope("kl"), op.Xlogy(s.SubScope("self"), p, p), op.Xlogy(s.SubScope("cross"), p, marginal))
	perExample := op.Sum(s, kl, op.Const(s.SubScope("classes"), []int32{1}))
	return op.Exp(s, op.Mean(s, perExample, op.Const(s.SubScope("examples"), []int32{0})))
}

// Moments returns the mean [D] and the unbiased covariance [D, D] (divided by
// N-1, as numpy.cov) of the rows of x [N, D], in float64.
func Moments(s *op.Scope, x tf.Output) (mean, cov tf.Output) {
	s = s.SubScope("moments")
	xd := op.Cast(s, x, tf.Double)
	mean = op.Mean(s.SubScope("mean"), xd, op.Const(s.SubScope("rows"), []int32{0}))
	centred := op.Sub(s.SubScope("centred"), xd, mean)
	n := op.Cast(s.SubScope("n"), op.Slice(s.SubScope("n"), op.Shape(s.SubScope("n"), xd), op.Const(s.SubScope("begin"), []int32{0}), op.Const(s.SubScope("size"), []int32{1})), tf.Double)
	dof := op.Sub(s.SubScope("dof"), op.Squeeze(s.SubScope("dof"), n), op.Const(s.SubScope("one"), float64(1)))
	cov = op.Div(s.SubScope("cov"), op.MatMul(s.SubScope("cov"), centred, centred, op.MatMulTransposeA(true)), dof)
	return mean, cov
}

// FrechetDistance is the Frechet (2-Wasserstein) distance between the
// Gaussians N(mu1, cov1) and N(mu2, cov2), float64 [D] and [D, D]:
// |mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)). The last trace
// is taken as tr((A cov2 A)^(1/2)) with A = cov1^(1/2), a symmetric matrix
// whose eigenvalues (SelfAdjointEigV2) are those of cov1 cov2, so no
// non-symmetric square root is needed.
func FrechetDistance(s *op.Scope, mu1, cov1, mu2, cov2 tf.Output) tf.Output {
	s = s.SubScope("frechet_distance")
	diff := op.Sub(s.SubScope("mean_diff"), mu1, mu2)
	meanTerm := op.Sum(s.SubScope("mean_term"), op.Square(s.SubScope("mean_term"), diff), op.Const(s.SubScope("axis"), []int32{0}))
	root1 := symmetricSqrt(s.SubScope("sqrt_cov1"), cov1)
	inner := symmetrize(s.SubScope("inner"), op.MatMul(s.SubScope("inner"), op.MatMul(s.SubScope("inner_left"), root1, cov2), root1))
	eig, _ := op.SelfAdjointEigV2(s.SubScope("inner_eig"), inner, op.SelfAdjointEigV2ComputeV(false))
	crossTrace := op.Sum(s.SubScope("cross_trace"), nonNegativeSqrt(s.SubScope("cross_trace"), eig), op.Const(s.SubScope("axis"), []int32{0}))
	traces := op.AddV2(s.SubScope("traces"), trace(s.SubScope("trace1"), cov1), trace(s.SubScope("trace2"), cov2))
	two := op.Const(s.SubScope("two"), float64(2))
	return op.Sub(s, op.AddV2(s.SubScope("sum"), meanTerm, traces), op.Mul(s.SubScope("cross"), two, crossTrace))
}

// ClassShares is the share of rows of probs [N, K] whose most likely class is
// each class: [K] float32, summing to 1.
func ClassShares(s *op.Scope, probs tf.Output, classes int64) tf.Output {
	s = s.SubScope("class_shares")
	top := op.ArgMax(s, probs, op.Const(s.SubScope("axis"), int32(1)), op.ArgMaxOutputType(tf.Int32))
	oneHot := op.OneHot(s, top, op.Const(s.SubScope("depth"), int32(classes)), op.Const(s.SubScope("on"), float32(1)), op.Const(s.SubScope("off"), float32(0)))
	return op.Mean(s, oneHot, op.Const(s.SubScope("rows"), []int32{0}))
}

// TopConfidence is the mean over rows of probs [N, K] of the largest
// probability: how sure the classifier is of its answer, float32 scalar.
func TopConfidence(s *op.Scope, probs tf.Output) tf.Output {
	s = s.SubScope("top_confidence")
	top := op.Max(s, probs, op.Const(s.SubScope("classes"), []int32{1}))
	return op.Mean(s, top, op.Const(s.SubScope("rows"), []int32{0}))
}

// symmetricSqrt is the square root of a symmetric positive semi-definite
// matrix, from its eigendecomposition (eigenvalues rounded below zero count as 0).
func symmetricSqrt(s *op.Scope, m tf.Output) tf.Output {
	e, v := op.SelfAdjointEigV2(s, symmetrize(s.SubScope("sym"), m), op.SelfAdjointEigV2ComputeV(true))
	scaled := op.Mul(s.SubScope("scaled"), v, nonNegativeSqrt(s.SubScope("root"), e)) // column j times sqrt(e_j)
	return op.MatMul(s, scaled, v, op.MatMulTransposeB(true))
}

// symmetrize is (m + m^T) / 2: rounding leaves products of symmetric matrices
// a little asymmetric, and SelfAdjointEigV2 reads only one triangle.
func symmetrize(s *op.Scope, m tf.Output) tf.Output {
	t := op.Transpose(s, m, op.Const(s.SubScope("perm"), []int32{1, 0}))
	return op.Mul(s, op.AddV2(s, m, t), op.Const(s.SubScope("half"), float64(0.5)))
}

func nonNegativeSqrt(s *op.Scope, x tf.Output) tf.Output {
	return op.Sqrt(s, op.Maximum(s, x, op.Const(s.SubScope("zero"), float64(0))))
}

func trace(s *op.Scope, m tf.Output) tf.Output {
	return op.Sum(s, op.MatrixDiagPart(s, m), op.Const(s.SubScope("axis"), []int32{0}))
}
