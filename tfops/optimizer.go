package tfops

import (
	"fmt"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// Optimizer kinds.
const (
	RMSprop = "rmsprop"
	Adam    = "adam"
)

// Optimizer describes a Keras-style optimizer with time-based learning-rate
// decay: the rate at step t (counted from 0) is LR / (1 + Decay*t).
type Optimizer struct {
	Kind    string  // RMSprop or Adam
	LR      float32 // initial learning rate
	Decay   float32 // time-based decay per step
	Rho     float32 // RMSprop: discount of the squared-gradient average (Keras 0.9)
	Beta1   float32 // Adam: first-moment decay (Keras 0.9)
	Beta2   float32 // Adam: second-moment decay (Keras 0.999)
	Epsilon float32 // both: Keras 1e-7
}

// NewOptimizer returns the Keras defaults of kind with the given rate and decay.
func NewOptimizer(kind string, lr, decay float32) (Optimizer, error) {
	switch kind {
	case RMSprop, Adam:
	default:
		return Optimizer{}, fmt.Errorf("unknown optimizer %q; use %s or %s", kind, RMSprop, Adam)
	}
	return Optimizer{Kind: kind, LR: lr, Decay: decay, Rho: 0.9, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}, nil
}

// Step is an optimizer update built into a graph.
type Step struct {
	Op         *tf.Operation // one update of every variable, plus the side updates, then iterations += 1
	LR         tf.Output     // the decayed learning rate this update uses
	Iterations *Variable     // int64 count of updates applied
}

// Minimize adds one update of vars (all trainable and read by pass) that lowers
// loss, with slots and the iteration count stored as variables under
// "optimizer/<name>/". Gradients come from libtensorflow's C++ gradient registry
// (TF_AddGradients); the updates are TensorFlow's ResourceApply kernels. The
// side updates of the pass (batch-norm statistics) run in the same step.
func (o Optimizer) Minimize(s *op.Scope, vars *Vars, name string, loss tf.Output, pass *Pass, train []*Variable) (*Step, error) {
	if err := Err(s); err != nil {
		return nil, err
	}
	for _, v := range train {
		if !v.Trainable {
			return nil, fmt.Errorf("optimizer %s: variable %s is not trainable", name, v.Name)
		}
	}
	reads, err := pass.ReadsOf(train)
	if err != nil {
		return nil, fmt.Errorf("optimizer %s: %w", name, err)
	}
	s = s.SubScope(name)
	slot := "optimizer/" + name
	// Gradients may not be built in a scope with a device or control dependencies.
	grads := op.Gradients(s.WithDevice(""), []tf.Output{loss}, reads)
	if err := Err(s); err != nil {
		return nil, fmt.Errorf("gradients of %s: %w", name, err)
	}

	iterations := vars.Get(slot+"/iterations", nil, tf.Int64, false, zeroInt64)
	ls := s.SubScope("learning_rate")
	iter := op.Cast(ls, op.ReadVariableOp(ls, iterations.Handle, tf.Int64), tf.Float)
	lr := op.Div(ls, constant(ls, "initial", o.LR),
		op.AddV2(ls, constant(ls, "one", 1), op.Mul(ls, constant(ls, "decay", o.Decay), iter)))

	applies := pass.Updates()
	as := s.SubScope("apply")
	switch o.Kind {
	case RMSprop:
		rho, momentum, eps := constant(s, "rho", o.Rho), constant(s, "momentum", 0), constant(s, "epsilon", o.Epsilon)
		for i, v := range train {
			ms := vars.Get(slot+"/"+v.Name+"/rms", v.Shape, v.DType, false, Zeros)
			mom := vars.Get(slot+"/"+v.Name+"/momentum", v.Shape, v.DType, false, Zeros)
			applies = append(applies, op.ResourceApplyRMSProp(as.SubScope(v.Name), v.Handle, ms.Handle, mom.Handle, lr, rho, momentum, eps, grads[i]))
		}
	case Adam:
		ts := s.SubScope("bias_correction")
		t1 := op.AddV2(ts, iter, constant(ts, "one", 1))
		beta1, beta2, eps := constant(s, "beta1", o.Beta1), constant(s, "beta2", o.Beta2), constant(s, "epsilon", o.Epsilon)
		beta1Power := op.Pow(ts.SubScope("beta1_power"), beta1, t1)
		beta2Power := op.Pow(ts.SubScope("beta2_power"), beta2, t1)
		for i, v := range train {
			m := vars.Get(slot+"/"+v.Name+"/m", v.Shape, v.DType, false, Zeros)
			vv := vars.Get(slot+"/"+v.Name+"/v", v.Shape, v.DType, false, Zeros)
			applies = append(applies, op.ResourceApplyAdam(as.SubScope(v.Name), v.Handle, m.Handle, vv.Handle, beta1Power, beta2Power, lr, beta1, beta2, eps, grads[i]))
		}
	default:
		return nil, fmt.Errorf("unknown optimizer %q; use %s or %s", o.Kind, RMSprop, Adam)
	}
	cs := s.SubScope("count")
	bump := op.AssignAddVariableOp(cs.WithControlDependencies(applies...), iterations.Handle, op.Const(cs.SubScope("one"), int64(1)))
	step := op.NoOp(s.WithControlDependencies(bump))
	if err := Err(s); err != nil {
		return nil, fmt.Errorf("optimizer %s: %w", name, err)
	}
	return &Step{Op: step, LR: lr, Iterations: iterations}, nil
}

func zeroInt64(s *op.Scope, _ []int64, _ tf.Output) tf.Output {
	return op.Const(s, int64(0))
}

// constant adds a named float32 scalar: graft names ops after their type, so two
// constants in one scope need scopes of their own.
func constant(s *op.Scope, name string, v float32) tf.Output {
	return op.Const(s.SubScope(name), v)
}
