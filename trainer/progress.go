package trainer

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Metrics are the four numbers the seed reports for each step, and the
// learning rates the step's two updates used.
type Metrics struct {
	DLoss, DAcc, GLoss, GAcc float32
	DLR, GLR                 float32
}

// progress prints training progress: on a terminal, one line rewritten in place
// every step; otherwise (a log file, a pipe) a plain line every `every` steps.
type progress struct {
	w        io.Writer
	live     bool
	every    int
	total    int
	start    time.Time
	rate     float64 // steps per second, smoothed
	lastStep int
	lastTime time.Time
	lineLen  int
}

func newProgress(w io.Writer, total, every, firstStep int, now time.Time) *progress {
	return &progress{w: w, live: isTerminal(w), every: max(every, 1), total: total,
		start: now, lastStep: firstStep, lastTime: now}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// step reports that step (1-based count of steps done) finished with m.
func (p *progress) step(done int, m Metrics, now time.Time) {
	p.stepText(done, fmt.Sprintf("d_loss %.4f  d_acc %.3f  g_loss %.4f  g_acc %.3f", m.DLoss, m.DAcc, m.GLoss, m.GAcc), now)
}

// stepText reports that step done finished, with its figures as text.
func (p *progress) stepText(done int, figures string, now time.Time) {
	if dt := now.Sub(p.lastTime).Seconds(); dt > 0 && done > p.lastStep {
		r := float64(done-p.lastStep) / dt
		if p.rate == 0 {
			p.rate = r
		} else {
			p.rate = 0.8*p.rate + 0.2*r // smooth out a noisy, shared machine
		}
	}
	p.lastStep, p.lastTime = done, now
	if !p.live && !p.due(done) {
		return
	}
	line := fmt.Sprintf("step %*d/%d  %s  %s  ETA %s",
		len(fmt.Sprint(p.total)), done, p.total, figures, p.formatRate(), p.eta(done))
	if p.live {
		pad := ""
		if n := p.lineLen - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprintf(p.w, "\r%s%s", line, pad)
		p.lineLen = len(line)
		return
	}
	fmt.Fprintf(p.w, "%s  elapsed %s\n", line, formatDuration(now.Sub(p.start)))
}

// resume restarts the rate's clock after work that was not training (an
// evaluation), so it does not count as a slow step.
func (p *progress) resume(now time.Time) { p.lastTime = now }

// due reports whether step done gets a progress line in a log (and its
// scalars in the TensorBoard log): every `every` steps, and the last.
func (p *progress) due(done int) bool { return done%p.every == 0 || done == p.total }

// stepsPerSecond is the smoothed training speed, 0 before the first step.
func (p *progress) stepsPerSecond() float64 { return p.rate }

// note prints a message (a checkpoint, a sample grid) without breaking the live line.
func (p *progress) note(format string, args ...any) {
	if p.live && p.lineLen > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.lineLen)+"\r")
		p.lineLen = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// finish ends the live line.
func (p *progress) finish() {
	if p.live && p.lineLen > 0 {
		fmt.Fprintln(p.w)
		p.lineLen = 0
	}
}

func (p *progress) formatRate() string {
	switch {
	case p.rate == 0:
		return "-- steps/s"
	case p.rate < 1:
		return fmt.Sprintf("%.1f s/step", 1/p.rate)
	default:
		return fmt.Sprintf("%.2f steps/s", p.rate)
	}
}

func (p *progress) eta(done int) string {
	if p.rate == 0 {
		return "--"
	}
	return formatDuration(time.Duration(float64(p.total-done) / p.rate * float64(time.Second)))
}

// formatDuration prints 1h02m, 3m05s or 42s.
func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}
