package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/cli"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// PackDir gives the bytes the server stores for the same tree (it packs an
// upload with build.Pack once unpacked), so that deploy can compare code by
// its SHA-256; what .nimbusignore, .git and the spec name stay out.
func TestPackDirIsTheServersCanonicalZip(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"main.py": "def handler(e, c):\n    return 1\n", "lib/util.py": "X = 1\n", "data/blob.bin": "\x00\xff",
		"run.sh": "#!/bin/sh\n", ".nimbusignore": "*.log\n/secret/\n", "debug.log": "x", "secret/key": "k",
		".git/HEAD": "ref", "nimbus.yaml": "functions: []\n",
	})
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib/util.py", filepath.Join(dir, "link.py")); err != nil {
		t.Fatal(err)
	}
	p, err := cli.PackDir(dir, filepath.Join(dir, "nimbus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range p.Manifest.Files {
		paths = append(paths, f.Path)
	}
	want := []string{"data/blob.bin", "lib/util.py", "link.py", "main.py", "run.sh"}
	if !slices.Equal(paths, want) {
		t.Fatalf("packed %v, want %v", paths, want)
	}

	// The server's copy: the zip unpacked, then packed by build.Pack.
	srv := t.TempDir()
	if _, err := build.Unpack(bytes.NewReader(p.Zip), srv, build.Limits{}); err != nil {
		t.Fatalf("the server would refuse the zip: %v", err)
	}
	var again bytes.Buffer
	m, err := build.Pack(srv, &again)
	if err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != p.Manifest.SHA256 || !bytes.Equal(again.Bytes(), p.Zip) {
		t.Errorf("the server's canonical zip has sha256 %s, PackDir's %s", m.SHA256, p.Manifest.SHA256)
	}
}

func TestPackDirRefusesAnEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{".nimbusignore": "*\n", "a.py": "x"})
	if _, err := cli.PackDir(dir); err == nil {
		t.Error("PackDir of a directory whose every file is ignored succeeded")
	}
}

// .gitignore is honoured as .nimbusignore is, and .nimbusignore, read
// after it, can re-include what it leaves out.
func TestPackDirHonoursGitignore(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"main.py": "x = 1\n", ".gitignore": "__pycache__/\n*.pyc\nvendor/\n.env\n", ".nimbusignore": "!vendor/\n",
		"__pycache__/main.cpython-311.pyc": "b", "old.pyc": "b", "vendor/lib.py": "y = 2\n", ".env": "SECRET=1\n",
	})
	p, err := cli.PackDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range p.Manifest.Files {
		paths = append(paths, f.Path)
	}
	if want := []string{".gitignore", "main.py", "vendor/lib.py"}; !slices.Equal(paths, want) {
		t.Fatalf("packed %v, want %v", paths, want)
	}
}
