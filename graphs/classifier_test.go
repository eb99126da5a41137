package graphs

import (
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/tfops"
)

func TestClassifierGraphsShareVariableNames(t *testing.T) {
	opt, err := tfops.NewOptimizer(tfops.Adam, 1e-3, 0)
	if err != nil {
		t.Fatal(err)
	}
	train, err := NewClassifierTraining(ClassifierConfig{Batch: 8, Examples: 20, Seed: 1, Optimizer: opt})
	if err != nil {
		t.Fatal(err)
	}
	inf, err := NewClassifierInference()
	if err != nil {
		t.Fatal(err)
	}
	// The training graph saves exactly the network's variables, which the
	// inference graph restores: no optimizer slots, no data.
	want := tfops.Names(inf.Vars)
	got := tfops.Names(train.Saver.Variables())
	if len(got) != len(want) || len(want) != 8 {
		t.Fatalf("training saver holds %v, inference graph %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("variable %d: training %s, inference %s", i, got[i], want[i])
		}
	}
	// Inference is deterministic: no dropout, so no random op but the
	// initializers (which a restore replaces).
	for _, o := range inf.Graph.Operations() {
		if o.Type() == "StatelessRandomUniform" && !strings.Contains(o.Name(), "/initial_value/") {
			t.Errorf("inference graph has a random op %s", o.Name())
		}
	}
	for key, o := range map[string]tf.Output{"probabilities": inf.Probabilities, "features": inf.Features} {
		if o.Op.Name() != "classify/"+key {
			t.Errorf("%s tensor is %s, want classify/%s", key, o.Op.Name(), key)
		}
	}
}

func TestNewClassifierTrainingRefusesEmptySizes(t *testing.T) {
	opt, _ := tfops.NewOptimizer(tfops.Adam, 1e-3, 0)
	if _, err := NewClassifierTraining(ClassifierConfig{Batch: 0, Examples: 20, Optimizer: opt}); err == nil {
		t.Error("batch 0 accepted")
	}
}
