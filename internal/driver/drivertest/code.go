package drivertest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// Cases of code given as a directory (InstanceSpec.Code) and layers: the
// bytes and modes of the files arrive exactly, the code is read-only, the
// layers are searched, and the host's own packages are not.

// File is a file of a code or layer directory built by a test.
type File struct {
	Data []byte
	Mode os.FileMode // 0 means 0644
}

// Dir writes files (slash-separated paths) into a new directory, readable
// by everyone as the server's code and layer directories are, and returns
// it.
func Dir(t testing.TB, files map[string]File) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, f.Data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask took
			t.Fatal(err)
		}
	}
	return dir
}

// StartSpec starts an instance of spec, failing the test if it does not
// start, and kills it at the end of the test.
func StartSpec(t testing.TB, d driver.Driver, spec driver.InstanceSpec) driver.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	in, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start %s instance: %v", spec.Function.Runtime, err)
	}
	t.Cleanup(func() { stop(in) })
	return in
}

// codeFunction returns a function of runtime rt whose code is a directory
// holding code as the default handler's module, and files.
func codeFunction(t *testing.T, rt, code string, files map[string]File) driver.InstanceSpec {
	t.Helper()
	all := map[string]File{}
	for name, content := range Source(rt, code) {
		all[name] = File{Data: []byte(content)}
	}
	for name, f := range files {
		all[name] = f
	}
	f := Function(t, rt, nil)
	return driver.InstanceSpec{Function: f, Code: Dir(t, all)}
}

// testCode: a code directory holding every byte value and an executable
// script reaches the handler exactly, as its working directory, and the
// handler cannot write into it.
func testCode(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
import hashlib, os
def attempt(f):
    try:
        f()
        return "written"
    except OSError as e:
        return e.strerror or str(e)
def create():
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "nimbus-probe"), "w") as f:
        f.write("x")
def overwrite():
    with open("data.bin", "r+b") as f:
        f.write(b"x")
def handler(event, context):
    with open("data.bin", "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"sha256": digest, "runExecutable": os.access("run.sh", os.X_OK),
            "cwd": os.getcwd(), "taskRoot": os.environ["LAMBDA_TASK_ROOT"],
            "create": attempt(create), "overwrite": attempt(overwrite)}
