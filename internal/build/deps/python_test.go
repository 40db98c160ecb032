package deps_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/build/deps/depstest"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestPythonRequirements: requirements.txt naming a wheel of the
// find-links directory installs it into the layer's python/, where Python
// imports it; the layer is root's and read-only; a second Build finds it.
func TestPythonRequirements(t *testing.T) {
	wheels := demoWheels(t)
	b := newBuilder(t, runtime.Python, func(c *deps.Config) { c.PipFindLinks = wheels })
	p := plan(t, b, runtime.Python, map[string]string{"requirements.txt": "# the demo\nnimbusdemo==1.0\n", "main.py": "import nimbusdemo\n"}, false)
	if len(p.Key) != 64 || p.Runtime != runtime.Python || p.Files[0] != "requirements.txt" {
		t.Fatalf("plan %+v", p)
	}
	var log logBuffer
	dir, cached, err := b.Build(context.Background(), p, &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if cached || dir != b.Dir(p.Key) {
		t.Errorf("Build = %s, cached %v; want %s built", dir, cached, b.Dir(p.Key))
	}
	if !strings.Contains(log.String(), "nimbusdemo") {
		t.Errorf("log lacks pip's output:\n%s", log.String())
	}
	if got := pythonAnswer(t, depstest.WheelPython, dir); got != "42" {
		t.Errorf("nimbusdemo.answer() = %q, want 42", got)
	}
	assertSealed(t, dir)

	log = logBuffer{}
	dir2, cached, err := b.Build(context.Background(), p, &log)
	if err != nil || !cached || dir2 != dir {
		t.Errorf("second Build = %s, %v, %v; want %s cached", dir2, cached, err, dir)
	}
	if !strings.Contains(log.String(), "cached") || strings.Contains(log.String(), "pip") {
		t.Errorf("second Build's log %q, want it to say cached, and no pip", log.String())
	}
}

// TestPythonPyproject: without requirements.txt, pyproject.toml's
// [project].dependencies are installed, not the project itself.
func TestPythonPyproject(t *testing.T) {
	wheels := demoWheels(t)
	b := newBuilder(t, runtime.Python, func(c *deps.Config) { c.PipFindLinks = wheels })
	p := plan(t, b, runtime.Python, map[string]string{"pyproject.toml": `[project]
name = "my-function"
version = "0.1"
dependencies = ["nimbusdemo>=1.0"]
`}, false)
	dir, _, err := b.Build(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := pythonAnswer(t, depstest.WheelPython, dir); got != "42" {
		t.Errorf("nimbusdemo.answer() = %q, want 42", got)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "python", "my_function*")); len(m) > 0 {
		t.Errorf("the project itself was installed: %v", m)
	}
}

// TestPythonMissingPackage: a requirement no source has fails the build
// with an error naming it and ending with pip's last lines.
func TestPythonMissingPackage(t *testing.T) {
	wheels := demoWheels(t)
	b := newBuilder(t, runtime.Python, func(c *deps.Config) { c.PipFindLinks = wheels })
	p := plan(t, b, runtime.Python, map[string]string{"requirements.txt": "nimbusmissing==1.0\n"}, false)
	var log logBuffer
	_, _, err := b.Build(context.Background(), p, &log)
	be := buildErr(t, err)
	msg := err.Error()
	t.Logf("the error:\n%s", msg)
	for _, want := range []string{"build python layer " + p.Key, "pip exited with status 1", "No matching distribution found for nimbusmissing"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if last := be.Output[len(be.Output)-1]; !strings.HasSuffix(msg, last) {
		t.Errorf("error does not end with the output's last line %q:\n%s", last, msg)
	}
	if len(be.Output) > 20 {
		t.Errorf("%d lines of output kept, want at most 20", len(be.Output))
	}
	if !strings.Contains(log.String(), "nimbusmissing") {
		t.Errorf("log lacks pip's output:\n%s", log.String())
	}
	if _, err := os.Stat(b.Dir(p.Key)); !os.IsNotExist(err) {
		t.Errorf("a failed build left a layer: %v", err)
	}
	assertNoTmp(t, b)
}

// TestPythonWithoutPip: an interpreter without pip fails with the fix.
func TestPythonWithoutPip(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "python3")
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'No module named pip' >&2\nexit 1\n"), 0o755)
	b, err := deps.New(deps.Config{Dir: t.TempDir(), Interpreters: runtime.Interpreters{runtime.Python: {Path: fake, Version: "3.11.0"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := plan(t, b, runtime.Python, map[string]string{"requirements.txt": "nimbusdemo\n"}, false)
	_, _, err = b.Build(context.Background(), p, nil)
	if err == nil || !strings.Contains(err.Error(), "python3 at "+fake+" has no pip: install python3-pip") {
		t.Fatalf("Build: %v, want the missing pip named", err)
	}
}

// assertSealed checks a layer is root's (when the tests are) and
// read-only: directories 0555, files 0444 or 0555.
func assertSealed(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n++
		st := fi.Sys().(*syscall.Stat_t)
		if os.Geteuid() == 0 && (st.Uid != 0 || st.Gid != 0) {
			t.Errorf("%s is owned by %d:%d, want root", p, st.Uid, st.Gid)
		}
		switch m := fi.Mode(); {
		case m&fs.ModeSymlink != 0:
		case m.IsDir() && m.Perm() != 0o555:
			t.Errorf("directory %s has mode %v, want 0555", p, m.Perm())
		case m.IsRegular() && m.Perm() != 0o444 && m.Perm() != 0o555:
			t.Errorf("file %s has mode %v, want 0444 or 0555", p, m.Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("layer %s holds %d entries", dir, n)
	}
}

// assertNoTmp checks no build left anything in the layers' tmp directory.
func assertNoTmp(t *testing.T, b *deps.Builder) {
	t.Helper()
	left, err := os.ReadDir(filepath.Join(filepath.Dir(b.Dir("x")), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("builds left %v in tmp", left)
	}
}

// TestPythonSdist: a source distribution is built only with scripts on,
// and then its build backend's code runs, as the build user; with
// scripts off pip does not take it.
func TestPythonSdist(t *testing.T) {
	interpreters(t, runtime.Python)
	links := sharedDir(t)
	writeSdist(t, filepath.Join(links, "nimbusbuilt-1.0.tar.gz"), map[string]string{
		"PKG-INFO":       "Metadata-Version: 2.1\nName: nimbusbuilt\nVersion: 1.0\n",
		"pyproject.toml": "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
		// A backend of its own: code of the package, run to build it.
		"backend.py": `import os, zipfile
def get_requires_for_build_wheel(config_settings=None):
    return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "nimbusbuilt-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        z.writestr("nimbusbuilt/__init__.py", "built_by = %d\n" % os.getuid())
        z.writestr("nimbusbuilt-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: nimbusbuilt\nVersion: 1.0\n")
        z.writestr("nimbusbuilt-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("nimbusbuilt-1.0.dist-info/RECORD", "")
    return name
`,
	})
	b := newBuilder(t, runtime.Python, func(c *deps.Config) { c.PipFindLinks = links })
	files := map[string]string{"requirements.txt": "nimbusbuilt==1.0\n"}

	_, _, err := b.Build(context.Background(), plan(t, b, runtime.Python, files, false), nil)
	if err == nil || !strings.Contains(err.Error(), "No matching distribution found for nimbusbuilt") {
		t.Errorf("Build without scripts: %v, want no distribution found", err)
	}
	var log logBuffer
	dir, _, err := b.Build(context.Background(), plan(t, b, runtime.Python, files, true), &log)
	if err != nil {
		t.Fatalf("Build with scripts: %v\nlog:\n%s", err, log.String())
	}
	built, err := os.ReadFile(filepath.Join(dir, "python", "nimbusbuilt", "__init__.py"))
	if err != nil {
		t.Fatal(err)
	}
	want := "built_by = " + strconv.Itoa(os.Getuid())
	if os.Geteuid() == 0 {
		want = "built_by = 65534"
	}
	if strings.TrimSpace(string(built)) != want {
		t.Errorf("the backend wrote %q, want %q", built, want)
	}
}

// writeSdist writes a source distribution of files, under its name's
// directory.
func writeSdist(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	top := strings.TrimSuffix(filepath.Base(path), ".tar.gz")
	for name, content := range files {
		hdr := &tar.Header{Name: top + "/" + name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
}
