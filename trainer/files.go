package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced and then renamed over path: a reader (or a crash) sees the old
// file or the new one, never half of either. Errors name path, not the
// temporary file, which is gone by then ("write X: no space left on device").
func writeFileAtomic(path string, data []byte) error {
	tmp, err := stageFile(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp) // best effort: the rename's error is the one to report
		return fmt.Errorf("write %s: %w", path, plainError(err))
	}
	return syncDir(filepath.Dir(path))
}

// stageFile writes data, synced, to a new temporary file beside path and
// returns its name, for the caller to rename over path.
func stageFile(path string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, plainError(err))
	}
	name := tmp.Name()
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(name) // best effort: err is the one to report
		return "", fmt.Errorf("write %s: %w", path, plainError(err))
	}
	// CreateTemp makes the file private; what a run writes is the user's to
	// share, as any file they create (0644, like the checkpoint's bundle).
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	return name, nil
}

// fileSet writes several files all or nothing: each is staged beside its
// target, and only once every one is complete are they renamed into place.
// A failure part-way (a full disk, an unwritable directory) leaves every
// target as it was and removes the directories the set made.
type fileSet struct {
	staged []stagedFile
	made   []string // directories made for the set, parents first
}

type stagedFile struct{ tmp, path string }

// add stages data for path, making path's directory if need be.
func (s *fileSet) add(path string, data []byte) error {
	if err := s.mkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	tmp, err := stageFile(path, data)
	if err != nil {
		return err
	}
	s.staged = append(s.staged, stagedFile{tmp: tmp, path: path})
	return nil
}

// mkdirAll is os.MkdirAll that remembers what it made, for discard.
func (s *fileSet) mkdirAll(dir string) error {
	for _, d := range missingPaths(dir) {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", d, plainError(err))
		}
		s.made = append(s.made, d)
	}
	return nil
}

// missingPaths returns those of paths (and of their parents) that do not
// exist, parents first.
func missingPaths(paths ...string) []string {
	var missing []string
	seen := map[string]bool{}
	for _, path := range paths {
		var chain []string
		for p := filepath.Clean(path); !seen[p]; p = filepath.Dir(p) {
			seen[p] = true
			if _, err := os.Lstat(p); err == nil || filepath.Dir(p) == p {
				break
			}
			chain = append(chain, p)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			missing = append(missing, chain[i])
		}
	}
	return missing
}

// fileExists says whether path names something that exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// commit renames every staged file into place.
func (s *fileSet) commit() error {
	dirs := map[string]struct{}{}
	for i, f := range s.staged {
		if err := os.Rename(f.tmp, f.path); err != nil {
			s.staged = s.staged[i:] // discard removes those not yet renamed
			return fmt.Errorf("write %s: %w", f.path, plainError(err))
		}
		dirs[filepath.Dir(f.path)] = struct{}{}
	}
	s.staged, s.made = nil, nil
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// discard removes what the set staged and made and has not committed. It is
// best effort, after a failure that is the error to report.
func (s *fileSet) discard() {
	for _, f := range s.staged {
		os.Remove(f.tmp)
	}
	for i := len(s.made) - 1; i >= 0; i-- {
		os.Remove(s.made[i]) // only if empty: a directory holding anything stays
	}
	s.staged, s.made = nil, nil
}

// checkCreatable fails unless path could be created, as a file or (dir) a
// directory: it is not the wrong kind of thing already, and the nearest
// directory that exists on its way is writable. It creates nothing, so a
// command that checks its outputs first and then fails leaves no trace.
func checkCreatable(path string, dir bool) error {
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() != dir {
			if dir {
				return fmt.Errorf("%s is a file, not a directory", path)
			}
			return fmt.Errorf("%s is a directory", path)
		}
		if !dir {
			path = filepath.Dir(path)
		}
	} else {
		path = filepath.Dir(path)
	}
	for {
		st, err := os.Stat(path)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", path)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(path) == path {
			return fmt.Errorf("cannot use %s: %w", path, plainError(err))
		}
		path = filepath.Dir(path)
	}
	f, err := os.CreateTemp(path, ".write-check-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", path, plainError(err))
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write in %s: %w", path, err)
	}
	return os.Remove(name)
}

// writeJSONAtomic writes v as indented JSON with writeFileAtomic.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return nil
}

// syncDir flushes a directory's entries, making a rename inside it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// checkWritable creates dir (and its parents) if need be and checks that a
// file can be created in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, plainError(err))
	}
	return checkCreatable(dir, true)
}
