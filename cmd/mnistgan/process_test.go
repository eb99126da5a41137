package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// asMainEnv makes the test binary run as mnistgan itself (see TestMain), so
// the tests can signal and kill a real mnistgan process without building one.
const asMainEnv = "MNISTGAN_TEST_AS_MAIN"

// stuckAfter bounds every wait on a child process, so that a hung child fails
// the test instead of hanging it. It is no measure of speed: the children
// train for seconds.
const stuckAfter = 5 * time.Minute

// child is `mnistgan ARGS...` running in its own process.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string // stdout, line by line, as it arrives
	err  bytes.Buffer
	more chan struct{} // a line arrived, or stdout closed
	done chan struct{} // closed once the process has been waited for
	ws   syscall.WaitStatus
}

// startMnistgan starts mnistgan with args in a child process.
func startMnistgan(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{t: t, more: make(chan struct{}, 1), done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), asMainEnv+"=1")
	// A test binary that dies (a timeout's panic) takes its children along.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd.Stderr = &lockedWriter{mu: &c.mu, w: &c.err}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start mnistgan %v: %v", args, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.out = append(c.out, sc.Text())
			c.mu.Unlock()
			c.poke()
		}
		c.cmd.Wait()
		c.ws = c.cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(c.done)
		c.poke()
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

func (c *child) poke() {
	select {
	case c.more <- struct{}{}:
	default:
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// stdout is everything the child printed so far.
func (c *child) stdout() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.out, "\n") + "\n"
}

// stderr is what the child wrote to stderr, without TensorFlow's own log
// lines (see tfLogLine).
func (c *child) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(strings.TrimRight(c.err.String(), "\n"), "\n") {
		if line != "" && !tfLogLine(line) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// tfLogLine recognizes what libtensorflow 2.18 logs on stderr by itself
// through absl, whatever TF_CPP_MIN_LOG_LEVEL says: "WARNING: All log
// messages before absl::InitializeLog() is called are written to STDERR" and
// "I0000 00:00:... mlir_graph_optimization_pass.cc:401] MLIR V1 optimization
// pass is not enabled".
func tfLogLine(line string) bool {
	return strings.HasPrefix(line, "WARNING: All log messages before absl::InitializeLog()") ||
		(len(line) > 5 && strings.ContainsRune("IWE", rune(line[0])) && strings.HasPrefix(line[1:5], "0000") && strings.Contains(line, ".cc:"))
}

// waitLine waits for a stdout line containing s and returns it.
func (c *child) waitLine(s string) string {
	c.t.Helper()
	deadline := time.After(stuckAfter)
	for seen := 0; ; {
		c.mu.Lock()
		lines := c.out[seen:]
		seen = len(c.out)
		c.mu.Unlock()
		for _, line := range lines {
			if strings.Contains(line, s) {
				return line
			}
		}
		select {
		case <-c.more:
		case <-c.done:
			c.mu.Lock()
			n := len(c.out)
			c.mu.Unlock()
			if n == seen {
				c.t.Fatalf("mnistgan ended without printing %q; stdout:\n%s\nstderr:\n%s", s, c.stdout(), c.stderr())
			}
		case <-deadline:
			c.t.Fatalf("mnistgan printed no %q in %v; stdout:\n%s", s, stuckAfter, c.stdout())
		}
	}
}

// killWhen polls cond every millisecond and sends SIGKILL the moment it
// holds. It fails the test if the child ends first.
func (c *child) killWhen(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(stuckAfter)
	for !cond() {
		select {
		case <-c.done:
			c.t.Fatalf("mnistgan ended before %s; stdout:\n%s\nstderr:\n%s", what, c.stdout(), c.stderr())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s in %v", what, stuckAfter)
		}
		time.Sleep(time.Millisecond)
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	if ws := c.wait(); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("mnistgan ended before SIGKILL at %s (status %v); stdout:\n%s", what, ws, c.stdout())
	}
}

// wait waits for the child to end and returns its status.
func (c *child) wait() syscall.WaitStatus {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(stuckAfter):
		c.t.Fatalf("mnistgan still running after %v; stdout:\n%s", stuckAfter, c.stdout())
	}
	return c.ws
}
