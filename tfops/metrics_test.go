package tfops

import (
	"math"
	"math/rand/v2"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// runScalar builds f over constants and returns its float64 result.
func runScalar(t *testing.T, f func(s *op.Scope) tf.Output) float64 {
	t.Helper()
	root := op.NewScope()
	out := f(root)
	sess := newTestSession(t, root)
	res, err := sess.Run(nil, []tf.Output{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch v := res[0].Value().(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	}
	t.Fatalf("result is %T", res[0].Value())
	return 0
}

func inceptionScoreOf(t *testing.T, probs [][]float32) float64 {
	return runScalar(t, func(s *op.Scope) tf.Output { return InceptionScore(s, op.Const(s.SubScope("p"), probs)) })
}

func TestInceptionScoreOnHandComputedInputs(t *testing.T) {
	uniform := make([][]float32, 50)
	for i := range uniform {
		uniform[i] = make([]float32, 10)
		for j := range uniform[i] {
			uniform[i][j] = 0.1
		}
	}
	// Every digit surely one class, each class as often: the maximum, 10.
	balanced := make([][]float32, 30)
	for i := range balanced {
		balanced[i] = make([]float32, 10)
		balanced[i][i%10] = 1
	}
	// Sure of one class, but always the same one: no variety, 1.
	collapsed := make([][]float32, 30)
	for i := range collapsed {
		collapsed[i] = make([]float32, 10)
		collapsed[i][3] = 1
	}
	// Two examples, two classes, by hand: p(y) = (0.75, 0.25);
	// KL1 = log(1/0.75); KL2 = 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25).
	kl1 := math.Log(1 / 0.75)
	kl2 := 0.5*math.Log(0.5/0.75) + 0.5*math.Log(0.5/0.25)
	for _, c := range []struct {
		name  string
		probs [][]float32
		want  float64
	}{
		{"uniform", uniform, 1},
		{"one-hot balanced", balanced, 10},
		{"one-hot collapsed", collapsed, 1},
		{"two by hand", [][]float32{{1, 0}, {0.5, 0.5}}, math.Exp((kl1 + kl2) / 2)},
	} {
		if got := inceptionScoreOf(t, c.probs); math.Abs(got-c.want) > 1e-6*c.want {
			t.Errorf("%s: inception score %.9f, want %.9f", c.name, got, c.want)
		}
	}
}

// frechetOf is the Frechet distance between the rows of a and b.
func frechetOf(t *testing.T, a, b [][]float32) float64 {
	return runScalar(t, func(s *op.Scope) tf.Output {
		mu1, cov1 := Moments(s.SubScope("a"), op.Const(s.SubScope("a"), a))
		mu2, cov2 := Moments(s.SubScope("b"), op.Const(s.SubScope("b"), b))
		return FrechetDistance(s, mu1, cov1, mu2, cov2)
	})
}

// moments computes by hand what Moments should: the mean and the covariance
// divided by N-1.
func moments(x [][]float32) ([]float64, [][]float64) {
	n, d := len(x), len(x[0])
	mu := make([]float64, d)
	for _, row := range x {
		for j, v := range row {
			mu[j] += float64(v) / float64(n)
		}
	}
	cov := make([][]float64, d)
	for i := range cov {
		cov[i] = make([]float64, d)
		for j := range cov[i] {
			for _, row := range x {
				cov[i][j] += (float64(row[i]) - mu[i]) * (float64(row[j]) - mu[j]) / float64(n-1)
			}
		}
	}
	return mu, cov
}

func TestFrechetDistanceOnHandComputedInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Correlated 6-dimensional features: a random linear mix of noise.
	mix := make([][]float64, 6)
	for i := range mix {
		mix[i] = make([]float64, 6)
		for j := range mix[i] {
			mix[i][j] = rng.NormFloat64()
		}
	}
	set := make([][]float32, 400)
	for r := range set {
		z := make([]float64, 6)
		for j := range z {
			z[j] = rng.NormFloat64()
		}
		set[r] = make([]float32, 6)
		for i := range set[r] {
			for j := range z {
				set[r][i] += float32(mix[i][j] * z[j])
			}
			set[r][i] += 0.5
		}
	}
	if got := frechetOf(t, set, set); math.Abs(got) > 1e-9 {
		t.Errorf("a set against itself: %g, want 0", got)
	}

	// Twice the set: mean 2mu, covariance 4S, so the distance is
	// |mu|^2 + tr S + 4 tr S - 2 tr(sqrt(4 S^2)) = |mu|^2 + tr S.
	double := make([][]float32, len(set))
	for r, row := range set {
		double[r] = make([]float32, len(row))
		for j, v := range row {
			double[r][j] = 2 * v
		}
	}
	mu, cov := moments(set)
	want := 0.0
	for i := range mu {
		want += mu[i]*mu[i] + cov[i][i]
	}
	if got := frechetOf(t, set, double); math.Abs(got-want) > 1e-5*want {
		t.Errorf("a set against twice itself: %.9f, want %.9f", got, want)
	}

	// Independent coordinates: the distance is the sum over coordinates of
	// (mu1 - mu2)^2 + (sd1 - sd2)^2. a has sd 1 and 2 around (0, 0); b has sd
	// 3 and 2 around (1, -2).
	a := [][]float32{{-1, -2}, {1, -2}, {-1, 2}, {1, 2}}
	b := [][]float32{{-2, -4}, {4, -4}, {-2, 0}, {4, 0}}
	_, ca := moments(a)
	_, cb := moments(b)
	wantAB := 1.0 + 4 + math.Pow(math.Sqrt(ca[0][0])-math.Sqrt(cb[0][0]), 2) + math.Pow(math.Sqrt(ca[1][1])-math.Sqrt(cb[1][1]), 2)
	if got := frechetOf(t, a, b); math.Abs(got-wantAB) > 1e-9 {
		t.Errorf("independent coordinates: %.9f, want %.9f", got, wantAB)
	}
}

func TestClassSharesAndTopConfidence(t *testing.T) {
	probs := [][]float32{{0.9, 0.1, 0}, {0.2, 0.7, 0.1}, {0.6, 0.3, 0.1}, {0.1, 0.1, 0.8}}
	root := op.NewScope()
	p := op.Const(root.SubScope("p"), probs)
	shares := ClassShares(root, p, 3)
	conf := TopConfidence(root, p)
	sess := newTestSession(t, root)
	res, err := sess.Run(nil, []tf.Output{shares, conf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := res[0].Value().([]float32)
	for i, want := range []float32{0.5, 0.25, 0.25} {
		if got[i] != want {
			t.Errorf("share of class %d: %v, want %v", i, got[i], want)
		}
	}
	if c := res[1].Value().(float32); math.Abs(float64(c)-0.75) > 1e-6 {
		t.Errorf("top confidence %v, want 0.75", c)
	}
}
