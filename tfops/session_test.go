package tfops

import (
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"
)

// newTestSession finalizes root into a CPU session that the test closes.
func newTestSession(t *testing.T, root *op.Scope) *tf.Session {
	t.Helper()
	g, err := root.Finalize()
	if err != nil {
		t.Fatalf("build: %v", Err(root))
	}
	sess, err := NewSession(g, SessionConfig{CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sess.Close(); err != nil {
			t.Errorf("close session: %v", err)
		}
	})
	return sess
}
