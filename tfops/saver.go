package tfops

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// Saver saves and restores variables in TensorFlow's own checkpoint format (a
// tensor bundle: PREFIX.index and PREFIX.data-00000-of-00001), keyed by variable
// name, so Python's tf.train.load_checkpoint reads what mnistgan writes.
type Saver struct {
	vars    []*Variable
	values  []tf.Output // a read of each variable
	prefix  tf.Output   // string scalar fed at run time
	save    *tf.Operation
	saved   tf.Output // the prefix, once saved: a SaverDef names a save tensor, not an op
	restore *tf.Operation
	// finite[i] is true when every value of the i-th floating-point
	// variable, finiteVars[i], is neither NaN nor infinite.
	finite     tf.Output
	finiteVars []*Variable
}

// NewSaver adds save and restore ops for vars under s.
func NewSaver(s *op.Scope, vars []*Variable) (*Saver, error) {
	if len(vars) == 0 {
		return nil, fmt.Errorf("saver: no variables to save")
	}
	// The bundle kernels run on the CPU; the reads copy from any device.
	s = s.SubScope("saver").WithDevice("/device:CPU:0")
	names := make([]string, len(vars))
	slices := make([]string, len(vars))
	values := make([]tf.Output, len(vars))
	for i, v := range vars {
		names[i] = v.Name
		values[i] = op.ReadVariableOp(s.SubScope("read"), v.Handle, v.DType)
	}
	sv := &Saver{vars: vars, values: values}
	sv.prefix = op.Placeholder(s.SubScope("prefix"), tf.String, op.PlaceholderShape(tf.ScalarShape()))
	nameConst := op.Const(s.SubScope("tensor_names"), names)
	sliceConst := op.Const(s.SubScope("shape_and_slices"), slices)
	sv.save = op.SaveV2(s, sv.prefix, nameConst, sliceConst, values)
	sv.saved = op.Identity(s.SubScope("saved").WithControlDependencies(sv.save), sv.prefix)
	if err := Err(s); err != nil {
		return nil, fmt.Errorf("saver: %w", err)
	}
	assigns := make([]*tf.Operation, len(vars))
	rs := s.SubScope("restore")
	for i, v := range vars {
		// One RestoreV2 per variable, named after it, and a shape check: a
		// checkpoint of another architecture then fails with a message naming
		// the variable (see restoreShapeError).
		vs := rs.SubScope(v.Name)
		restored := op.RestoreV2(vs, sv.prefix, op.Const(vs.SubScope("name"), []string{v.Name}), op.Const(vs.SubScope("slice"), []string{""}), []tf.DataType{v.DType})
		if len(restored) != 1 {
			return nil, fmt.Errorf("saver: restore %s: %w", v.Name, Err(s))
		}
		assigns[i] = op.AssignVariableOp(vs, v.Handle, op.EnsureShape(vs, restored[0], tf.MakeShape(v.Shape...)))
	}
	sv.restore = op.NoOp(s.SubScope("restore_all").WithControlDependencies(assigns...))
	fs := s.SubScope("finite")
	var checks []tf.Output
	for i, v := range vars {
		if v.DType != tf.Float && v.DType != tf.Double && v.DType != tf.Half {
			continue
		}
		vs := fs.SubScope(v.Name)
		flat := op.Reshape(vs, values[i], op.Const(vs.SubScope("shape"), []int64{-1}))
		checks = append(checks, op.All(vs, op.IsFinite(vs, flat), op.Const(vs.SubScope("axis"), int32(0))))
		sv.finiteVars = append(sv.finiteVars, v)
	}
	if len(checks) > 0 {
		sv.finite = op.Pack(fs, checks)
	}
	if err := Err(s); err != nil {
		return nil, fmt.Errorf("saver: %w", err)
	}
	return sv, nil
}

// Save writes every variable to the bundle at prefix.
func (sv *Saver) Save(sess *tf.Session, prefix string) error {
	p, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	if _, err := sess.Run(map[tf.Output]*tf.Tensor{sv.prefix: p}, nil, []*tf.Operation{sv.save}); err != nil {
		return fmt.Errorf("save variables to %s: %w", prefix, tidyRunError(err))
	}
	return nil
}

// Restore loads every variable from the bundle at prefix; a missing variable or
// one of another shape is an error naming it.
func (sv *Saver) Restore(sess *tf.Session, prefix string) error {
	p, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	if _, err := sess.Run(map[tf.Output]*tf.Tensor{sv.prefix: p}, nil, []*tf.Operation{sv.restore}); err != nil {
		err = restoreShapeError(tidyRunError(err))
		if corrupt.MatchString(err.Error()) {
			err = fmt.Errorf("%w: %w", ErrCorruptCheckpoint, err)
		}
		return fmt.Errorf("restore variables from %s: %w", prefix, err)
	}
	return nil
}

// ErrCorruptCheckpoint marks a bundle whose bytes are damaged (its checksums
// fail), as opposed to one of another graph.
var ErrCorruptCheckpoint = errors.New("the checkpoint's files are damaged")

// corrupt matches what TensorFlow's bundle reader says of damaged data.
var corrupt = regexp.MustCompile(`(?i)checksum does not match|data ?loss|corrupt`)

// shapeMismatch matches EnsureShape's complaint about a restored tensor.
var shapeMismatch = regexp.MustCompile(`Shape of tensor saver/restore/(.+)/RestoreV2 (\[[^\]]*\]) is not compatible with expected shape (\[[^\]]*\])`)

// restoreShapeError rewrites a shape mismatch as the variable's name and shapes.
func restoreShapeError(err error) error {
	if m := shapeMismatch.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("variable %s has shape %s in the checkpoint but %s in this graph", m[1], m[2], m[3])
	}
	return err
}

// tidyRunError keeps the first line of a TensorFlow run error: the rest is the
// op's node definition and a stack of graph nodes, useless to a user.
func tidyRunError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i > 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, "\t [["); i > 0 {
		msg = msg[:i]
	}
	return fmt.Errorf("%s", strings.TrimSpace(msg))
}

// Values fetches the current value of every variable, by name.
func (sv *Saver) Values(sess *tf.Session) (map[string]*tf.Tensor, error) {
	out, err := sess.Run(nil, sv.values, nil)
	if err != nil {
		return nil, fmt.Errorf("read variables: %w", tidyRunError(err))
	}
	m := make(map[string]*tf.Tensor, len(out))
	for i, v := range sv.vars {
		m[v.Name] = out[i]
	}
	return m, nil
}

// NonFinite names the variables holding a NaN or an infinity, in the saver's
// order; none for weights that are fit to save. TensorFlow does the checking,
// on the device the variables live on.
func (sv *Saver) NonFinite(sess *tf.Session) ([]string, error) {
	if len(sv.finiteVars) == 0 {
		return nil, nil
	}
	out, err := sess.Run(nil, []tf.Output{sv.finite}, nil)
	if err != nil {
		return nil, fmt.Errorf("check variables for NaN and Inf: %w", tidyRunError(err))
	}
	var bad []string
	for i, ok := range out[0].Value().([]bool) {
		if !ok {
			bad = append(bad, sv.finiteVars[i].Name)
		}
	}
	return bad, nil
}

// Variables lists the variables the saver saves and restores.
func (sv *Saver) Variables() []*Variable { return append([]*Variable(nil), sv.vars...) }
