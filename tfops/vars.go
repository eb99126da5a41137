// Package tfops is the layer kit mnistgan builds its networks from: resource
// variables with Keras-default initializers, layers, losses, optimizers and
// checkpoint ops, all as TensorFlow graph ops added through graft's op package.
// Nothing here computes numbers in Go; every kernel runs in libtensorflow.
//
// A network is built by calling layer functions on a Ctx, which carries the op
// scope, the variable path ("discriminator/conv1") and the Pass being built
// (training or inference). Variables are created on first use and shared by every
// later Pass, so one graph can hold a training pass and an inference pass of the
// same network over the same weights.
//
// Like graft's op.Scope, layers do not return errors: the first failure (a shape
// mismatch, say) is recorded in the scope and reported once by Err.
package tfops

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// Variable is one resource variable of the graph.
type Variable struct {
	Name      string // checkpoint key and shared name, e.g. "generator/bn1/gamma"
	Shape     []int64
	DType     tf.DataType
	Trainable bool
	Handle    tf.Output     // the VarHandleOp's resource
	Init      *tf.Operation // assigns the initial value
}

// Size is the number of elements of v.
func (v *Variable) Size() int64 {
	n := int64(1)
	for _, d := range v.Shape {
		n *= d
	}
	return n
}

// Initializer builds the initial value of a variable of the given shape; seed is
// a stateless-RNG seed unique to the variable.
type Initializer func(s *op.Scope, shape []int64, seed tf.Output) tf.Output

// Vars creates and holds the variables of one graph.
type Vars struct {
	root   *op.Scope // variables live at the graph's top level, under their own names
	seed   int64
	byName map[string]*Variable
	list   []*Variable
}

// NewVars returns an empty variable store adding ops through root. seed makes
// every initial value reproducible.
func NewVars(root *op.Scope, seed int64) *Vars {
	return &Vars{root: root, seed: seed, byName: make(map[string]*Variable)}
}

// Seed is the run seed the store derives every random stream from.
func (vs *Vars) Seed() int64 { return vs.seed }

// Get returns the variable called name, creating it with init on first use. A
// second request under the same name must agree on shape, type and trainability.
func (vs *Vars) Get(name string, shape []int64, dtype tf.DataType, trainable bool, init Initializer) *Variable {
	if v, ok := vs.byName[name]; ok {
		if !sameShape(v.Shape, shape) || v.DType != dtype || v.Trainable != trainable {
			vs.root.UpdateErr(name, fmt.Errorf("variable %s exists with shape %v, requested again with shape %v", name, v.Shape, shape))
		}
		return v
	}
	s := vs.root.SubScope(name)
	v := &Variable{Name: name, Shape: append([]int64(nil), shape...), DType: dtype, Trainable: trainable}
	// The handle op is called by the variable's own name, as TensorFlow's own
	// graphs do, so loaders that turn handles into tf.Variables (Python's
	// tf.saved_model.load) show the checkpoint's names.
	v.Handle = vs.root.AddOperation(tf.OpSpec{Type: "VarHandleOp", Name: name, Attrs: map[string]interface{}{
		"dtype": dtype, "shape": tf.MakeShape(shape...), "shared_name": name,
	}}).Output(0)
	v.Init = op.AssignVariableOp(s, v.Handle, init(s.SubScope("initial_value"), shape, vs.seedConst(s, "init/"+name)))
	vs.byName[name] = v
	vs.list = append(vs.list, v)
	return v
}

// All returns every variable, in creation order.
func (vs *Vars) All() []*Variable { return append([]*Variable(nil), vs.list...) }

// Under returns the variables whose names start with prefix + "/", in creation order.
func (vs *Vars) Under(prefix string) []*Variable {
	var out []*Variable
	for _, v := range vs.list {
		if strings.HasPrefix(v.Name, prefix+"/") {
			out = append(out, v)
		}
	}
	return out
}

// Trainable filters vars down to the trainable ones.
func Trainable(vars []*Variable) []*Variable {
	var out []*Variable
	for _, v := range vars {
		if v.Trainable {
			out = append(out, v)
		}
	}
	return out
}

// CountParams sums the sizes of vars.
func CountParams(vars []*Variable) int64 {
	var n int64
	for _, v := range vars {
		n += v.Size()
	}
	return n
}

// InitOps returns the initializers of vars, for one Session.Run.
func InitOps(vars []*Variable) []*tf.Operation {
	ops := make([]*tf.Operation, len(vars))
	for i, v := range vars {
		ops[i] = v.Init
	}
	return ops
}

// Names lists the variable names, sorted.
func Names(vars []*Variable) []string {
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.Name
	}
	sort.Strings(names)
	return names
}

// seedConst returns a constant stateless-RNG seed [run seed, hash(stream)]: every
// named random stream gets its own reproducible sequence.
func (vs *Vars) seedConst(s *op.Scope, stream string) tf.Output {
	return op.Const(s.SubScope("seed"), []int64{vs.seed, streamID(stream)})
}

// streamID hashes a stream name into a seed word.
func streamID(stream string) int64 {
	h := fnv.New64a()
	h.Write([]byte(stream))
	return int64(h.Sum64() >> 1)
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
