package tfops

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// Every layer kind's gradient, as libtensorflow computes it (TF_AddGradients),
// is checked against central finite differences of the layer itself. The scalar
// checked is L = sum(layer(x) * r) for a fixed random r; the derivative is taken
// along random directions in the input and in every variable at once, and at a
// few single coordinates.

type gradCase struct {
	name     string
	input    []int64
	training bool
	layer    func(c Ctx, x tf.Output) tf.Output
	// inputs keeps generated inputs away from kinks (|x| >= margin) so finite
	// differences do not straddle one.
	margin float64
	// tol is the allowed relative error; float32 arithmetic bounds how small it can be.
	tol float64
}

func TestLayerGradientsMatchFiniteDifferences(t *testing.T) {
	cases := []gradCase{
		{name: "dense", input: []int64{3, 5}, layer: func(c Ctx, x tf.Output) tf.Output { return Dense(c, x, 4) }},
		{name: "conv2d stride 2", input: []int64{2, 6, 6, 2}, layer: func(c Ctx, x tf.Output) tf.Output { return Conv2D(c, x, 3, 5, 2) }},
		{name: "conv2d stride 1", input: []int64{2, 4, 4, 3}, layer: func(c Ctx, x tf.Output) tf.Output { return Conv2D(c, x, 2, 3, 1) }},
		{name: "conv2d transpose", input: []int64{2, 4, 4, 3}, layer: func(c Ctx, x tf.Output) tf.Output { return Conv2DTranspose(c, x, 2, 5, 1) }},
		{name: "conv2d transpose stride 2", input: []int64{2, 3, 3, 2}, layer: func(c Ctx, x tf.Output) tf.Output { return Conv2DTranspose(c, x, 2, 3, 2) }},
		{name: "batch norm training 4d", input: []int64{4, 3, 3, 2}, training: true, tol: 3e-2, layer: func(c Ctx, x tf.Output) tf.Output { return BatchNorm(c, x, 0.9, 1e-3) }},
		{name: "batch norm training 2d", input: []int64{6, 5}, training: true, tol: 3e-2, layer: func(c Ctx, x tf.Output) tf.Output { return BatchNorm(c, x, 0.9, 1e-3) }},
		{name: "batch norm inference", input: []int64{4, 5}, layer: func(c Ctx, x tf.Output) tf.Output { return BatchNorm(c, x, 0.9, 1e-3) }},
		{name: "leaky relu", input: []int64{3, 7}, margin: 0.05, layer: func(c Ctx, x tf.Output) tf.Output { return LeakyReLU(c, x, 0.2) }},
		{name: "relu", input: []int64{3, 7}, margin: 0.05, layer: func(c Ctx, x tf.Output) tf.Output { return ReLU(c, x) }},
		{name: "sigmoid", input: []int64{3, 7}, layer: func(c Ctx, x tf.Output) tf.Output { return Sigmoid(c, x) }},
		{name: "dropout training", input: []int64{4, 10}, training: true, layer: func(c Ctx, x tf.Output) tf.Output { return Dropout(c, x, 0.4) }},
		{name: "upsampling", input: []int64{2, 3, 3, 2}, layer: func(c Ctx, x tf.Output) tf.Output { return UpSampling2D(c, x, 2) }},
		{name: "reshape", input: []int64{2, 2, 2, 3}, layer: func(c Ctx, x tf.Output) tf.Output { return Reshape(c, x, 12) }},
		{name: "max pool", input: []int64{2, 4, 4, 3}, layer: func(c Ctx, x tf.Output) tf.Output { return MaxPool2D(c, x, 2) }},
		{name: "max pool odd size", input: []int64{1, 5, 5, 2}, layer: func(c Ctx, x tf.Output) tf.Output { return MaxPool2D(c, x, 2) }},
		{name: "softmax", input: []int64{3, 6}, layer: func(c Ctx, x tf.Output) tf.Output { return Softmax(c, x) }},
		{name: "softmax cross-entropy", input: []int64{4, 5}, layer: func(c Ctx, x tf.Output) tf.Output {
			labels := op.Const(c.Scope.SubScope("labels"), []int32{0, 3, 4, 1})
			return SoftmaxCrossEntropy(c.Scope.SubScope("sce"), x, labels)
		}},
		{name: "binary cross-entropy", input: []int64{6, 1}, layer: func(c Ctx, x tf.Output) tf.Output {
			labels := op.Const(c.Scope.SubScope("labels"), [][]float32{{1}, {0}, {1}, {0}, {1}, {1}})
			return BinaryCrossEntropy(c.Scope.SubScope("bce"), x, labels)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkGradients(t, tc) })
	}
}

