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

func TestLinkTree(t *testing.T) {
	src := t.TempDir()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"data.bin", all, 0o644},
		{"run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"pkg/deep/mod.py", []byte("x = 1\n"), 0o644},
	} {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("pkg/deep", filepath.Join(src, "deep")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Beside src (hard links), and on another file system (copies) where
	// the machine has one.
	dsts := map[string]string{"same file system": filepath.Join(t.TempDir(), "task")}
	if shm, err := os.MkdirTemp("/dev/shm", "linktree"); err == nil {
		t.Cleanup(func() { os.RemoveAll(shm) })
		dsts["another file system"] = filepath.Join(shm, "task")
	}
	for name, dst := range dsts {
		t.Run(name, func(t *testing.T) {
			if err := driver.LinkTree(src, dst); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "data.bin")); err != nil || string(b) != string(all) {
				t.Errorf("data.bin: %v, %d bytes, want the 256 byte values", err, len(b))
			}
			for f, want := range map[string]os.FileMode{"run.sh": 0o755, "data.bin": 0o644, "pkg/deep/mod.py": 0o644, "empty": 0o755 | os.ModeDir} {
				fi, err := os.Lstat(filepath.Join(dst, f))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (os.ModeType | os.ModePerm); got != want {
					t.Errorf("%s: mode %v, want %v", f, got, want)
				}
			}
			a, _ := os.Stat(filepath.Join(src, "data.bin"))
			b, _ := os.Stat(filepath.Join(dst, "data.bin"))
			if linked := os.SameFile(a, b); linked != (name == "same file system") {
				t.Errorf("data.bin is a hard link to the source's: %v", linked)
			}
			if l, err := os.Readlink(filepath.Join(dst, "deep")); err != nil || l != "pkg/deep" {
				t.Errorf("deep: link %q %v, want pkg/deep", l, err)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "deep/mod.py")); err != nil || string(b) != "x = 1\n" {
				t.Errorf("through the link: %q %v", b, err)
			}
			if err := driver.LinkTree(src, dst); err == nil {
				t.Errorf("a second copy into the same directory: no error, want one (its files exist)")
			}
		})
	}
}