`,
		runtime.NodeJS: `
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
function attempt(f) {
  try { f(); return 'written'; } catch (e) { return e.code || String(e); }
}
exports.handler = async () => {
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync('data.bin')).digest('hex');
  let runExecutable = true;
  try { fs.accessSync('run.sh', fs.constants.X_OK); } catch { runExecutable = false; }
  return {
    sha256, runExecutable, cwd: process.cwd(), taskRoot: process.env.LAMBDA_TASK_ROOT,
    create: attempt(() => fs.writeFileSync(path.join(process.env.LAMBDA_TASK_ROOT, 'nimbus-probe'), 'x')),
    overwrite: attempt(() => { const fd = fs.openSync('data.bin', 'r+'); fs.closeSync(fd); }),
  };
};
`,
	}[rt]
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	want := sha256.Sum256(all)
	spec := codeFunction(t, rt, code, map[string]File{
		"data.bin": {Data: all},
		"run.sh":   {Data: []byte("#!/bin/sh\necho ran\n"), Mode: 0o755},
	})
	in := StartSpec(t, d, spec)
	got := MustInvoke[struct {
		SHA256        string `json:"sha256"`
		RunExecutable bool   `json:"runExecutable"`
		Cwd           string `json:"cwd"`
		TaskRoot      string `json:"taskRoot"`
		Create        string `json:"create"`
		Overwrite     string `json:"overwrite"`
	}](t, in, nil)
	if got.SHA256 != hex.EncodeToString(want[:]) {
		t.Errorf("data.bin's sha256 in the instance %s, on the host %x: the bytes changed on the way", got.SHA256, want)
	}
	if !got.RunExecutable {
		t.Errorf("run.sh is not executable in the instance")
	}
	if got.Cwd != got.TaskRoot || got.Cwd == "" {
		t.Errorf("working directory %q, want the task directory %q", got.Cwd, got.TaskRoot)
	}
	if got.Create == "written" || got.Overwrite == "written" {
		t.Errorf("the handler wrote into its code directory (a new file: %s; data.bin: %s), want it read-only", got.Create, got.Overwrite)
	}
	if b, err := os.ReadFile(filepath.Join(spec.Code, "data.bin")); err != nil || string(b) != string(all) {
		t.Errorf("the code directory's data.bin changed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(spec.Code, "nimbus-probe")); err == nil {
		t.Errorf("a file appeared in the code directory on the host")
	}
}

// testLayers: layer directories built by hand are importable, the first
// layer's package before the second's, read-only.
func testLayers(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
import os, nimbuslayerdemo, nimbuslayertwo
def handler(event, context):
    try:
        open(os.path.join(os.path.dirname(nimbuslayerdemo.__file__), "nimbus-probe"), "w").close()
        write = "written"
    except OSError as e:
        write = e.strerror
    return {"values": [nimbuslayerdemo.VALUE, nimbuslayertwo.VALUE], "file": nimbuslayerdemo.__file__, "write": write}
`,
		runtime.NodeJS: `
const fs = require('fs');
const path = require('path');
exports.handler = async () => {
  const file = require.resolve('nimbuslayerdemo');
  let write = 'written';
  try { fs.writeFileSync(path.join(path.dirname(file), 'nimbus-probe'), 'x'); } catch (e) { write = e.code; }
  return { values: [require('nimbuslayerdemo'), require('nimbuslayertwo')], file, write };
};
`,
	}[rt]
	layer := func(pkg, value string) map[string]File {
		if rt == runtime.Python {
			return map[string]File{"python/" + pkg + "/__init__.py": {Data: []byte("VALUE = " + value + "\n")}}
		}
		return map[string]File{"nodejs/node_modules/" + pkg + "/index.js": {Data: []byte("module.exports = " + value + ";\n")}}
	}
	l0 := layer("nimbuslayerdemo", `"layer 0"`)
	l1 := layer("nimbuslayerdemo", `"layer 1"`)
	for name, f := range layer("nimbuslayertwo", `"layer 1 too"`) {
		l1[name] = f
	}
	spec := codeFunction(t, rt, code, nil)
	spec.Layers = []string{Dir(t, l0), Dir(t, l1)}
	in := StartSpec(t, d, spec)
	got := MustInvoke[struct {
		Values []string `json:"values"`
		File   string   `json:"file"`
		Write  string   `json:"write"`
	}](t, in, nil)
	if strings.Join(got.Values, "|") != "layer 0|layer 1 too" {
		t.Errorf("imported %q, want the first layer's package and the second's other one", got.Values)
	}
	if !strings.HasPrefix(got.File, driver.LayerDir(0)+"/") {
		t.Errorf("the package was loaded from %s, want it below %s", got.File, driver.LayerDir(0))
	}
	if got.Write == "written" {
		t.Errorf("the handler wrote into a layer, want it read-only")
	}
}

// hostProbe is a module installed on the host for testHostPackages: where
// its files are, and its name.
type hostProbe struct {
	name  string
	paths []string
}

var interps struct {
	once sync.Once
	in   runtime.Interpreters
}

// hostInterpreter is the host's interpreter of rt, the one the drivers run
// (or build their images from).
func hostInterpreter(t *testing.T, rt string) string {
	interps.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		interps.in, _ = runtime.FindInterpreters(ctx, os.LookupEnv)
	})
	exe := interps.in.Path(rt)
	if exe == "" {
		testenv.Require(t, "the host's "+rt+" interpreter", errors.New("not found"))
	}
	return exe
}

