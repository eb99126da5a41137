package trainer

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomicLeavesAReadableFileAndNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// Not CreateTemp's private 0600: grids and records are for sharing.
		if st.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", st.Mode().Perm())
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want only run.json", entries, err)
	}
}
