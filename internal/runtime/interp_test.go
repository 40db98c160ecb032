package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// realExecutable fails unless path is a binary, not a script.
func realExecutable(t *testing.T, path string) {
	t.Helper()
	if !filepath.IsAbs(path) {
		t.Errorf("%s is not absolute", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := f.Read(head); err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(head, []byte("#!")) {
		t.Errorf("%s is a script", path)
	}
	if !bytes.Equal(head, []byte("\x7fELF")) && !bytes.Equal(head, []byte{0xcf, 0xfa, 0xed, 0xfe}) {
		t.Errorf("%s starts %q: not an executable binary", path, head)
	}
}

func TestFindInterpreters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, errs := runtime.FindInterpreters(ctx, os.LookupEnv)
	want := 0 // the runtimes with an interpreter (provided has none)
	for _, r := range runtime.All() {
		if r.Command != "" {
			want++
		}
	}
	if want != 2 {
		t.Fatalf("%d runtimes with an interpreter, want 2 (python, nodejs)", want)
	}
	if len(in) != want {
		testenv.Require(t, "python3 and node", fmt.Errorf("found %+v: %v", in, errs))
	}
	version := regexp.MustCompile(`^\d+\.\d+\.\d+`)
	for rt, i := range in {
		realExecutable(t, i.Path)
		if !version.MatchString(i.Version) {
			t.Errorf("%s version %q", rt, i.Version)
		}
	}
	t.Logf("%+v, errors %v", in, errs)
}

// fakeEnv is a lookup function over env, and this process's environment
// for what env does not name if inherit is set.
func fakeEnv(env map[string]string, inherit bool) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if inherit {
			return os.LookupEnv(k)
		}
		return "", false
	}
}

func TestFindInterpretersOverridesAndMissing(t *testing.T) {
	ctx := context.Background()
	real, errs := runtime.FindInterpreters(ctx, os.LookupEnv)
	py, node := real.Path(runtime.Python), real.Path(runtime.NodeJS)
	if py == "" || node == "" {
		testenv.Require(t, "python3 and node", fmt.Errorf("found %+v: %v", real, errs))
	}
	empty := t.TempDir()
	tests := []struct {
		name       string
		env        map[string]string
		inherit    bool
		wantPython string
		wantNode   string
		wantErrs   int
	}{
		{"overrides", map[string]string{"PATH": empty, runtime.EnvPython: py, runtime.EnvNode: node}, false, py, node, 0},
		{"nothing in PATH", map[string]string{"PATH": empty}, false, "", "", 2},
		{"python only", map[string]string{"PATH": empty, runtime.EnvPython: py}, false, py, "", 1},
		{"bad override", map[string]string{runtime.EnvNode: "/nonexistent/node"}, true, py, "", 1},
		{"override not an interpreter", map[string]string{"PATH": empty, runtime.EnvPython: "/bin/true"}, false, "", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, errs := runtime.FindInterpreters(ctx, fakeEnv(tt.env, tt.inherit))
			if in.Path(runtime.Python) != tt.wantPython || in.Path(runtime.NodeJS) != tt.wantNode {
				t.Errorf("found %+v, want python %q node %q", in, tt.wantPython, tt.wantNode)
			}
			if (in.Path(runtime.Python) == "") != (in.Version(runtime.Python) == "") || (in.Path(runtime.NodeJS) == "") != (in.Version(runtime.NodeJS) == "") {
				t.Errorf("paths and versions disagree: %+v", in)
			}
			if len(errs) != tt.wantErrs {
				t.Errorf("errors %v, want %d", errs, tt.wantErrs)
			}
		})
	}
}
