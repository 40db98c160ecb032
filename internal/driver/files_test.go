package driver_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

func TestWriteFilesStaysInItsDirectory(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "task")
	if err := driver.WriteFiles(dir, map[string]string{"main.py": "x = 1\n", "lib/deep/util.py": "y = 2\n"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "lib/deep/util.py")); err != nil || string(b) != "y = 2\n" {
		t.Fatalf("util.py: %q %v", b, err)
	}
	// A symlink inside the directory that leads out of it.
	if err := os.Symlink(base, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../outside.py", "/abs/outside.py", "link/outside.py", "lib/../../outside.py"} {
		if err := driver.WriteFiles(dir, map[string]string{name: "escaped"}); err == nil {
			t.Errorf("%q: written, want an error", name)
		}
	}
	for _, p := range []string{filepath.Join(base, "outside.py"), "/abs/outside.py"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written outside the directory", p)
		}
	}
}
