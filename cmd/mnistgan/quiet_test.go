//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// withoutVar is env without name.
func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestTensorFlowStaysQuietUnlessAsked runs the test binary as mnistgan with
// TF_CPP_MIN_LOG_LEVEL unset, as a user's shell has it: libtensorflow's
// load-time notices (oneDNN, CPU features) must not come before the one line
// of an error, and a level the user chose must be left alone.
func TestTensorFlowStaysQuietUnlessAsked(t *testing.T) {
	env := withoutVar(os.Environ(), "TF_CPP_MIN_LOG_LEVEL")

	cmd := exec.Command(os.Args[0], "train", "--steps", "0")
	cmd.Env = append(env, asMainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v), want 1; stderr:\n%s", code, err, stderr.String())
	}
	if want := "mnistgan: --steps 0: must be at least 1\n"; stderr.String() != want {
		t.Errorf("stderr is\n%q\nwant exactly\n%q", stderr.String(), want)
	}

	for _, c := range []struct{ env []string }{
		{env},
		{append(env, "TF_CPP_MIN_LOG_LEVEL=0")},
		{append(env, "TF_CPP_MIN_LOG_LEVEL=3")},
	} {
		want := "TF_CPP_MIN_LOG_LEVEL=2\n"
		if user := c.env[len(c.env)-1]; strings.HasPrefix(user, "TF_CPP_MIN_LOG_LEVEL=") {
			want = user + "\n"
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(c.env, asMainEnv+"=log-level")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("run the test binary: %v", err)
		}
		if string(out) != want {
			t.Errorf("the process saw %q, want %q", out, want)
		}
	}
}
