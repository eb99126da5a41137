package graphs

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	summarypb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/mnistgan/mnistgan/tfops"
)

// newTestGAN builds a small GAN over random images and initialises it.
func newTestGAN(t *testing.T) (*GAN, *tf.Session) {
	t.Helper()
	d, _ := tfops.NewOptimizer(tfops.RMSprop, 2e-4, 6e-8)
	g, _ := tfops.NewOptimizer(tfops.RMSprop, 1e-4, 3e-8)
	const examples = 32
	gan, err := NewGAN(GANConfig{Batch: 4, Examples: examples, Seed: 3, D: d, G: g, Device: "/device:CPU:0", SampleSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Single-threaded kernels: two sessions doing the same work agree bit for bit.
	sess, err := tfops.NewSession(gan.Graph, tfops.SessionConfig{CPUOnly: true, IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	pixels := make([]byte, examples*ImageSide*ImageSide)
	for i := range pixels {
		pixels[i] = byte(rng.IntN(256))
	}
	data, _ := tf.NewTensor(pixels)
	if err := data.Reshape([]int64{examples, ImageSide, ImageSide, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Run(map[tf.Output]*tf.Tensor{gan.Data: data}, nil, append(gan.Init, gan.LoadData)); err != nil {
		t.Fatal(err)
	}
	return gan, sess
}

// changed lists which variables differ, bit for bit, between two snapshots.
func changed(t *testing.T, before, after map[string]*tf.Tensor) map[string]bool {
	t.Helper()
	out := make(map[string]bool)
	for name, b := range before {
		var bb, ab bytes.Buffer
		if _, err := b.WriteContentsTo(&bb); err != nil {
			t.Fatal(err)
		}
		if _, err := after[name].WriteContentsTo(&ab); err != nil {
			t.Fatal(err)
		}
		out[name] = !bytes.Equal(bb.Bytes(), ab.Bytes())
	}
	return out
}

func TestEachUpdateChangesOnlyItsNetwork(t *testing.T) {
	step, _ := tf.NewTensor(int64(0))
	snapshot := func(gan *GAN, sess *tf.Session) map[string]*tf.Tensor {
		v, err := gan.Saver.Values(sess)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Two identical graphs from the same seed: one runs the discriminator
	// update alone, the other the whole step (that update, then the adversarial
	// one). What the second half of the step changed is their difference.
	dOnly, dSess := newTestGAN(t)
	both, bothSess := newTestGAN(t)
	initial := snapshot(dOnly, dSess)
	if diff := changed(t, initial, snapshot(both, bothSess)); len(trueKeys(diff)) > 0 {
		t.Fatalf("two graphs from one seed start apart: %v", trueKeys(diff))
	}
	if _, err := dSess.Run(map[tf.Output]*tf.Tensor{dOnly.Step: step}, nil, []*tf.Operation{dOnly.DTrain}); err != nil {
		t.Fatal(err)
	}
	if _, err := bothSess.Run(map[tf.Output]*tf.Tensor{both.Step: step}, nil, []*tf.Operation{both.Train}); err != nil {
		t.Fatal(err)
	}
	afterD, afterStep := snapshot(dOnly, dSess), snapshot(both, bothSess)

	// The discriminator update moves every discriminator variable and leaves
	// the generator bit-identical.
	diff := changed(t, initial, afterD)
	for _, v := range dOnly.DVars {
		if !diff[v.Name] {
			t.Errorf("discriminator update left discriminator variable %s unchanged", v.Name)
		}
	}
	for _, v := range dOnly.GVars {
		if diff[v.Name] {
			t.Errorf("discriminator update changed generator variable %s", v.Name)
		}
	}
	// The adversarial update leaves the discriminator bit-identical and moves
	// every generator variable: weights by the optimizer, moving statistics by
	// the batch-norm updates.
	diff = changed(t, afterD, afterStep)
	for _, v := range both.DVars {
		if diff[v.Name] {
			t.Errorf("adversarial update changed discriminator variable %s", v.Name)
		}
	}
	for _, v := range both.GVars {
		if !diff[v.Name] {
			t.Errorf("adversarial update left generator variable %s unchanged", v.Name)
		}
	}
	if !diff["optimizer/adversarial/iterations"] || diff["optimizer/discriminator/iterations"] {
		t.Error("adversarial update should count its own iterations only")
	}
	if len(both.DVars) != 10 || len(both.GVars) != 26 {
		t.Errorf("%d discriminator and %d generator variables, want 10 and 26", len(both.DVars), len(both.GVars))
	}
}

// trueKeys lists the names marked true, for messages.
func trueKeys(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	return out
}

func TestGraphUsesTheSeedsNameScopes(t *testing.T) {
	gan, _ := newTestGAN(t)
	seen := map[string]bool{}
	for _, o := range gan.Graph.Operations() {
		seen[strings.SplitN(o.Name(), "/", 2)[0]] = true
	}
	for _, scope := range []string{"discriminator", "generator", "adversarial", "optimizer"} {
		if !seen[scope] {
			t.Errorf("no ops under %s/", scope)
		}
	}
}

func TestSamplesAreReproducible(t *testing.T) {
	gan, sess := newTestGAN(t)
	run := func() []byte {
		out, err := sess.Run(nil, []tf.Output{gan.Samples}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		out[0].WriteContentsTo(&b)
		return b.Bytes()
	}
	if !bytes.Equal(run(), run()) {
		t.Error("two sample runs of the same weights differ: the fixed noise is not fixed")
	}
}

func TestHistogramsCoverEveryTrainableVariable(t *testing.T) {
	gan, sess := newTestGAN(t)
	out, err := sess.Run(nil, []tf.Output{gan.Histograms}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var s summarypb.Summary
	if err := proto.Unmarshal([]byte(out[0].Value().(string)), &s); err != nil {
		t.Fatalf("Histograms is not a serialized Summary: %v", err)
	}
	want := tfops.Trainable(append(append([]*tfops.Variable(nil), gan.DVars...), gan.GVars...))
	if len(s.Value) != len(want) {
		t.Fatalf("%d histograms, want one per trainable variable (%d)", len(s.Value), len(want))
	}
	for i, v := range want {
		got := s.Value[i]
		h := got.GetHisto()
		if got.Tag != v.Name || h == nil {
			t.Errorf("histogram %d: tag %q (histogram %v), want %s", i, got.Tag, h != nil, v.Name)
			continue
		}
		var counted float64
		for _, c := range h.Bucket {
			counted += c
		}
		if h.Num != float64(v.Size()) || counted != h.Num || !(h.Min <= h.Max) {
			t.Errorf("%s: num %v, bucket total %v, min %v, max %v; want %d values", v.Name, h.Num, counted, h.Min, h.Max, v.Size())
		}
	}
	// Kernels start Glorot-uniform: spread out, unlike the zero biases.
	for _, v := range s.Value {
		h := v.GetHisto()
		if strings.HasSuffix(v.Tag, "/kernel") && !(h.Min < 0 && h.Max > 0) {
			t.Errorf("%s: initial kernel in [%v, %v], want values on both sides of 0", v.Tag, h.Min, h.Max)
		}
		if strings.HasSuffix(v.Tag, "/bias") && (h.Min != 0 || h.Max != 0) {
			t.Errorf("%s: initial bias in [%v, %v], want zeros", v.Tag, h.Min, h.Max)
		}
	}
}

func TestAdversarialHalfReadsTheUpdatedDiscriminator(t *testing.T) {
	// In one Session.Run the two updates must happen in the seed's order: every
	// discriminator read of the adversarial pass waits for the discriminator
	// update. Its generator reads do not: nothing writes the generator before
	// the adversarial update itself, and they may overlap the discriminator's.
	gan, _ := newTestGAN(t)
	var buf bytes.Buffer
	if _, err := gan.Graph.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	def := new(graphpb.GraphDef)
	if err := proto.Unmarshal(buf.Bytes(), def); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, n := range def.Node {
		if n.Op != "ReadVariableOp" || !strings.HasPrefix(n.Name, "adversarial/") {
			continue
		}
		reads++
		waits := slices.Contains(n.Input, "^"+gan.DTrain.Name())
		if strings.HasPrefix(n.Name, "adversarial/discriminator/") && !waits {
			t.Errorf("%s does not wait for the discriminator update (inputs %v)", n.Name, n.Input)
		}
		if strings.HasPrefix(n.Name, "adversarial/generator/") && waits {
			t.Errorf("%s waits for the discriminator update, which does not write it", n.Name)
		}
	}
	// All 26 generator variables (the moving statistics too: their updates
	// read them) and all 10 discriminator ones.
	if reads != 36 {
		t.Errorf("%d variable reads in the adversarial pass, want 36", reads)
	}
}
