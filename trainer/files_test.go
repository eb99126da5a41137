package trainer

import (
	"os"
	"path/filepath"
	"strings"
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

func TestFileSetWritesAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.png")
	if err := os.WriteFile(first, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(dir, "a", "b")
	var files fileSet
	if err := files.add(first, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := files.add(filepath.Join(made, "second.png"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	// Nothing can create a file in /proc: the third fails after two are staged.
	if err := files.add("/proc/third.png", []byte("new")); err == nil || !strings.Contains(err.Error(), "write /proc/third.png") {
		t.Fatalf("staging in /proc: %v, want an error naming the file", err)
	}
	files.discard()
	if got, err := os.ReadFile(first); err != nil || string(got) != "old" {
		t.Errorf("first.png holds %q (%v) after a discarded set, want the old content", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("after discard the directory holds %v (%v), want only first.png", entries, err)
	}

	// And committed, every file is in place.
	files = fileSet{}
	for _, path := range []string{first, filepath.Join(made, "second.png")} {
		if err := files.add(path, []byte("new")); err != nil {
			t.Fatal(err)
		}
	}
	if err := files.commit(); err != nil {
		t.Fatal(err)
	}
	files.discard() // after commit: a no-op
	for _, path := range []string{first, filepath.Join(made, "second.png")} {
		if got, err := os.ReadFile(path); err != nil || string(got) != "new" {
			t.Errorf("%s holds %q (%v), want the new content", path, got, err)
		}
	}
}
