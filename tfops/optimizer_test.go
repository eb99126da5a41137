package tfops

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// constInit returns an initializer that sets a variable to values.
func constInit(values []float32) Initializer {
	return func(s *op.Scope, shape []int64, _ tf.Output) tf.Output {
		return op.Reshape(s, op.Const(s.SubScope("values"), values), op.Const(s.SubScope("shape"), shape))
	}
}

// linearModel builds loss = sum(w * coef) over one variable w, whose gradient
// is coef at every step, and one optimizer step on it.
func linearModel(t *testing.T, opt Optimizer, w0, coef []float32) (*tf.Session, *Step, *Variable, *Vars) {
	t.Helper()
	root := op.NewScope()
	vars := NewVars(root, 1)
	pass := NewPass("train", vars, true, op.Const(root.SubScope("step"), int64(0)))
	c := NewCtx(root.SubScope("model"), pass, "model")
	w := c.Variable("w", []int64{int64(len(w0))}, true, constInit(w0))
	loss := op.Sum(root, op.Mul(root, w, op.Const(root.SubScope("coef"), coef)), op.Const(root.SubScope("axis"), []int32{0}))
	step, err := opt.Minimize(root.SubScope("optimizer"), vars, "model", loss, pass, Trainable(vars.All()))
	if err != nil {
		t.Fatal(err)
	}
	sess := newTestSession(t, root)
	if _, err := sess.Run(nil, nil, InitOps(vars.All())); err != nil {
		t.Fatal(err)
	}
	return sess, step, vars.All()[0], vars
}

func TestOptimizersFollowKerasUpdateRules(t *testing.T) {
	w0 := []float32{0.5, -1, 2}
	coef := []float32{1, -3, 0.25} // the gradient, at every step
	const steps = 3
	for _, kind := range []string{RMSprop, Adam} {
		t.Run(kind, func(t *testing.T) {
			opt, err := NewOptimizer(kind, 0.01, 0.5) // a large decay so that it shows
			if err != nil {
				t.Fatal(err)
			}
			sess, step, w, _ := linearModel(t, opt, w0, coef)
			want := expectedWeights(opt, w0, coef, steps)
			var lrs []float32
			for i := 0; i < steps; i++ {
				out, err := sess.Run(nil, []tf.Output{step.LR}, []*tf.Operation{step.Op})
				if err != nil {
					t.Fatal(err)
				}
				lrs = append(lrs, out[0].Value().(float32))
			}
			got := fetchVar(t, sess, w)
			for i := range want {
				if math.Abs(float64(got[i])-want[i]) > 1e-5 {
					t.Errorf("w[%d] after %d steps = %.7f, want %.7f", i, steps, got[i], want[i])
				}
			}
			for i, lr := range lrs {
				if want := 0.01 / (1 + 0.5*float64(i)); math.Abs(float64(lr)-want) > 1e-7 {
					t.Errorf("learning rate at step %d = %g, want %g", i, lr, want)
				}
			}
			iters := fetchInt(t, sess, step.Iterations)
			if iters != steps {
				t.Errorf("iterations = %d, want %d", iters, steps)
			}
		})
	}
}

// expectedWeights applies Keras' update rules by hand (float64).
func expectedWeights(o Optimizer, w0, grad []float32, steps int) []float64 {
	w := make([]float64, len(w0))
	a := make([]float64, len(w0)) // RMSprop: mean square; Adam: first moment
	b := make([]float64, len(w0)) // Adam: second moment
	for i := range w0 {
		w[i] = float64(w0[i])
	}
	for t := 0; t < steps; t++ {
		lr := float64(o.LR) / (1 + float64(o.Decay)*float64(t))
		for i := range w {
			g := float64(grad[i])
			switch o.Kind {
			case RMSprop:
				a[i] = float64(o.Rho)*a[i] + (1-float64(o.Rho))*g*g
				w[i] -= lr * g / math.Sqrt(a[i]+float64(o.Epsilon))
			case Adam:
				b1, b2 := float64(o.Beta1), float64(o.Beta2)
				a[i] = b1*a[i] + (1-b1)*g
				b[i] = b2*b[i] + (1-b2)*g*g
				alpha := lr * math.Sqrt(1-math.Pow(b2, float64(t+1))) / (1 - math.Pow(b1, float64(t+1)))
				w[i] -= alpha * a[i] / (math.Sqrt(b[i]) + float64(o.Epsilon))
			}
		}
	}
	return w
}

// fetchVar reads a float variable through a ReadVariableOp added for the test.
func fetchVar(t *testing.T, sess *tf.Session, v *Variable) []float32 {
	t.Helper()
	out := runRead(t, sess, v)
	return out.Value().([]float32)
}

func fetchInt(t *testing.T, sess *tf.Session, v *Variable) int64 {
	t.Helper()
	return runRead(t, sess, v).Value().(int64)
}

// runRead finds the read op the saver-free test graph already has for v: every
// variable in these tests is read by its pass or its optimizer.
func runRead(t *testing.T, sess *tf.Session, v *Variable) *tf.Tensor {
	t.Helper()
	for _, c := range v.Handle.Consumers() {
		if o := c.Op; o.Type() == "ReadVariableOp" {
			out, err := sess.Run(nil, []tf.Output{o.Output(0)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return out[0]
		}
	}
	t.Fatalf("no read of %s in the graph", v.Name)
	return nil
}

func TestUnknownOptimizerIsRefused(t *testing.T) {
	if _, err := NewOptimizer("sgd", 0.1, 0); err == nil || !strings.Contains(err.Error(), "rmsprop") {
		t.Errorf("NewOptimizer(sgd) error = %v, want one naming the choices", err)
	}
}

func TestSaverRoundTripsAndRejectsOtherShapes(t *testing.T) {
	build := func(n int64, w0 []float32) (*tf.Session, *Saver, *Variable) {
		root := op.NewScope()
		vars := NewVars(root, 1)
		pass := NewPass("p", vars, false, op.Const(root.SubScope("step"), int64(0)))
		NewCtx(root.SubScope("m"), pass, "m").Variable("w", []int64{n}, true, constInit(w0))
		saver, err := NewSaver(root, vars.All())
		if err != nil {
			t.Fatal(err)
		}
		sess := newTestSession(t, root)
		if _, err := sess.Run(nil, nil, InitOps(vars.All())); err != nil {
			t.Fatal(err)
		}
		return sess, saver, vars.All()[0]
	}
	prefix := filepath.Join(t.TempDir(), "ckpt", "variables")

	sess, saver, w := build(3, []float32{1, 2, 3})
	if err := saver.Save(sess, prefix); err != nil {
		t.Fatal(err)
	}
	sess2, saver2, w2 := build(3, []float32{7, 7, 7})
	if err := saver2.Restore(sess2, prefix); err != nil {
		t.Fatal(err)
	}
	if got := fetchVar(t, sess2, w2); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("restored %v, want [1 2 3]", got)
	}
	_ = fetchVar(t, sess, w)

	sess3, saver3, _ := build(4, []float32{0, 0, 0, 0})
	err := saver3.Restore(sess3, prefix)
	if err == nil || !strings.Contains(err.Error(), "m/w") {
		t.Errorf("restoring a [3] checkpoint into a [4] variable: error %v, want one naming m/w", err)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}
