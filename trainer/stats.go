package trainer

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StepTiming is how long one training step took, and how much of that was
// spent inside the training step's Session.Run (libtensorflow running kernels);
// the rest is Go: feeding, bookkeeping, progress, logging and periodic output.
type StepTiming struct {
	Step int     `json:"step"`
	Wall float64 `json:"wall_seconds"`
	Run  float64 `json:"run_seconds"`
}

// stats is the file --stats writes.
type stats struct {
	Batch   int          `json:"batch"`
	Threads int          `json:"threads"`
	Device  string       `json:"device"`
	Written string       `json:"written"`
	Steps   []StepTiming `json:"steps"`
}

func writeStats(path string, cfg Config, timings []StepTiming) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("--stats %s: %w", path, err)
	}
	return writeJSONAtomic(path, stats{
		Batch: cfg.Batch, Threads: cfg.Threads, Device: cfg.Device,
		Written: time.Now().UTC().Format(time.RFC3339), Steps: timings,
	})
}
