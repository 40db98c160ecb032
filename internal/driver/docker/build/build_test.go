package build_test

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver/docker/build"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestTree checks what goes into a runtime image, without a daemon: the
// interpreter and the dynamic loader by their host paths (symlinks kept),
// /bin/sh, the stdlib without tests or site-packages, and a content hash
// that does not change while the host's files do not.
func TestTree(t *testing.T) {
	// A guard against a hang, not a claim: collecting a tree runs ldd on
	// every library, which a loaded 2-core machine has taken a minute for.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	in, _ := runtime.FindInterpreters(ctx, os.LookupEnv)
	if in.Path(runtime.Python) == "" || in.Path(runtime.NodeJS) == "" {
		testenv.Require(t, "python3 and node", fmt.Errorf("found %+v", in))
	}
	for _, c := range []struct {
		rt, exe, link string
	}{
		{runtime.Python, in.Path(runtime.Python), "/usr/local/bin/python3"},
		{runtime.NodeJS, in.Path(runtime.NodeJS), "/usr/local/bin/node"},
	} {
		t.Run(c.rt, func(t *testing.T) {
			tr, err := build.Tree(ctx, c.rt, in)
			if err != nil {
				t.Fatal(err)
			}
			must := []string{c.exe, "/etc/passwd", "/tmp", "/var/task", "/var/runtime", "/var/nimbus"}
			for _, p := range must {
				if tr.Entry(p) == nil {
					t.Errorf("%s is missing", p)
				}
			}
			if e := tr.Entry("/tmp"); e == nil || e.Mode != 0o1777 {
				t.Errorf("/tmp: %+v, want mode 1777", e)
			}
			// The files behind symlinks are there, the symlinks too.
			for _, p := range []string{c.exe, "/bin/sh"} {
				real, err := filepath.EvalSymlinks(p)
				if err != nil {
					t.Fatal(err)
				}
				if e := tr.Entry(real); e == nil || e.Type != tar.TypeReg || e.Mode&0o111 == 0 {
					t.Errorf("%s (%s): entry %+v, want an executable file", p, real, e)
				}
			}
			if c.link != c.exe {
				if e := tr.Entry(c.link); e == nil || e.Type != tar.TypeSymlink || e.Link != c.exe {
					t.Errorf("%s: %+v, want a symlink to %s", c.link, e, c.exe)
				}
			}
			loader := false
			for _, p := range tr.Paths() {
				e := tr.Entry(p)
				if strings.Contains(filepath.Base(p), "ld-linux") && e.Type == tar.TypeReg {
					loader = true
				}
				if c.rt == runtime.Python && (strings.Contains(p, "/site-packages/") || strings.HasSuffix(p, "/test/__init__.py")) {
					t.Errorf("%s should be left out", p)
				}
				if e.Type == tar.TypeDir && e.Mode != 0o755 && p != "/tmp" {
					t.Errorf("directory %s mode %o", p, e.Mode)
				}
			}
			if !loader {
				t.Error("no dynamic loader")
			}
			if c.rt == runtime.Python {
				found := false
				for _, p := range tr.Paths() {
					found = found || strings.HasSuffix(p, "/json/__init__.py")
				}
				if !found {
					t.Error("the stdlib's json package is missing")
				}
			}
			again, err := build.Tree(ctx, c.rt, in)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := tr.Hash(c.rt), again.Hash(c.rt); a != b {
				t.Errorf("hashes %s and %s for the same files", a, b)
			}
		})
	}
}
