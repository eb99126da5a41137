package tfops

import (
	"errors"
	"fmt"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// Pass is one build of one or more networks, in training or inference mode. It
// reads each variable once, so the reads are where gradients are taken, and it
// collects the side updates a training step must run (batch-norm statistics).
type Pass struct {
	name     string // keeps the random streams of different passes apart
	vars     *Vars
	training bool
	step     tf.Output // int64 scalar keying this step's random streams
	after    []*tf.Operation
	waits    func(*Variable) bool // which reads wait for after; nil: all
	reads    map[*Variable]tf.Output
	updates  []*tf.Operation
}

// NewPass starts a pass called name over vars. step (an int64 scalar) keys the random
// streams of dropout and the like, so a step's randomness is a pure function of
// (seed, step) and a resumed run draws exactly what an unbroken one would.
// Variable reads of the pass wait for the operations in after, if any.
func NewPass(name string, vars *Vars, training bool, step tf.Output, after ...*tf.Operation) *Pass {
	return &Pass{name: name, vars: vars, training: training, step: step, after: after, reads: make(map[*Variable]tf.Output)}
}

// OnlyWaitFor narrows the reads that wait for the pass's after operations to
// the variables waits accepts: the others may be read while those operations
// still run (TensorFlow then overlaps them), which is right when nothing in
// after writes them. It must be called before the first read.
func (p *Pass) OnlyWaitFor(waits func(*Variable) bool) *Pass {
	p.waits = waits
	return p
}

// Training reports whether the pass is in training mode.
func (p *Pass) Training() bool { return p.training }

// Read returns v's value as this pass sees it; the first call adds the read.
func (p *Pass) Read(s *op.Scope, v *Variable) tf.Output {
	if r, ok := p.reads[v]; ok {
		return r
	}
	rs := s.SubScope("read_" + v.Name[strings.LastIndex(v.Name, "/")+1:])
	if len(p.after) > 0 && (p.waits == nil || p.waits(v)) {
		rs = rs.WithControlDependencies(p.after...)
	}
	r := op.ReadVariableOp(rs, v.Handle, v.DType)
	p.reads[v] = r
	return r
}

// ReadsOf returns this pass's reads of vars, which must all have been read.
func (p *Pass) ReadsOf(vars []*Variable) ([]tf.Output, error) {
	out := make([]tf.Output, len(vars))
	for i, v := range vars {
		r, ok := p.reads[v]
		if !ok {
			return nil, fmt.Errorf("variable %s is not used by this pass", v.Name)
		}
		out[i] = r
	}
	return out, nil
}

// AddUpdate records an op that a training step must run along with the optimizer.
func (p *Pass) AddUpdate(o *tf.Operation) { p.updates = append(p.updates, o) }

// Updates returns the recorded side updates.
func (p *Pass) Updates() []*tf.Operation { return append([]*tf.Operation(nil), p.updates...) }

// StepSeed returns the stateless-RNG seed of the named stream of this pass at
// its step: [hash(run seed, pass, stream), step]. The first word picks the Philox key, the
// second the counter block, so steps never share random numbers.
func (p *Pass) StepSeed(s *op.Scope, stream string) tf.Output {
	key := op.Const(s.SubScope("stream"), mix(p.vars.seed, streamID(p.name+"/"+stream)))
	return op.Pack(s.SubScope("seed"), []tf.Output{key, p.step})
}

// mix is SplitMix64's finaliser over the run seed and a stream id.
func mix(seed, stream int64) int64 {
	z := uint64(seed) ^ uint64(stream)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64((z ^ (z >> 31)) >> 1)
}

// Ctx is where a layer is built: the op scope, the pass, and the variable path.
type Ctx struct {
	Scope *op.Scope
	Pass  *Pass
	Path  string // variable names start with it, e.g. "discriminator/conv1"
}

// NewCtx returns a context that names variables under path.
func NewCtx(s *op.Scope, pass *Pass, path string) Ctx {
	return Ctx{Scope: s, Pass: pass, Path: path}
}

// In descends into a named sub-block: ops go to a sub-scope and variables are
// named path/name.
func (c Ctx) In(name string) Ctx {
	path := name
	if c.Path != "" {
		path = c.Path + "/" + name
	}
	return Ctx{Scope: c.Scope.SubScope(name), Pass: c.Pass, Path: path}
}

// Variable returns this pass's read of the variable path/name, creating the
// variable with init on first use.
func (c Ctx) Variable(name string, shape []int64, trainable bool, init Initializer) tf.Output {
	v := c.Pass.vars.Get(c.Path+"/"+name, shape, tf.Float, trainable, init)
	return c.Pass.Read(c.Scope, v)
}

// variable is Variable but also returns the *Variable, for layers that update it.
func (c Ctx) variable(name string, shape []int64, trainable bool, init Initializer) (*Variable, tf.Output) {
	v := c.Pass.vars.Get(c.Path+"/"+name, shape, tf.Float, trainable, init)
	return v, c.Pass.Read(c.Scope, v)
}

// Failed reports whether graph building has already failed; layers then return
// at once, so a network can be built without checking after each layer.
func (c Ctx) Failed() bool { return c.Scope.Err() != nil }

// Fail records a build error (the first one wins) naming this block's path.
func (c Ctx) Fail(format string, args ...any) {
	c.Scope.UpdateErr(checkTag, fmt.Errorf("%s: %s", c.Path, fmt.Sprintf(format, args...)))
}

// checkTag marks errors raised by the kit's own checks, so Err can drop graft's
// "failed to add operation" wording from them.
const checkTag = "shape check"

// Err returns the first error recorded while building through s, tidied for a
// person: graft appends a Go stack trace to scope errors, which Err drops.
func Err(s *op.Scope) error {
	err := s.Err()
	if err == nil {
		return nil
	}
	msg := err.Error()
	if i := strings.Index(msg, " (Stacktrace:"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimPrefix(msg, fmt.Sprintf("failed to add operation %q: ", checkTag))
	msg = strings.Replace(msg, "failed to add operation", "add operation", 1)
	return errors.New(msg)
}

// Shape returns the static shape of x as a slice, -1 for unknown dimensions, or
// nil when even the rank is unknown.
func Shape(x tf.Output) []int64 {
	if x.Op == nil {
		return nil
	}
	dims, err := x.Shape().ToSlice()
	if err != nil {
		return nil
	}
	return dims
}

// FormatShape renders a shape as the seed's tables do: "N x 14 x 14 x 64".
func FormatShape(dims []int64) string {
	if dims == nil {
		return "unknown"
	}
	parts := make([]string, len(dims))
	for i, d := range dims {
		if d < 0 {
			parts[i] = "N"
			if i > 0 {
				parts[i] = "?"
			}
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return strings.Join(parts, " x ")
}

// expectRank checks x's rank and that its non-batch dimensions are known, and
// returns its dimensions.
func (c Ctx) expectRank(what string, x tf.Output, rank int) ([]int64, bool) {
	dims := Shape(x)
	if len(dims) != rank {
		c.Fail("%s needs a rank-%d input, got %s", what, rank, FormatShape(dims))
		return nil, false
	}
	for i, d := range dims[1:] {
		if d < 0 {
			c.Fail("%s needs dimension %d of its input known when the graph is built, got %s", what, i+1, FormatShape(dims))
			return nil, false
		}
	}
	return dims, true
}
