package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/image"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// hostTree is a small tree of host files: a directory with a file and a
// relative symlink, reached through a symlinked directory.
func hostTree(t *testing.T) (tr *image.Tree, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "real", "sub", "f.txt"), []byte("content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f.txt", filepath.Join(dir, "real", "sub", "g.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "via")); err != nil {
		t.Fatal(err)
	}
	tr = image.NewTree()
	if _, err := tr.AddDir(filepath.Join(dir, "via", "sub"), nil); err != nil {
		t.Fatal(err)
	}
	tr.Gen("/etc/generated", "hello\n")
	tr.Mkdir("/tmp")
	tr.Chmod("/tmp", 0o1777)
	return tr, dir
}

func TestTreeAdd(t *testing.T) {
	tr, dir := hostTree(t)
	for p, want := range map[string]byte{
		filepath.Join(dir, "via"):                  tar.TypeSymlink,
		filepath.Join(dir, "real"):                 tar.TypeDir,
		filepath.Join(dir, "real", "sub", "f.txt"): tar.TypeReg,
		filepath.Join(dir, "real", "sub", "g.txt"): tar.TypeSymlink,
		"/etc":           tar.TypeDir,
		"/etc/generated": tar.TypeReg,
	} {
		if e := tr.Entry(p); e == nil || e.Type != want {
			t.Errorf("%s: %+v, want type %c", p, e, want)
		}
	}
	// Readable by anyone, writable by its owner only.
	if e := tr.Entry(filepath.Join(dir, "real", "sub", "f.txt")); e.Mode != 0o644 {
		t.Errorf("mode %o, want 644", e.Mode)
	}
}

func TestTreeWriteTar(t *testing.T) {
	tr, dir := hostTree(t)
	var buf bytes.Buffer
	if err := tr.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	r := tar.NewReader(&buf)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		got[h.Name] = string(h.Typeflag) + ":" + h.Linkname + string(b)
	}
	rel := strings.TrimPrefix(dir, "/")
	for name, want := range map[string]string{
		rel + "/real/sub/f.txt": "0:content",
		rel + "/real/sub/g.txt": "2:f.txt",
		rel + "/via":            "2:real",
		"etc/generated":         "0:hello\n",
		"tmp/":                  "5:",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
}

func TestTreeStage(t *testing.T) {
	tr, dir := hostTree(t)
	stage := t.TempDir()
	if err := tr.Stage(stage); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(stage, dir, "via", "sub", "g.txt")); err != nil || string(b) != "content" {
		t.Errorf("through the symlinks: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(stage, "etc", "generated")); err != nil || string(b) != "hello\n" {
		t.Errorf("generated: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(stage, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("/tmp: %v, %v", st.Mode(), err)
	}
}

// TestCollect checks what both drivers' images start from: the
// interpreter and its libraries, the filtered stdlib, a stable hash.
func TestCollect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, _ := runtime.FindInterpreters(ctx, os.LookupEnv)
	if in.Path(runtime.Python) == "" {
		testenv.Require(t, "python3", fmt.Errorf("found %+v", in))
	}
	tr, err := image.Collect(ctx, runtime.Python, in)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := image.ProbePython(ctx, in.Path(runtime.Python))
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(in.Path(runtime.Python))
	for _, p := range []string{in.Path(runtime.Python), real, filepath.Join(layout.Stdlib, "json", "__init__.py"), filepath.Join(layout.Stdlib, "os.py")} {
		if e := tr.Entry(p); e == nil {
			t.Errorf("%s is missing", p)
		}
	}
	loader, ssl := false, false
	for _, p := range tr.Paths() {
		base := filepath.Base(p)
		loader = loader || strings.HasPrefix(base, "ld-linux")
		ssl = ssl || strings.HasPrefix(base, "libssl.so")
		if rel, ok := strings.CutPrefix(p, layout.Stdlib+"/"); ok {
			e := tr.Entry(p)
			if image.SkipStdlib(rel, e.Type == tar.TypeDir, layout.CacheTag) {
				t.Errorf("%s is in, the filter leaves it out", p)
			}
		}
	}
	if !loader {
		t.Error("no dynamic loader")
	}
	if !ssl {
		t.Error("no libssl: the libraries of the extension modules are missing")
	}
	if _, err := image.Collect(ctx, "cobol", in); err == nil {
		t.Error("an unknown runtime was collected")
	}
	again, err := image.Collect(ctx, runtime.Python, in)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := tr.Hash("x"), again.Hash("x"); a != b {
		t.Errorf("hashes %s and %s for the same files", a, b)
	}
}
