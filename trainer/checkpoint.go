package trainer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
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

	// Hidden names beside a checkpoint: being written, moved aside to be
	// replaced, being deleted. recoverStale clears what a crash leaves.
	tmpSuffix = ".tmp"
	oldSuffix = ".old"
	delSuffix = ".del"
)

// State is what a checkpoint records beside the variables.
type State struct {
	Step int   `json:"step"` // steps completed
	Seed int64 `json:"seed"`
	// RNG describes the random state. Every random draw is TensorFlow's stateless
	// Philox generator keyed on (seed, stream, step), so the state is the step.
	RNG   string    `json:"rng"`
	Saved time.Time `json:"saved"`
	// Bytes are the sizes of the bundle's files as written: a file cut
	// short later is caught on open, even where TensorFlow, reading only
	// some of its tensors (generate, export), would not notice. Absent in
	// checkpoints of earlier versions.
	Bytes map[string]int64 `json:"bytes,omitempty"`
}

func rngDescription(seed int64, step int) string {
	return fmt.Sprintf("stateless-philox seed=%d next_step=%d", seed, step)
}

// Checkpoint is a complete checkpoint on disk.
type Checkpoint struct {
	Dir   string
	State State
	// PassedOver says why LatestCheckpoint skipped newer checkpoints, one
	// line each (damage from outside: a run never names a partial one).
	PassedOver []string
}

// VariablesPrefix is the tensor-bundle prefix of the checkpoint's variables.
func (c Checkpoint) VariablesPrefix() string { return filepath.Join(c.Dir, variablesName) }