func checkGradients(t *testing.T, tc gradCase) {
	rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
	root := op.NewScope()
	vars := NewVars(root, 7)
	step := op.Const(root.SubScope("step"), int64(3))
	pass := NewPass("test", vars, tc.training, step)
	x := op.Placeholder(root.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(tc.input...)))
	y := tc.layer(NewCtx(root.SubScope("layer"), pass, "layer"), x)
	if err := Err(root); err != nil {
		t.Fatalf("build: %v", err)
	}
	yShape := Shape(y)
	r := op.Const(root.SubScope("r"), randomTensor(rng, yShape, 0))
	yFlat := op.Reshape(root, y, op.Const(root.SubScope("flat"), []int64{-1}))
	loss := op.Sum(root, op.Mul(root, yFlat, r), op.Const(root.SubScope("axis"), []int32{0}))
	if err := Err(root); err != nil {
		t.Fatalf("build loss: %v", err)
	}

	// Every variable read is fed (no initializers run). Points of
	// differentiation: the input and the trainable variables; the moving
	// statistics are fed but, like in training, not differentiated.
	points := []tf.Output{x}
	values := []*tf.Tensor{tensorOf(t, randomTensor(rng, tc.input, tc.margin), tc.input)}
	fixed := make(map[tf.Output]*tf.Tensor)
	for _, v := range vars.All() {
		read, err := pass.ReadsOf([]*Variable{v})
		if err != nil {
			t.Fatal(err)
		}
		if !v.Trainable {
			// Moving statistics: a mean near 0, a variance safely positive.
			val := randomTensor(rng, v.Shape, 0)
			if strings.HasSuffix(v.Name, "variance") {
				val = absIf(randomTensor(rng, v.Shape, 0.5), true)
			}
			fixed[read[0]] = tensorOf(t, val, v.Shape)
			continue
		}
		points = append(points, read[0])
		values = append(values, tensorOf(t, randomTensor(rng, v.Shape, 0), v.Shape))
	}
	grads := op.Gradients(root, []tf.Output{loss}, points)
	g, err := root.Finalize()
	if err != nil {
		t.Fatalf("build gradients: %v", Err(root))
	}
	sess, err := NewSession(g, SessionConfig{IntraOpThreads: 1, InterOpThreads: 1, CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	eval := func(vals []*tf.Tensor, fetch []tf.Output) []*tf.Tensor {
		feeds := make(map[tf.Output]*tf.Tensor)
		for p, v := range fixed {
			feeds[p] = v
		}
		for i, p := range points {
			feeds[p] = vals[i]
		}
		out, err := sess.Run(feeds, fetch, nil)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		return out
	}
	analytic := eval(values, grads)
	lossAt := func(vals []*tf.Tensor) float64 { return float64(eval(vals, []tf.Output{loss})[0].Value().(float32)) }

	tol := tc.tol
	if tol == 0 {
		tol = 1e-2
	}
	const eps = 1e-2
	// Directional derivatives along random directions through every point.
	for trial := 0; trial < 3; trial++ {
		dirs := make([][]float32, len(points))
		want := 0.0
		for i := range points {
			dirs[i] = flat(randomTensor(rng, shapeOf(values[i]), 0))
			want += dot(flat(analytic[i].Value()), dirs[i])
		}
		plus, minus := shifted(t, values, dirs, eps), shifted(t, values, dirs, -eps)
		got := (lossAt(plus) - lossAt(minus)) / (2 * eps)
		if !close(got, want, tol) {
			t.Errorf("direction %d: finite difference %.6g, gradient %.6g", trial, got, want)
		}
	}
	// Single coordinates of each point: catches a wrong gradient that a random
	// direction could average away.
	for i := range points {
		n := len(flat(values[i].Value()))
		for k := 0; k < 3; k++ {
			j := rng.IntN(n)
			dirs := make([][]float32, len(points))
			for m := range points {
				dirs[m] = make([]float32, len(flat(values[m].Value())))
			}
			dirs[i][j] = 1
			plus, minus := shifted(t, values, dirs, eps), shifted(t, values, dirs, -eps)
			got := (lossAt(plus) - lossAt(minus)) / (2 * eps)
			want := float64(flat(analytic[i].Value())[j])
			if !close(got, want, tol) {
				t.Errorf("d loss / d %s[%d]: finite difference %.6g, gradient %.6g", points[i].Op.Name(), j, got, want)
			}
		}
	}
}

// close compares with a relative tolerance, floored so tiny derivatives are
// compared absolutely.
func close(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Max(math.Abs(got), math.Abs(want)))
}

// randomTensor returns values uniform in [-1, 1] with |v| >= margin, as a flat
// slice (shape is used for its size only; unknown dimensions count as 1).
func randomTensor(rng *rand.Rand, shape []int64, margin float64) []float32 {
	n := 1
	for _, d := range shape {
		if d > 0 {
			n *= int(d)
		}
	}
	out := make([]float32, n)
	for i := range out {
		v := margin + (1-margin)*rng.Float64()
		if rng.IntN(2) == 0 {
			v = -v
		}
		out[i] = float32(v)
	}
	return out
}

func absIf(v []float32, yes bool) []float32 {
	if yes {
		for i := range v {
			v[i] = float32(math.Abs(float64(v[i])))
		}
	}
	return v
}

func tensorOf(t *testing.T, values []float32, shape []int64) *tf.Tensor {
	t.Helper()
	tt, err := tf.NewTensor(values)
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.Reshape(shape); err != nil {
		t.Fatal(err)
	}
	return tt
}

func shapeOf(t *tf.Tensor) []int64 { return t.Shape() }

func shifted(t *testing.T, values []*tf.Tensor, dirs [][]float32, eps float32) []*tf.Tensor {
	out := make([]*tf.Tensor, len(values))
	for i, v := range values {
		base := flat(v.Value())
		moved := make([]float32, len(base))
		for j := range base {
			moved[j] = base[j] + eps*dirs[i][j]
		}
		out[i] = tensorOf(t, moved, v.Shape())
	}
	return out
}

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// flat flattens a tensor value of any rank into a []float32.
func flat(v any) []float32 {
	switch v := v.(type) {
	case float32:
		return []float32{v}
	case []float32:
		return v
	case [][]float32:
		var out []float32
		for _, x := range v {
			out = append(out, x...)
		}
		return out
	case [][][]float32:
		var out []float32
		for _, x := range v {
			out = append(out, flat(x)...)
		}
		return out
	case [][][][]float32:
		var out []float32
		for _, x := range v {
			out = append(out, flat(x)...)
		}
		return out
	}
	panic("flat: unsupported tensor value")
}
