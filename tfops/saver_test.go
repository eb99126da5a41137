package tfops

import (
	"math"
	"reflect"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

func TestSaverNamesTheVariablesHoldingNaNOrInf(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	root := op.NewScope()
	vars := NewVars(root, 1)
	vars.Get("net/ok", []int64{2}, tf.Float, true, constInit([]float32{1, -2}))
	vars.Get("net/nan", []int64{3}, tf.Float, true, constInit([]float32{0, nan, 1}))
	vars.Get("net/step", nil, tf.Int64, false, func(s *op.Scope, _ []int64, _ tf.Output) tf.Output {
		return op.Const(s, int64(7)) // not a float: never reported
	})
	vars.Get("net/inf", []int64{2, 2}, tf.Float, false, constInit([]float32{1, 2, 3, inf}))
	saver, err := NewSaver(root, vars.All())
	if err != nil {
		t.Fatal(err)
	}
	sess := newTestSession(t, root)
	if _, err := sess.Run(nil, nil, InitOps(vars.All())); err != nil {
		t.Fatal(err)
	}
	bad, err := saver.NonFinite(sess)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"net/nan", "net/inf"}; !reflect.DeepEqual(bad, want) {
		t.Errorf("NonFinite = %v, want %v", bad, want)
	}
}