// saveCheckpoint writes the session's variables and state under runDir, keeps
// the newest keep checkpoints (0 keeps all) and returns the new one. On error
// nothing of the new checkpoint is left and `latest` still names the previous
// one: a failed save (a full disk) never costs the last good checkpoint.
func saveCheckpoint(runDir string, sess *tf.Session, saver *tfops.Saver, state State, keep int) (Checkpoint, error) {
	dir := filepath.Join(runDir, checkpointsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Checkpoint{}, fmt.Errorf("create %s: %w", dir, err)
	}
	// Weights gone NaN or infinite are never saved: the last good checkpoint
	// must stay the newest, for --resume and LatestCheckpoint to find.
	if bad, err := saver.NonFinite(sess); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint step %d: %w", state.Step, err)
	} else if len(bad) > 0 {
		return Checkpoint{}, fmt.Errorf("%w at step %d: variable %s holds NaN or Inf (%d variables do)", ErrDiverged, state.Step, bad[0], len(bad))
	}
	name := fmt.Sprintf("%s%08d", ckptPrefix, state.Step)
	final := filepath.Join(dir, name)
	tmp := filepath.Join(dir, "."+name+tmpSuffix)
	if err := os.RemoveAll(tmp); err != nil {
		return Checkpoint{}, fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint step %d: create %s: %w", state.Step, tmp, plainError(err))
	}
	fail := func(err error) (Checkpoint, error) {
		os.RemoveAll(tmp)
		return Checkpoint{}, fmt.Errorf("checkpoint step %d: %w", state.Step, err)
	}
	// failWrite reports a failure to write the checkpoint's files under the
	// checkpoint's name: their temporary names are gone with them, and
	// TensorFlow's message names its own temporary file. A full disk becomes
	// ENOSPC, whoever wrote, so that callers can advise.
	failWrite := func(err error) (Checkpoint, error) {
		if isNoSpace(err) {
			err = syscall.ENOSPC
		}
		return fail(fmt.Errorf("write %s: %w", final, plainError(err)))
	}
	prefix := filepath.Join(tmp, variablesName)
	if err := saver.Save(sess, prefix); err != nil {
		if isNoSpace(err) {
			return failWrite(err)
		}
		return fail(err)
	}
	// SaveV2 closes its files but does not sync them: without this a power
	// cut after the rename below could leave a complete-looking checkpoint of
	// empty files.
	state.Bytes = map[string]int64{}
	for _, f := range bundleFiles {
		if err := syncFile(filepath.Join(tmp, f)); err != nil {
			return failWrite(err)
		}
		st, err := os.Stat(filepath.Join(tmp, f))
		if err != nil {
			return failWrite(err)
		}
		state.Bytes[f] = st.Size()
	}
	if err := writeJSONAtomic(filepath.Join(tmp, stateFile), state); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // "write .../state.json: ...": failWrite names the checkpoint
		}
		return failWrite(err)
	}
	// Re-saving a step (a resumed run reaching a step it had saved before):
	// move the old copy aside first, as a directory cannot be renamed over.
	// A crash before the new copy is in place leaves the old one to
	// recoverStale, which moves it back.
	old := ""
	if _, err := os.Stat(final); err == nil {
		old = filepath.Join(dir, "."+name+oldSuffix)
		os.RemoveAll(old)
		if err := os.Rename(final, old); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if old != "" {
			os.Rename(old, final)
		}
		return fail(err)
	}
	// From here an error takes the new checkpoint back out (by renaming it,
	// atomically, to its temporary name), so that what is on disk agrees
	// with the error the run reports.
	undo := func(err error) (Checkpoint, error) {
		os.Rename(final, tmp)
		if old != "" {
			os.Rename(old, final)
		}
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return undo(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, latestFile), []byte(name+"\n")); err != nil {
		return undo(err)
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

// bundleFiles are the files of a checkpoint's tensor bundle.
var bundleFiles = []string{variablesName + ".index", variablesName + ".data-00000-of-00001"}

// pruneCheckpoints deletes all but the newest keep checkpoints, never current.
// Each is renamed to a hidden name before it is deleted, so a crash halfway
// through a deletion leaves no half-deleted checkpoint under a checkpoint's name.
func pruneCheckpoints(dir, current string, keep int) error {
	names, err := checkpointNames(dir)
	if err != nil {
		return err
	}
	for i := 0; i < len(names)-keep; i++ {
		if names[i] == current {
			continue
		}
		doomed := filepath.Join(dir, "."+names[i]+delSuffix)
		if err := os.Rename(filepath.Join(dir, names[i]), doomed); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
		if err := os.RemoveAll(doomed); err != nil {
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

// ErrDamaged marks a checkpoint changed after it was written.
var ErrDamaged = errors.New("is damaged")

// ErrNoCheckpoint means a run directory holds no complete checkpoint.
var ErrNoCheckpoint = errors.New("no checkpoint")

// LatestCheckpoint finds the newest complete checkpoint of the run in runDir.
// That is the one `latest` names, except after a crash between a checkpoint's
// rename into place and the update of `latest`: the checkpoint directory,
// complete before it got its name, is then newer, and resuming from it loses
// less. Hidden (temporary) directories are never candidates.
func LatestCheckpoint(runDir string) (Checkpoint, error) {
	dir := filepath.Join(runDir, checkpointsDir)
	names, err := checkpointNames(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Checkpoint{}, fmt.Errorf("%w in %s", ErrNoCheckpoint, runDir)
		}
		return Checkpoint{}, err
	}
	var passed []string
	for i := len(names) - 1; i >= 0; i-- {
		c, err := OpenCheckpoint(filepath.Join(dir, names[i]))
		if err == nil {
			c.PassedOver = passed
			return c, nil
		}
		passed = append(passed, err.Error())
	}
	if len(passed) > 0 {
		return Checkpoint{PassedOver: passed}, fmt.Errorf("%w in %s that can be used: %s", ErrNoCheckpoint, runDir, strings.Join(passed, "; "))
	}
	return Checkpoint{}, fmt.Errorf("%w in %s", ErrNoCheckpoint, runDir)
}

// OpenCheckpoint reads the state of the checkpoint in dir and checks that its
// variable files are there.
func OpenCheckpoint(dir string) (Checkpoint, error) {
	var st State
	if err := readJSON(filepath.Join(dir, stateFile), &st); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if st.Step < 1 {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %s says step %d; a checkpoint is written after step 1 or later", dir, stateFile, st.Step)
	}
	// The name is the step, as written; a copy under another name is fine.
	if n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), ckptPrefix)); err == nil && strings.HasPrefix(filepath.Base(dir), ckptPrefix) && n != st.Step {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %s says step %d, but the checkpoint is named for step %d (was it edited?)", dir, stateFile, st.Step, n)
	}
	for _, f := range bundleFiles {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return Checkpoint{}, fmt.Errorf("checkpoint %s is incomplete: %w", dir, err)
		}
		if want, ok := st.Bytes[f]; ok && info.Size() != want {
			return Checkpoint{}, fmt.Errorf("checkpoint %s %w: %s has %d bytes, %d when it was written", dir, ErrDamaged, f, info.Size(), want)
		}
	}
	return Checkpoint{Dir: dir, State: st}, nil
}
