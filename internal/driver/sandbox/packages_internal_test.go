package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

func TestMasks(t *testing.T) {
	bound, elsewhere := t.TempDir(), t.TempDir()
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(bound, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bound, "a/keep.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(bound, "c"), filepath.Join(bound, "link")); err != nil {
		t.Fatal(err)
	}
	p := &rootPlan{
		binds: []bindSpec{{Src: bound, Dst: bound}},
		packages: hostPackages{
			dirs: []string{
				filepath.Join(bound, "a"),
				filepath.Join(bound, "a/b"),     // inside a: a's mask hides it
				filepath.Join(bound, "missing"), // not there (yet)
				filepath.Join(bound, "link"),    // masked where it leads
				elsewhere,                       // not bound: nothing to hide
			},
			keep: []string{filepath.Join(bound, "a/keep.js"), filepath.Join(bound, "c/nothere.js")},
		},
	}
	want := []mask{
		{Path: filepath.Join(bound, "a"), Keep: []string{filepath.Join(bound, "a/keep.js")}},
		{Path: filepath.Join(bound, "c")},
	}
	if got := p.masks(); !reflect.DeepEqual(got, want) {
		t.Errorf("masks %+v, want %+v", got, want)
	}
	// A sandbox built when only a existed gets c's mask when assigned;
	// a's keeps files, and is left to the sandboxes built after it.
	if got := p.lateMasks(nil); !slices.Equal(got, []string{filepath.Join(bound, "c")}) {
		t.Errorf("late masks %q, want only c's", got)
	}
	if err := os.Mkdir(filepath.Join(bound, "missing"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := p.lateMasks([]string{filepath.Join(bound, "c")}); !slices.Equal(got, []string{filepath.Join(bound, "missing")}) {
		t.Errorf("late masks %q, want the directory that appeared", got)
	}
}

// TestFindHostPackages asks this host's interpreters: their own package
// directories are candidates, their standard library and their
// executables' directories never.
func TestFindHostPackages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, _ := runtime.FindInterpreters(ctx, os.LookupEnv)
	py := in.Path(runtime.Python)
	if py == "" || in.Path(runtime.NodeJS) == "" {
		testenv.Require(t, "python3 and node", fmt.Errorf("found %+v", in))
	}
	hp, err := findHostPackages(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-I", "-S", "-c", "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['stdlib'])").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(out))
	purelib, stdlib := resolveParent(lines[0]), lines[1]
	if !slices.Contains(hp.dirs, purelib) {
		t.Errorf("candidates %q lack python's purelib %s", hp.dirs, purelib)
	}
	for _, d := range hp.dirs {
		if within(stdlib, d) {
			t.Errorf("candidate %s holds python's standard library %s", d, stdlib)
		}
		for _, rt := range []string{runtime.Python, runtime.NodeJS} {
			if exe, _ := filepath.EvalSymlinks(in.Path(rt)); within(exe, d) {
				t.Errorf("candidate %s holds the %s interpreter %s", d, rt, exe)
			}
		}
	}
	for _, d := range []string{"/usr/lib/node_modules", "/usr/share/nodejs", "/usr/lib/python3/dist-packages"} {
		if !slices.Contains(hp.dirs, d) {
			t.Errorf("candidates %q lack %s", hp.dirs, d)
		}
	}
}
