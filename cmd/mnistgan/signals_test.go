package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	summarypb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	eventpb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"

	"github.com/mnistgan/mnistgan/tblog"
	"github.com/mnistgan/mnistgan/trainer"
)

func TestSIGINTAndSIGTERMFinishTheStepSaveAndSayHowToResume(t *testing.T) {
	data := smallData(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGINT, "SIGINT", 130}, {syscall.SIGTERM, "SIGTERM", 143}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			c := startMnistgan(t, "train", "--out", dir, "--data", data, "--subset", "256", "--batch", "4", "--steps", "100000",
				"--sample-every", "0", "--checkpoint-every", "0", "--histogram-every", "0", "--threads", "1")
			c.waitLine(progress(3, 100000))
			c.cmd.Process.Signal(tc.sig)
			if ws := c.wait(); !ws.Exited() || ws.ExitStatus() != tc.code {
				t.Fatalf("status %v, want exit %d; stdout:\n%s\nstderr:\n%s", ws, tc.code, c.stdout(), c.stderr())
			}
			out, errOut := c.stdout(), c.stderr()
			m := regexp.MustCompile(`(?m)^stopped after step (\d+) of 100000\.$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("stdout does not say where the run stopped:\n%s", out)
			}
			n, _ := strconv.Atoi(m[1])
			if n < 3 {
				t.Fatalf("stopped after step %d, before the step 3 it had finished", n)
			}
			ckpt := filepath.Join(dir, "checkpoints", fmt.Sprintf("ckpt-%08d", n))
			grid := filepath.Join(dir, "samples", fmt.Sprintf("step-%08d.png", n))
			for _, want := range []string{
				"checkpoint: " + ckpt, "samples:    " + grid, "TensorBoard log: " + filepath.Join(dir, "logs"),
				"resume with: mnistgan train --out " + dir + " --resume",
			} {
				if !strings.Contains(out, want+"\n") {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			lines := strings.Split(errOut, "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "mnistgan: "+tc.name+" received; finishing this step") ||
				lines[1] != fmt.Sprintf("mnistgan: interrupted by %s at step %d", tc.name, n) {
				t.Errorf("stderr:\n%s\nwant the notice of %s, then one line saying it interrupted step %d", errOut, tc.name, n)
			}

			if c, err := trainer.LatestCheckpoint(dir); err != nil || c.Dir != ckpt || c.State.Step != n {
				t.Errorf("latest checkpoint %s at step %d (%v), want %s", c.Dir, c.State.Step, err, ckpt)
			}
			if _, err := os.Stat(grid); err != nil {
				t.Errorf("no final grid: %v", err)
			}
			// The log is flushed: the last step's scalars, the grid and the
			// weights' histograms are in it, and the scalars are the
			// printed ones.
			printed := regexp.MustCompile(`(?m)^` + progress(n, 100000) + `  d_loss (\S+)`).FindStringSubmatch(out)
			if printed == nil {
				t.Fatalf("no progress line for step %d:\n%s", n, out)
			}
			ev := logByStep(t, filepath.Join(dir, "logs"))
			if got, ok := ev.scalar(n, "d_loss"); !ok || fmt.Sprintf("%.4f", got) != printed[1] {
				t.Errorf("logged d_loss at step %d: %v (%v), printed %s", n, got, ok, printed[1])
			}
			if !ev.has(n, "samples") || !ev.has(n, "discriminator/conv1/kernel") {
				t.Errorf("the log lacks the grid or the histograms of step %d: %v", n, ev.tags[n])
			}

			// And it resumes from there.
			code, out, errOut := mnistgan(t, "train", "--out", dir, "--resume", "--steps", strconv.Itoa(n+1))
			if code != 0 || !strings.Contains(out, fmt.Sprintf("resuming %s from step %d\n", dir, n)) || !strings.Contains(out, fmt.Sprintf("done: %d steps", n+1)) {
				t.Errorf("resume: exit %d, %s\n%s", code, errOut, out)
			}
		})
	}
}

func TestSIGKILLAtAnyMomentLosesNoCompleteCheckpoint(t *testing.T) {
	data := smallData(t)
	base := t.TempDir()
	const steps, every = 12, 2
	newRun := func(dir string) []string {
		return []string{"train", "--out", dir, "--data", data, "--subset", "256", "--batch", "4", "--threads", "1",
			"--steps", strconv.Itoa(steps), "--checkpoint-every", strconv.Itoa(every), "--sample-every", strconv.Itoa(every), "--keep", "2"}
	}

	t.Run("before the first checkpoint is complete", func(t *testing.T) {
		dir := filepath.Join(base, "first")
		c := startMnistgan(t, newRun(dir)...)
		c.killWhen("the first checkpoint's write", hasEntries(filepath.Join(dir, "checkpoints", ".ckpt-00000002.tmp")))
		if _, err := trainer.LatestCheckpoint(dir); !errors.Is(err, trainer.ErrNoCheckpoint) {
			t.Fatalf("LatestCheckpoint of a run killed before its first checkpoint: %v, want ErrNoCheckpoint", err)
		}
		code, _, errOut := mnistgan(t, "train", "--out", dir, "--resume")
		want := fmt.Sprintf("mnistgan: --resume: no checkpoint in %s (the run stopped before writing its first); start it again: delete %s, or choose another --out, and drop --resume\n", dir, dir)
		if code == 0 || errOut != want {
			t.Errorf("resume: exit %d, stderr\n%s\nwant\n%s", code, errOut, want)
		}
	})

	dir := filepath.Join(base, "run")
	ckpts := filepath.Join(dir, "checkpoints")
	ckpt := func(step int) string { return filepath.Join(ckpts, fmt.Sprintf("ckpt-%08d", step)) }
	tmpOf := func(step int) string { return filepath.Join(ckpts, fmt.Sprintf(".ckpt-%08d.tmp", step)) }
	var bundleSize int64 // of every checkpoint: the same variables
	// survived checks what a kill left and returns the step a resume must
	// start from.
	survived := func(what string) int {
		t.Helper()
		c, err := trainer.LatestCheckpoint(dir)
		if err != nil {
			t.Fatalf("after a kill %s: %v", what, err)
		}
		names, _ := filepath.Glob(filepath.Join(ckpts, "ckpt-*"))
		for _, name := range names {
			oc, err := trainer.OpenCheckpoint(name)
			if err != nil {
				t.Fatalf("after a kill %s: %s is visible but not complete: %v", what, name, err)
			}
			st, err := os.Stat(oc.VariablesPrefix() + ".data-00000-of-00001")
			if err != nil {
				t.Fatal(err)
			}
			if bundleSize == 0 {
				bundleSize = st.Size()
			}
			if st.Size() != bundleSize || filepath.Base(name) != fmt.Sprintf("ckpt-%08d", oc.State.Step) || oc.State.Step > c.State.Step {
				t.Fatalf("after a kill %s: %s holds %d bytes of variables at step %d (others %d bytes; latest step %d)", what, name, st.Size(), oc.State.Step, bundleSize, c.State.Step)
			}
		}
		// The index may lag behind a checkpoint renamed into place just
		// before the kill, but never names a missing or partial one.
		idx, err := os.ReadFile(filepath.Join(ckpts, "latest"))
		if err != nil {
			t.Fatalf("after a kill %s: %v", what, err)
		}
		if named, err := trainer.OpenCheckpoint(filepath.Join(ckpts, strings.TrimSpace(string(idx)))); err != nil || named.State.Step > c.State.Step {
			t.Fatalf("after a kill %s: latest names %q: %v", what, idx, err)
		}
		return c.State.Step
	}
	resume := func(from int) *child {
		t.Helper()
		c := startMnistgan(t, "train", "--out", dir, "--resume")
		if line, want := c.waitLine("resuming "), fmt.Sprintf("resuming %s from step %d", dir, from); line != want {
			t.Fatalf("%q, want %q: the resumed run must start from the last complete checkpoint", line, want)
		}
		return c
	}
	midWrite := 0 // kills that landed inside a checkpoint's write

	// A: inside the write of the second checkpoint.
	c := startMnistgan(t, newRun(dir)...)
	c.killWhen("the write of ckpt-4", hasEntries(tmpOf(4)))
	if exists(tmpOf(4))() {
		midWrite++
	}
	from := survived("inside the write of ckpt-4")

	// B: in the middle of a step between checkpoints.
	c = resume(from)
	c.killWhen("a step", c.printed(progress(from+1, steps)))
	if got := survived("in a step"); got != from {
		t.Fatalf("a kill between checkpoints moved the latest checkpoint from %d to %d", from, got)
	}

	// C: the moment a checkpoint is renamed into place, maybe before
	// `latest` names it: it is complete, so it is the one to resume.
	c = resume(from)
	c.killWhen("the rename of a checkpoint", exists(ckpt(from+every)))
	if got := survived("at a rename"); got != from+every {
		t.Fatalf("killed once %s existed, the latest checkpoint is at step %d", ckpt(from+every), got)
	}
	from += every

	// D: while the program starts (libtensorflow, the data, the graph).
	c = startMnistgan(t, "train", "--out", dir, "--resume")
	c.killWhen("start-up", after(700*time.Millisecond))
	if got := survived("at start-up"); got != from {
		t.Fatalf("a kill at start-up moved the latest checkpoint from %d to %d", from, got)
	}

	// E: after the restore, before the first step.
	c = resume(from)
	c.killWhen("the first step", c.printed("TensorBoard log: "))
	if got := survived("before the first step"); got != from {
		t.Fatalf("a kill before the first step moved the latest checkpoint from %d to %d", from, got)
	}

	// F: inside a checkpoint's write, again.
	c = resume(from)
	c.killWhen("a checkpoint's write", hasEntries(tmpOf(from+every)))
	if exists(tmpOf(from + every))() {
		midWrite++
	}
	from = survived("inside a checkpoint's write")

	// G: just after a sample grid, before its step's checkpoint.
	c = resume(from)
	c.killWhen("a grid", c.printed(fmt.Sprintf("step %d: samples written", from+every)))
	from = survived("after a grid")

	// And the run finishes, leaving nothing half-written behind.
	c = resume(from)
	if ws := c.wait(); !ws.Exited() || ws.ExitStatus() != 0 || !strings.Contains(c.stdout(), fmt.Sprintf("done: %d steps", steps)) {
		t.Fatalf("final resume: status %v\n%s\n%s", ws, c.stdout(), c.stderr())
	}
	if got := survived("never"); got != steps {
		t.Errorf("finished with the latest checkpoint at step %d, want %d", got, steps)
	}
	if midWrite == 0 {
		t.Errorf("no kill landed inside a checkpoint's write (each saw its temporary directory, but the write had ended by the kill)")
	}
	for sub, want := range map[string][]string{
		"":            {".lock", "checkpoints", "logs", "run.json", "samples"},
		"checkpoints": {fmt.Sprintf("ckpt-%08d", steps-every), fmt.Sprintf("ckpt-%08d", steps), "latest"},
	} {
		if got := dirNames(t, filepath.Join(dir, sub)); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s holds %v, want %v", filepath.Join(dir, sub), got, want)
		}
	}
	for _, name := range dirNames(t, filepath.Join(dir, "samples")) {
		if strings.HasPrefix(name, ".") {
			t.Errorf("samples/%s was left behind", name)
		}
	}
	// Every step is in the TensorBoard log, whichever session logged it.
	ev := logByStep(t, filepath.Join(dir, "logs"))
	for step := 1; step <= steps; step++ {
		if _, ok := ev.scalar(step, "d_loss"); !ok {
			t.Errorf("the TensorBoard log lacks step %d", step)
		}
	}
}

// progress is how a progress line starts in a log: "step     3/100000".
func progress(step, steps int) string {
	return fmt.Sprintf("step %*d/%d", len(strconv.Itoa(steps)), step, steps)
}

// printed reports whether the child has printed a line containing s.
func (c *child) printed(s string) func() bool {
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, line := range c.out {
			if strings.Contains(line, s) {
				return true
			}
		}
		return false
	}
}

// after holds once d has passed.
func after(d time.Duration) func() bool {
	at := time.Now().Add(d)
	return func() bool { return time.Now().After(at) }
}

func exists(path string) func() bool {
	return func() bool {
		_, err := os.Stat(path)
		return err == nil
	}
}

// hasEntries reports whether dir exists and holds something: a checkpoint's
// temporary directory once TensorFlow has started writing into it.
func hasEntries(dir string) func() bool {
	return func() bool {
		entries, err := os.ReadDir(dir)
		return err == nil && len(entries) > 0
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// stepEvents is a TensorBoard log by step: the tags logged at each step and
// the last value of each scalar.
type stepEvents struct {
	tags    map[int][]string
	scalars map[int]map[string]float32
}

// logByStep reads every event file in dir. A file that ends inside a record
// (its writer was killed mid-write) counts up to that record, as for
// TensorBoard.
func logByStep(t *testing.T, dir string) stepEvents {
	t.Helper()
	files, err := tblog.Files(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("no TensorBoard log in %s: %v", dir, err)
	}
	ev := stepEvents{tags: map[int][]string{}, scalars: map[int]map[string]float32{}}
	for _, f := range files {
		events, err := tblog.Read(f)
		if err != nil && !errors.Is(err, tblog.ErrTruncated) {
			t.Fatalf("read %s: %v", f, err)
		}
		for _, e := range events {
			ev.add(e)
		}
	}
	return ev
}

func (ev stepEvents) add(e *eventpb.Event) {
	step := int(e.Step)
	for _, v := range e.GetSummary().GetValue() {
		ev.tags[step] = append(ev.tags[step], v.Tag)
		if _, ok := v.Value.(*summarypb.Summary_Value_SimpleValue); ok {
			if ev.scalars[step] == nil {
				ev.scalars[step] = map[string]float32{}
			}
			ev.scalars[step][v.Tag] = v.GetSimpleValue()
		}
	}
}

func (ev stepEvents) scalar(step int, tag string) (float32, bool) {
	v, ok := ev.scalars[step][tag]
	return v, ok
}

func (ev stepEvents) has(step int, tag string) bool {
	for _, got := range ev.tags[step] {
		if got == tag {
			return true
		}
	}
	return false
}
