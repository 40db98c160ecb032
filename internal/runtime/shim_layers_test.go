package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Layers, the task directory as the worker's working directory, and what
// of the interpreter's own packages a function sees.

// writeTree writes files (path → content) below dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPythonLayers(t *testing.T) {
	bin := interpreter(t, "python")
	out, err := exec.Command(bin, "-I", "-c", "import sys; print('python%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Fatal(err)
	}
	ver := strings.TrimSpace(string(out))
	l0, l1, extra := t.TempDir(), t.TempDir(), t.TempDir()
	sp0 := filepath.Join(l0, "python/lib", ver, "site-packages")
	writeTree(t, l0, map[string]string{
		"python/nimbuslayerdemo/__init__.py":                "WHO = 'layer 0'\n",
		"python/lib/" + ver + "/site-packages/sitepkg.py":   "WHO = 'layer 0 site-packages'\n",
		"python/lib/" + ver + "/site-packages/nimbus-x.pth": extra + "\n",
	})
	writeTree(t, extra, map[string]string{"viapth.py": "WHO = 'a .pth file'\n"})
	writeTree(t, l1, map[string]string{
		"python/nimbuslayerdemo/__init__.py": "WHO = 'layer 1'\n",
		"python/onlyone.py":                  "WHO = 'layer 1 only'\n",
	})
	w := startWorker(t, "python", map[string]string{"main.py": `
import os, sys
import nimbuslayerdemo, sitepkg, viapth, onlyone
def handler(event, context):
    return {"who": [nimbuslayerdemo.WHO, sitepkg.WHO, viapth.WHO, onlyone.WHO],
            "path": sys.path, "cwd": os.getcwd(), "exit": callable(exit)}
`}, "main.handler", withLayers(l0, l1), withCwd(t.TempDir())).mustLoad()
	got := decode[struct {
		Who  []string `json:"who"`
		Path []string `json:"path"`
		Cwd  string   `json:"cwd"`
		Exit bool     `json:"exit"`
	}](t, w.result(nil))
	if want := []string{"layer 0", "layer 0 site-packages", "a .pth file", "layer 1 only"}; strings.Join(got.Who, "|") != strings.Join(want, "|") {
		t.Errorf("imported %q, want %q", got.Who, want)
	}
	want := []string{w.TaskDir, filepath.Join(l0, "python"), sp0, extra, filepath.Join(l1, "python")}
	if len(got.Path) < len(want) || strings.Join(got.Path[:len(want)], "|") != strings.Join(want, "|") {
		t.Errorf("sys.path %q, want it to start %q", got.Path, want)
	}
	for _, p := range got.Path[len(want):] {
		if strings.Contains(p, "-packages") {
			t.Errorf("sys.path holds the interpreter's %s", p)
		}
	}
	if got.Cwd != w.TaskDir {
		t.Errorf("cwd %s, want the task directory %s", got.Cwd, w.TaskDir)
	}
	if !got.Exit {
		t.Errorf("exit() is not a builtin")
	}
}

func TestNodeLayers(t *testing.T) {
	bin := interpreter(t, "nodejs")
	out, err := exec.Command(bin, "-p", "process.versions.node.split('.')[0]").Output()
	if err != nil {
		t.Fatal(err)
	}
	major := strings.TrimSpace(string(out))
	l0, l1 := t.TempDir(), t.TempDir()
	writeTree(t, l0, map[string]string{
		"nodejs/node_modules/nimbuslayerdemo/index.js":             "module.exports = 'layer 0';\n",
		"nodejs/node" + major + "/node_modules/versioned/index.js": "module.exports = 'layer 0 node" + major + "';\n",
	})
	writeTree(t, l1, map[string]string{
		"nodejs/node_modules/nimbuslayerdemo/index.js": "module.exports = 'layer 1';\n",
		"nodejs/node_modules/onlyone/index.js":         "module.exports = 'layer 1 only';\n",
	})
	w := startWorker(t, "nodejs", map[string]string{"index.js": `
exports.handler = async () => ({
  who: [require('nimbuslayerdemo'), require('versioned'), require('onlyone')],
  nodePath: process.env.NODE_PATH, cwd: process.cwd(),
});
`}, "index.handler", withLayers(l0, l1), withEnv("NODE_PATH", "/elsewhere"), withCwd(t.TempDir())).mustLoad()
	var got struct {
		Who      []string `json:"who"`
		NodePath string   `json:"nodePath"`
		Cwd      string   `json:"cwd"`
	}
	if err := json.Unmarshal(w.result(nil), &got); err != nil {
		t.Fatal(err)
	}
	if want := []string{"layer 0", "layer 0 node" + major, "layer 1 only"}; strings.Join(got.Who, "|") != strings.Join(want, "|") {
		t.Errorf("required %q, want %q", got.Who, want)
	}
	wantPath := strings.Join([]string{
		filepath.Join(l0, "nodejs/node"+major+"/node_modules"), filepath.Join(l0, "nodejs/node_modules"),
		filepath.Join(l1, "nodejs/node_modules"), "/elsewhere",
	}, ":")
	if got.NodePath != wantPath {
		t.Errorf("NODE_PATH %q, want %q", got.NodePath, wantPath)
	}
	if got.Cwd != w.TaskDir {
		t.Errorf("cwd %s, want the task directory %s", got.Cwd, w.TaskDir)
	}
}
