package trainer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/tfops"
)

// A run directory keeps its checkpoints as
//
//	checkpoints/ckpt-00000500/variables.index
//	checkpoints/ckpt-00000500/variables.data-00000-of-00001
//	checkpoints/ckpt-00000500/state.json
//	checkpoints/latest                    (the name of the newest complete one)
//
// Each is written in a hidden directory beside its final name and renamed into
// place when complete; `latest` is replaced atomically afterwards. A crash at
// any moment leaves `latest` naming a complete checkpoint.
const (
	checkpointsDir = "checkpoints"
	latestFile     = "latest"
	stateFile      = "state.json"
	variablesName  = "variables" // the tensor-bundle prefix inside a checkpoint
	ckptPrefix     = "ckpt-"
)

// State is what a checkpoint records beside the variables.
type State struct {
	Step int   `json:"step"` // steps completed
	Seed int64 `json:"seed"`
	// RNG describes the random state. Every random draw is TensorFlow's stateless
	// Philox generator keyed on (seed, stream, step), so the state is the step.
	RNG   string    `json:"rng"`
	Saved time.Time `json:"saved"`
}

func rngDescription(seed int64, step int) string {
	return fmt.Sprintf("stateless-philox seed=%d next_step=%d", seed, step)
}

// Checkpoint is a complete checkpoint on disk.
type Checkpoint struct {
	Dir   string
	State State
}

// VariablesPrefix is the tensor-bundle prefix of the checkpoint's variables.
func (c Checkpoint) VariablesPrefix() string { return filepath.Join(c.Dir, variablesName) }

// saveCheckpoint writes the session's variables and state under runDir, keeps
// the newest keep checkpoints (0 keeps all) and returns the new one.
func saveCheckpoint(runDir string, sess *tf.Session, saver *tfops.Saver, state State, keep int) (Checkpoint, error) {
	dir := filepath.Join(runDir, checkpointsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Checkpoint{}, fmt.Errorf("create %s: %w", dir, err)
	}
	name := fmt.Sprintf("%s%08d", ckptPrefix, state.Step)
	final := filepath.Join(dir, name)
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return Checkpoint{}, fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return Checkpoint{}, fmt.Errorf("create %s: %w", tmp, err)
	}
	fail := func(err error) (Checkpoint, error) {
		os.RemoveAll(tmp)
		return Checkpoint{}, fmt.Errorf("checkpoint step %d: %w", state.Step, err)
	}
	if err := saver.Save(sess, filepath.Join(tmp, variablesName)); err != nil {
		return fail(err)
	}
	if err := writeJSONAtomic(filepath.Join(tmp, stateFile), state); err != nil {
		return fail(err)
	}
	// Re-saving a step (a resumed run reaching a step it had saved before):
	// move the old copy aside first, as a directory cannot be renamed over.
	old := ""
	if _, err := os.Stat(final); err == nil {
		old = filepath.Join(dir, "."+name+".old")
		os.RemoveAll(old)
		if err := os.Rename(final, old); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, latestFile), []byte(name+"\n")); err != nil {
		return fail(err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	if keep > 0 {
		if err := pruneCheckpoints(dir, name, keep); err != nil {
			return Checkpoint{}, err
		}
	}
	return Checkpoint{Dir: final, State: state}, nil
}

// pruneCheckpoints deletes all but the newest keep checkpoints, never current.
func pruneCheckpoints(dir, current string, keep int) error {
	names, err := checkpointNames(dir)
	if err != nil {
		return err
	}
	for i := 0; i < len(names)-keep; i++ {
		if names[i] == current {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, names[i])); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
	}
	return nil
}

// checkpointNames lists ckpt-* directories, oldest first (names sort by step).
func checkpointNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ckptPrefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// ErrNoCheckpoint means a run directory holds no complete checkpoint.
var ErrNoCheckpoint = errors.New("no checkpoint")

// LatestCheckpoint finds the newest complete checkpoint of the run in runDir:
// the one `latest` names, or, should that file be missing or name something
// incomplete, the newest complete ckpt-* directory.
func LatestCheckpoint(runDir string) (Checkpoint, error) {
	dir := filepath.Join(runDir, checkpointsDir)
	if data, err := os.ReadFile(filepath.Join(dir, latestFile)); err == nil {
		if c, err := OpenCheckpoint(filepath.Join(dir, strings.TrimSpace(string(data)))); err == nil {
			return c, nil
		}
	}
	names, err := checkpointNames(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Checkpoint{}, fmt.Errorf("%w in %s", ErrNoCheckpoint, runDir)
		}
		return Checkpoint{}, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		if c, err := OpenCheckpoint(filepath.Join(dir, names[i])); err == nil {
			return c, nil
		}
	}
	return Checkpoint{}, fmt.Errorf("%w in %s", ErrNoCheckpoint, dir)
}

// OpenCheckpoint reads the state of the checkpoint in dir and checks that its
// variable files are there.
func OpenCheckpoint(dir string) (Checkpoint, error) {
	var st State
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	for _, f := range []string{variablesName + ".index", variablesName + ".data-00000-of-00001"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return Checkpoint{}, fmt.Errorf("checkpoint %s is incomplete: %w", dir, err)
		}
	}
	return Checkpoint{Dir: dir, State: st}, nil
}
