package trainer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A run killed at any moment (SIGKILL, a power cut) leaves its run directory
// consistent (every file is written beside its name and renamed into place)
// but may leave the temporaries of what it was writing:
//
//	checkpoints/.ckpt-00000500.tmp/   a checkpoint being written
//	checkpoints/.ckpt-00000500.old/   a checkpoint moved aside to be replaced
//	checkpoints/.ckpt-00000500.del/   an old checkpoint being deleted (--keep)
//	.run.json.tmp-123, samples/.step-00000500.png.tmp-123, checkpoints/.latest.tmp-123
//	                                  files of writeFileAtomic
//
// recoverStale clears them when the run starts again.

// lockFile is held (flock) by the process training in a run directory, so
// that a second `mnistgan train` there, which would clear the first one's
// temporaries and write the same checkpoints, is refused. The kernel drops
// the lock when the process dies, however it dies.
const lockFile = ".lock"

// lockRun takes the run directory's lock, creating dir if need be. The lock
// lasts until the returned file is closed or the process ends.
func lockRun(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--out %s: cannot create the run directory: %w", dir, plainError(err))
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--out %s: cannot create %s: %w", dir, path, plainError(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("--out %s is in use by another mnistgan train (%s); wait for it to end or stop it first", dir, lockHolder(path))
		}
		return nil, fmt.Errorf("--out %s: lock %s: %w", dir, path, err)
	}
	// The pid is for the message above only; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func lockHolder(path string) string {
	data, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(data)); err == nil && pid != "" {
		return "pid " + pid
	}
	return "pid unknown"
}

// recoverStale clears the temporaries a killed run left in runDir and returns
// what it did, one line per item. A checkpoint moved aside to be replaced,
// whose replacement never landed, is moved back: it is complete.
func recoverStale(runDir string) ([]string, error) {
	var did []string
	for _, sub := range []string{"", samplesDir, checkpointsDir} {
		dir := filepath.Join(runDir, sub)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return did, fmt.Errorf("clean up %s: %w", dir, err)
		}
		for _, e := range entries {
			name := e.Name()
			path := filepath.Join(dir, name)
			switch {
			case !strings.HasPrefix(name, ".") || name == lockFile:
				continue
			case sub == checkpointsDir && e.IsDir() && strings.HasPrefix(name, "."+ckptPrefix) && strings.HasSuffix(name, oldSuffix):
				final := filepath.Join(dir, strings.TrimSuffix(strings.TrimPrefix(name, "."), oldSuffix))
				if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) {
					if err := os.Rename(path, final); err != nil {
						return did, fmt.Errorf("restore %s: %w", final, err)
					}
					did = append(did, "restored "+final+" (moved aside when the run stopped)")
					continue
				}
				fallthrough
			case sub == checkpointsDir && e.IsDir() && strings.HasPrefix(name, "."+ckptPrefix) &&
				(strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, oldSuffix) || strings.HasSuffix(name, delSuffix)):
				if err := os.RemoveAll(path); err != nil {
					return did, fmt.Errorf("clean up %s: %w", path, err)
				}
				did = append(did, "removed "+path)
			case !e.IsDir() && strings.Contains(name, tmpSuffix+"-"):
				if err := os.Remove(path); err != nil {
					return did, fmt.Errorf("clean up %s: %w", path, err)
				}
				did = append(did, "removed "+path)
			}
		}
	}
	return did, nil
}

// syncFile flushes a file's data to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// isNoSpace reports whether err, possibly a TensorFlow status turned into
// text, means a full disk (or quota).
func isNoSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "disk quota exceeded")
}

// plainError drops the path of an *fs.PathError, for messages that name the
// file themselves (and would otherwise name a temporary one twice).
func plainError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError // a rename's: it names the temporary file
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
