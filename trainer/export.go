package trainer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mnistgan/mnistgan/graphs"
	"github.com/mnistgan/mnistgan/quality"
	"github.com/mnistgan/mnistgan/tfops"
)

// beforeInstall runs on the finished temporary model just before it is renamed
// into place; tests make it fail to show that a failed export leaves nothing.
var beforeInstall = func(tmp string) error { return nil }

// Export writes the networks of ckpt, in inference mode, as a TensorFlow
// SavedModel in dir (see graphs.Inference for its signatures). The model is
// built in a hidden directory beside dir and renamed into place when complete,
// so dir never holds half a model. An existing dir is refused unless force is
// set, and force replaces only a SavedModel or an empty directory.
func Export(ckpt Checkpoint, dir string, force bool) error {
	replace, err := checkExportTarget(dir, force)
	if err != nil {
		return err
	}
	inf, err := graphs.NewInference()
	if err != nil {
		return err
	}
	sess, err := tfops.NewSession(inf.Graph, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return err
	}
	defer sess.Close()
	if err := inf.Saver.Restore(sess, ckpt.VariablesPrefix()); err != nil {
		return fmt.Errorf("checkpoint %s: %w; is it a complete checkpoint of mnistgan train?", ckpt.Dir, err)
	}

	return writeDirAtomic("--savedmodel", dir, replace, func(tmp string) error {
		if err := tfops.WriteSavedModel(tmp, inf.Graph, sess, inf.Saver, inf.Signatures()); err != nil {
			return err
		}
		return beforeInstall(tmp)
	})
}

// checkExportTarget refuses a target that must not be overwritten, and reports
// whether an existing model is to be replaced.
func checkExportTarget(dir string, force bool) (replace bool, err error) {
	return checkDirTarget("--savedmodel", dir, force, tfops.SavedModelFile, "a SavedModel")
}

// checkDirTarget refuses to overwrite dir unless force is set and dir holds
// what marker (a file inside) says it is, or nothing; it reports whether
// something is to be replaced. --force never replaces a directory of
// something else that a mistyped path happens to name.
func checkDirTarget(flag, dir string, force bool, marker, what string) (replace bool, err error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s %s: cannot write there: %w", flag, dir, plainError(err))
	}
	if !st.IsDir() {
		return false, fmt.Errorf("%s %s is a file; give a directory path", flag, dir)
	}
	_, markerErr := os.Stat(filepath.Join(dir, marker))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", flag, dir, err)
	}
	if !force {
		if markerErr == nil {
			return false, fmt.Errorf("%s %s already holds %s; add --force to replace it, or choose another directory", flag, dir, what)
		}
		if len(entries) == 0 {
			return false, fmt.Errorf("%s %s already exists (empty); add --force to use it, or choose another directory", flag, dir)
		}
		return false, fmt.Errorf("%s %s already exists; choose another directory", flag, dir)
	}
	if markerErr != nil && len(entries) > 0 {
		return false, fmt.Errorf("%s %s exists and is not %s (no %s); --force replaces only %s or an empty directory, so move it away or choose another directory", flag, dir, what, marker, what)
	}
	// Replacing swaps the whole directory: anything of the user's in it
	// would go too.
	if other := foreignFile(dir); other != "" {
		return false, fmt.Errorf("%s %s holds %s, which mnistgan did not write; --force would delete it with the old one, so move it away first", flag, dir, other)
	}
	return true, nil
}

// foreignFile names the first thing in the model or classifier directory dir
// that mnistgan does not write there, or returns "".
func foreignFile(dir string) string {
	var found string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		if !ownedPath(filepath.ToSlash(rel), d.IsDir()) {
			found = rel
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil && found == "" {
		return fmt.Sprintf("something unreadable (%v)", plainError(err))
	}
	return found
}

// ownedPath says whether rel, inside a model or classifier directory, is one
// of the files mnistgan writes: the SavedModel's graph and variables, and
// classifier.json.
func ownedPath(rel string, isDir bool) bool {
	switch {
	case rel == tfops.SavedModelFile, rel == quality.InfoFile, rel == "fingerprint.pb":
		return !isDir
	case rel == "variables":
		return isDir
	case strings.HasPrefix(rel, "variables/") && !isDir:
		name := strings.TrimPrefix(rel, "variables/")
		return name == "variables.index" || (strings.HasPrefix(name, "variables.data-") && !strings.Contains(name, "/"))
	}
	return false
}

// writeDirAtomic builds a directory with write in a hidden temporary
// directory beside dir and renames it into place (replacing what is there if
// replace), so dir never holds half of it; on failure nothing is left.
func writeDirAtomic(flag, dir string, replace bool, write func(tmp string) error) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("%s %s: cannot create its parent directory: %w", flag, dir, plainError(err))
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("%s %s: cannot write in %s: %w", flag, dir, parent, plainError(err))
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		// The temporary name means nothing to the user: say dir.
		return fmt.Errorf("%s %s: %w", flag, dir, renamedError{strings.ReplaceAll(err.Error(), tmp, dir), err})
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it private
		return fail(err)
	}
	if err := write(tmp); err != nil {
		return fail(err)
	}
	if err := install(tmp, dir, replace); err != nil {
		return fail(err)
	}
	return nil
}

// install renames the finished model tmp to dir. An old model at dir is moved
// aside first (a directory cannot be renamed over a non-empty one), and put
// back should the new one fail to move in.
func install(tmp, dir string, replace bool) error {
	if !replace {
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
		return syncDir(filepath.Dir(dir))
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("move the old model aside: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if back := os.Rename(old, dir); back != nil {
			return fmt.Errorf("%w; the old model is in %s", err, old)
		}
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// renamedError is err with another message (a path in it replaced), still
// matching what err matches (errors.Is ENOSPC, say).
type renamedError struct {
	msg string
	err error
}

func (e renamedError) Error() string { return e.msg }
func (e renamedError) Unwrap() error { return e.err }
