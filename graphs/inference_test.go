package graphs

import (
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/tfops"
)

func TestInferenceGraphHoldsJustTheTwoNetworks(t *testing.T) {
	m, err := NewInference()
	if err != nil {
		t.Fatal(err)
	}
	var d, g []*tfops.Variable
	for _, v := range m.Vars {
		switch {
		case strings.HasPrefix(v.Name, "discriminator/"):
			d = append(d, v)
		case strings.HasPrefix(v.Name, "generator/"):
			g = append(g, v)
		default:
			t.Errorf("variable %s belongs to neither network", v.Name)
		}
	}
	if n := tfops.CountParams(d); n != 4_311_553 {
		t.Errorf("discriminator: %d parameters, want 4,311,553", n)
	}
	if n := tfops.CountParams(g); n != 2_394_241 {
		t.Errorf("generator: %d parameters, want 2,394,241", n)
	}
	// Inference mode: no dropout masks drawn and no batch statistics taken.
	for _, o := range m.Graph.Operations() {
		if o.Type() == "FusedBatchNormV3" {
			if training, err := o.Attr("is_training"); err != nil || training != false {
				t.Errorf("%s runs in training mode", o.Name())
			}
		}
		if strings.Contains(o.Name(), "dropout") && o.Type() == "StatelessRandomUniform" {
			t.Errorf("%s draws a dropout mask", o.Name())
		}
	}
}

func TestInferenceSignaturesNameTheirTensors(t *testing.T) {
	m, err := NewInference()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{ // signature -> key -> "op:index shape"
		GenerateSignature: {
			"in:" + NoiseKey:   "z:0 N x 100",
			"out:" + ImagesKey: "generate/images:0 N x 28 x 28 x 1",
		},
		DiscriminateSignature: {
			"in:" + ImagesKey:       "images:0 N x 28 x 28 x 1",
			"out:" + ProbabilityKey: "discriminate/probability:0 N x 1",
		},
	}
	sigs := m.Signatures()
	if len(sigs) != len(want) {
		t.Errorf("%d signatures, want %d", len(sigs), len(want))
	}
	for name, keys := range want {
		sig := sigs[name]
		got := map[string]tf.Output{}
		for k, v := range sig.Inputs {
			got["in:"+k] = v
		}
		for k, v := range sig.Outputs {
			got["out:"+k] = v
		}
		if len(got) != len(keys) {
			t.Errorf("%s has %d tensors, want %d", name, len(got), len(keys))
		}
		for key, w := range keys {
			x, ok := got[key]
			if !ok {
				t.Errorf("%s lacks %s", name, key)
				continue
			}
			desc := x.Op.Name() + ":0 " + tfops.FormatShape(tfops.Shape(x))
			if desc != w || x.DataType() != tf.Float {
				t.Errorf("%s %s is %s (%v), want %s float32", name, key, desc, x.DataType(), w)
			}
		}
	}
}

func TestNoiseIsReproducibleAndUniform(t *testing.T) {
	draw := func(n, seed int64) [][]float32 {
		t.Helper()
		g, z, err := Noise(n, seed)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := tfops.NewSession(g, tfops.SessionConfig{CPUOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		out, err := sess.Run(nil, []tf.Output{z}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out[0].Value().([][]float32)
	}
	a, b, c := draw(64, 3), draw(64, 3), draw(64, 4)
	if len(a) != 64 || len(a[0]) != NoiseDim {
		t.Fatalf("noise is %d x %d, want 64 x %d", len(a), len(a[0]), NoiseDim)
	}
	same, lo, hi := 0, float32(1), float32(-1)
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("seed 3 twice: z[%d][%d] = %g and %g", i, j, a[i][j], b[i][j])
			}
			if a[i][j] == c[i][j] {
				same++
			}
			lo, hi = min(lo, a[i][j]), max(hi, a[i][j])
		}
	}
	if same > 0 {
		t.Errorf("seeds 3 and 4 share %d values", same)
	}
	// 6,400 draws uniform in [-1, 1) reach near both ends.
	if lo < -1 || hi >= 1 || lo > -0.99 || hi < 0.99 {
		t.Errorf("noise spans [%g, %g], want about [-1, 1)", lo, hi)
	}
	if _, _, err := Noise(0, 1); err == nil {
		t.Errorf("noise of 0 vectors: no error")
	}
}
