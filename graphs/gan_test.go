package graphs

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
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
	sess, err := tfops.NewSession(gan.Graph, tfops.SessionConfig{CPUOnly: true})
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
	gan, sess := newTestGAN(t)
	step, _ := tf.NewTensor(int64(0))
	feeds := map[tf.Output]*tf.Tensor{gan.Step: step}

	snapshot := func() map[string]*tf.Tensor {
		v, err := gan.Saver.Values(sess)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// The adversarial update: the discriminator must be bit-identical after it.
	before := snapshot()
	if _, err := sess.Run(feeds, nil, []*tf.Operation{gan.GTrain}); err != nil {
		t.Fatal(err)
	}
	diff := changed(t, before, snapshot())
	for _, v := range gan.DVars {
		if diff[v.Name] {
			t.Errorf("adversarial update changed discriminator variable %s", v.Name)
		}
	}
	for _, v := range gan.GVars {
		// Every generator variable moves: weights by the optimizer, moving
		// statistics by the batch-norm updates.
		if !diff[v.Name] {
			t.Errorf("adversarial update left generator variable %s unchanged", v.Name)
		}
	}
	if !diff["optimizer/adversarial/iterations"] || diff["optimizer/discriminator/iterations"] {
		t.Error("adversarial update should count its own iterations only")
	}

	// The discriminator update: the generator must be bit-identical after it.
	before = snapshot()
	if _, err := sess.Run(feeds, nil, []*tf.Operation{gan.DTrain}); err != nil {
		t.Fatal(err)
	}
	diff = changed(t, before, snapshot())
	for _, v := range gan.GVars {
		if diff[v.Name] {
			t.Errorf("discriminator update changed generator variable %s", v.Name)
		}
	}
	for _, v := range gan.DVars {
		if !diff[v.Name] {
			t.Errorf("discriminator update left discriminator variable %s unchanged", v.Name)
		}
	}
	if len(gan.DVars) != 10 || len(gan.GVars) != 26 {
		t.Errorf("%d discriminator and %d generator variables, want 10 and 26", len(gan.DVars), len(gan.GVars))
	}
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
