package trainer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mnistgan/mnistgan/graphs"
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

	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("--savedmodel %s: cannot create its parent directory: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("--savedmodel %s: cannot write in %s: %w", dir, parent, plainError(err))
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it private
		return fail(fmt.Errorf("--savedmodel %s: %w", dir, err))
	}
	if err := tfops.WriteSavedModel(tmp, inf.Graph, sess, inf.Saver, inf.Signatures()); err != nil {
		return fail(fmt.Errorf("--savedmodel %s: %w", dir, err))
	}
	if err := beforeInstall(tmp); err != nil {
		return fail(fmt.Errorf("--savedmodel %s: %w", dir, err))
	}
	if err := install(tmp, dir, replace); err != nil {
		return fail(fmt.Errorf("--savedmodel %s: %w", dir, err))
	}
	return nil
}

// checkExportTarget refuses a target that must not be overwritten, and reports
// whether an existing model is to be replaced.
func checkExportTarget(dir string, force bool) (replace bool, err error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("--savedmodel %s: cannot write there: %w", dir, plainError(err))
	}
	if !st.IsDir() {
		return false, fmt.Errorf("--savedmodel %s is a file; give a directory path for the model", dir)
	}
	if !force {
		return false, fmt.Errorf("--savedmodel %s already exists; add --force to replace it, or choose another directory", dir)
	}
	// --force replaces a model, never a directory of something else that a
	// mistyped path happens to name.
	if _, err := os.Stat(filepath.Join(dir, tfops.SavedModelFile)); err == nil {
		return true, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("--savedmodel %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("--savedmodel %s exists and is not a SavedModel (no %s); --force replaces only a SavedModel or an empty directory, so move it away or choose another directory", dir, tfops.SavedModelFile)
	}
	return true, nil
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