// installHostProbe installs a module of a new name where rt's interpreter
// on the host finds its own packages, proves that it does find it there,
// and removes it at the end of the test. Python's goes into the
// interpreter's purelib directory; Node's into every global directory the
// interpreter searches (created where missing) and npm's global
// node_modules directories.
func installHostProbe(t *testing.T, rt string) hostProbe {
	t.Helper()
	exe := hostInterpreter(t, rt)
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	p := hostProbe{name: "nimbus_host_leak_probe_" + hex.EncodeToString(suffix[:])}
	home := t.TempDir()
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(exe, args...)
		cmd.Env, cmd.Dir = env, "/"
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	var dirs []string
	switch rt {
	case runtime.Python:
		out, err := run("-I", "-S", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
		if err != nil {
			t.Fatalf("ask %s for its purelib directory: %v: %s", exe, err, out)
		}
		dirs = []string{out}
	case runtime.NodeJS:
		out, err := run("-e", "console.log(JSON.stringify(require('module').globalPaths))")
		if err != nil {
			t.Fatalf("ask %s for its global paths: %v: %s", exe, err, out)
		}
		var global []string
		if err := json.Unmarshal([]byte(out), &global); err != nil {
			t.Fatal(err)
		}
		for _, g := range global {
			if !strings.HasPrefix(g, home+"/") {
				dirs = append(dirs, g)
			}
		}
		dirs = append(dirs, "/usr/local/lib/node_modules", "/usr/lib/node_modules")
	}
	for _, dir := range dirs {
		file := filepath.Join(dir, p.name+".py")
		data := "VALUE = 'the host'\n"
		if rt == runtime.NodeJS {
			file = filepath.Join(dir, p.name, "index.js")
			data = "module.exports = 'the host';\n"
		}
		created := missingDirs(filepath.Dir(file))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			testenv.Require(t, "write access to the host interpreter's package directories", err)
		}
		// Innermost first, and only while empty: another test may have
		// put its own probe in a directory this one created.
		t.Cleanup(func() {
			for _, d := range created {
				os.Remove(d)
			}
		})
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			testenv.Require(t, "write access to the host interpreter's package directories", err)
		}
		t.Cleanup(func() { os.Remove(file) })
		p.paths = append(p.paths, file)
	}
	// The control: on the host, the interpreter imports it.
	var out string
	var err error
	if rt == runtime.Python {
		out, err = run("-I", "-B", "-c", "import "+p.name)
	} else {
		out, err = run("-e", "require('"+p.name+"')")
	}
	if err != nil {
		t.Fatalf("the host's %s does not import the probe %s from %q, so the case proves nothing: %v: %s", exe, p.name, dirs, err, out)
	}
	return p
}

// missingDirs are dir and those of its parents that do not exist yet,
// innermost first.
func missingDirs(dir string) []string {
	var out []string
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		out = append(out, d)
	}
	return out
}

// testHostPackages: a package installed in the host interpreter's own
// package directories, after the driver started, can neither be imported
// by a function nor read at its path; nor has the worker imported anything
// of the host's site-packages before the function loaded.
func testHostPackages(t *testing.T, d driver.Driver, rt string, _ Options) {
	probe := installHostProbe(t, rt)
	code := map[string]string{
		runtime.Python: `
import importlib, os, sys
def handler(event, context):
    try:
        importlib.import_module(event["module"])
        imported = "imported"
    except ImportError as e:
        imported = type(e).__name__
    host = sorted(n for n, m in list(sys.modules.items())
                  if any(s in (getattr(m, "__file__", None) or "") for s in ("site-packages", "dist-packages")))
    return {"import": imported, "visible": [p for p in event["paths"] if os.path.exists(p)], "hostModules": host}
`,
		runtime.NodeJS: `
const fs = require('fs');
exports.handler = async (event) => {
  let imported = 'imported';
  try { require(event.module); } catch (e) { imported = e.code || String(e); }
  return { import: imported, visible: event.paths.filter((p) => fs.existsSync(p)), hostModules: [] };
};
`,
	}[rt]
	in := StartSpec(t, d, codeFunction(t, rt, code, nil))
	got := MustInvoke[struct {
		Import      string   `json:"import"`
		Visible     []string `json:"visible"`
		HostModules []string `json:"hostModules"`
	}](t, in, map[string]any{"module": probe.name, "paths": probe.paths})
	if got.Import == "imported" {
		t.Errorf("the function imported %s, a package of the host's interpreter", probe.name)
	}
	if len(got.Visible) > 0 {
		t.Errorf("the function sees the host's package files %q", got.Visible)
	}
	if len(got.HostModules) > 0 {
		t.Errorf("the worker holds modules of the host's site-packages: %q", got.HostModules)
	}
}
