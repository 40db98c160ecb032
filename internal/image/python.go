package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path"
	"strings"
)

// PythonLayout is where an interpreter keeps its standard library.
type PythonLayout struct {
	Stdlib     string // sysconfig's stdlib: the pure-Python modules
	Platstdlib string // platstdlib: the same directory on most systems
	Dynload    string // lib-dynload, the extension modules (DESTSHARED)
	CacheTag   string // "cpython-311": the bytecode this interpreter loads
}

// Roots returns the layout's distinct directories.
func (l PythonLayout) Roots() []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range []string{l.Stdlib, l.Platstdlib, l.Dynload} {
		if d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

const pythonProbe = `import json, sys, sysconfig
dyn = sysconfig.get_config_var("DESTSHARED") or next((p for p in sys.path if p.endswith("lib-dynload")), "")
print(json.dumps({
    "stdlib": sysconfig.get_path("stdlib"),
    "platstdlib": sysconfig.get_path("platstdlib"),
    "dynload": dyn,
    "tag": sys.implementation.cache_tag or "",
}))`

// ProbePython asks the interpreter exe where its standard library is.
func ProbePython(ctx context.Context, exe string) (PythonLayout, error) {
	out, err := exec.CommandContext(ctx, exe, "-I", "-c", pythonProbe).Output()
	if err != nil {
		return PythonLayout{}, fmt.Errorf("ask %s for its paths: %w", exe, err)
	}
	var p struct{ Stdlib, Platstdlib, Dynload, Tag string }
	if err := json.Unmarshal(out, &p); err != nil {
		return PythonLayout{}, fmt.Errorf("ask %s for its paths: %w", exe, err)
	}
	return PythonLayout{Stdlib: p.Stdlib, Platstdlib: p.Platstdlib, Dynload: p.Dynload, CacheTag: p.Tag}, nil
}

// droppedDirs are standard-library directories left out wherever they
// are: tests, third-party packages, GUI toolkits and the IDE, installers,
// the 2to3 converter and the interactive help's texts.
var droppedDirs = map[string]bool{
	"test": true, "tests": true, "idle_test": true,
	"site-packages": true, "dist-packages": true,
	"idlelib": true, "tkinter": true, "turtledemo": true,
	"ensurepip": true, "lib2to3": true, "pydoc_data": true,
}

// droppedExtensions are prefixes of extension modules that exist only for
// CPython's own tests, or need Tk and X11, which images do not hold.
var droppedExtensions = []string{"_test", "_ctypes_test", "_xxtestfuzz", "xxlimited", "_tkinter"}

// SkipStdlib is the one filter of the Python standard library, for every
// image: it reports whether the file or directory rel (slash-separated,
// relative to a standard-library root such as /usr/lib/python3.11) is
// left out. cacheTag is the interpreter's sys.implementation.cache_tag;
// bytecode for another tag is left out ("" keeps all plain bytecode).
//
// Left out: test packages wherever they are (test/, tests/, idle_test/),
// site-packages and dist-packages (functions bring their own packages in
// their files, as on Lambda and in the official slim images), tkinter,
// idlelib, turtledemo, ensurepip, lib2to3 and pydoc_data (no display, no
// pip, no interactive help in a function), the build directory config-*
// (static library and Makefile; sysconfig reads _sysconfigdata instead),
// static archives, optimised (-O, -OO) bytecode, which the interpreter
// never loads, and the test-only extension modules. Everything else, all
// a handler can import, stays.
func SkipStdlib(rel string, isDir bool, cacheTag string) bool {
	name := path.Base(rel)
	if isDir {
		if droppedDirs[name] {
			return true
		}
		return strings.HasPrefix(name, "config-") && !strings.Contains(rel, "/")
	}
	switch {
	case strings.HasSuffix(name, ".a"):
		return true
	case strings.HasSuffix(name, ".pyc"):
		if strings.HasSuffix(name, ".opt-1.pyc") || strings.HasSuffix(name, ".opt-2.pyc") {
			return true
		}
		return cacheTag != "" && !strings.HasSuffix(name, "."+cacheTag+".pyc")
	case isSharedObject(name):
		for _, p := range droppedExtensions {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
	}
	return false
}

// isSharedObject reports whether a file name is a shared object's:
// "_ssl.cpython-311-x86_64-linux-gnu.so", "libz.so.1".
func isSharedObject(name string) bool {
	return strings.HasSuffix(name, ".so") || strings.Contains(name, ".so.")
}

// AddPython adds the interpreter exe, its standard library less what
// SkipStdlib leaves out, and the shared libraries of its extension
// modules.
func (t *Tree) AddPython(ctx context.Context, exe string) error {
	layout, err := ProbePython(ctx, exe)
	if err != nil {
		return err
	}
	if err := t.AddBinary(ctx, exe); err != nil {
		return err
	}
	skip := func(rel string, isDir bool) bool { return SkipStdlib(rel, isDir, layout.CacheTag) }
	var sos []string
	for _, dir := range layout.Roots() {
		found, err := t.AddDir(dir, skip)
		if err != nil {
			return err
		}
		sos = append(sos, found...)
	}
	return t.AddLibs(ctx, sos...)
}
