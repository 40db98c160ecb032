package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// The host's packages. The sandbox binds /usr and the interpreters'
// prefixes, and with them every package installed there: pip's
// site-packages, Debian's dist-packages, npm's global node_modules,
// Debian's /usr/share/nodejs. A function brings its own, in its code or its
// layers, and must not see the host's, so every such directory that exists
// is masked by an empty read-only tmpfs. The Python shim also runs with -S
// (no site-packages on sys.path, no .pth files): the mask is what stops a
// function reading or importing them by path.
//
// Which directories those are is asked of the interpreters once, at
// start-up (hostPackages): they are candidates whether they exist or not,
// and each sandbox masks those that exist when it is built (rootPlan.masks),
// so that a package directory created later is masked from the next
// sandbox on; a sandbox built before it gets its mask when it is assigned
// to a function (assign, where code is mounted).

// mask hides the directory Path of the host in a sandbox under an empty
// read-only tmpfs, but for Keep: files or directories below Path that the
// interpreter itself loads (Debian's Node takes acorn, undici and
// cjs-module-lexer from /usr/share/nodejs), bound back read-only.
type mask struct {
	Path string   `json:"path"`
	Keep []string `json:"keep,omitempty"`
}

// packageCandidates are directories of host packages an interpreter may
// search, wherever it is installed: Debian's and pip's Python directories,
// npm's global directories, and the directories Debian's Node searches
// (/usr/share/nodejs, /usr/lib/<multiarch>/nodejs). Patterns are expanded
// at start-up.
var packageCandidates = []string{
	"/usr/lib/python3/dist-packages",
	"/usr/lib/python3*/dist-packages",
	"/usr/lib/python3*/site-packages",
	"/usr/local/lib/python3*/dist-packages",
	"/usr/local/lib/python3*/site-packages",
	"/usr/lib/node_modules",
	"/usr/local/lib/node_modules",
	"/usr/lib/node",
	"/usr/local/lib/node",
	"/usr/lib/nodejs",
	"/usr/local/lib/nodejs",
	"/usr/lib/*/nodejs",
	"/usr/share/nodejs",
	"/usr/local/share/nodejs",
}

// pythonPackageDirs prints, as JSON, the site directories of the Python
// that runs it (with -S, so that none of them is imported from): site's,
// the user site, and sysconfig's purelib and platlib for the default
// scheme and Debian's, and the standard library, which is never masked.
const pythonPackageDirs = `
import json, site, sys, sysconfig
dirs = list(site.getsitepackages())
try:
    dirs.append(site.getusersitepackages())
except Exception:
    pass
schemes = {"posix_prefix", "posix_local", "deb_system"}
default = getattr(sysconfig, "get_default_scheme", None)
if default:
    schemes.add(default())
for s in sorted(schemes & set(sysconfig.get_scheme_names())):
    try:
        p = sysconfig.get_paths(s)
    except Exception:
        continue
    dirs += [p["purelib"], p["platlib"]]
print(json.dumps({"dirs": dirs, "keep": [], "std": [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]}))
`

// nodePackageDirs prints, as JSON, the global directories the Node that
// runs it searches (with the worker's HOME), npm's global node_modules
// beside it, and the builtins it loads from files of the host
// (configure's --shared-builtin-*-path, as Debian builds it).
const nodePackageDirs = `
const path = require('path');
const keep = [];
const vars = process.config.variables || {};
for (const [k, v] of Object.entries(vars)) {
  if (/^node_shared_builtin_.*_path$/.test(k) && typeof v === 'string') keep.push(v);
}
for (const d of ((process.config.target_defaults || {}).defines || [])) {
  const m = /^NODE_SHARED_BUILTIN_[A-Z0-9_]*_PATH=(.+)$/.exec(String(d));
  if (m) keep.push(m[1]);
}
const prefix = path.resolve(process.execPath, '..', '..');
const dirs = [...require('module').globalPaths, path.join(prefix, 'lib', 'node_modules')];
console.log(JSON.stringify({ dirs, keep, std: [] }));
`

// hostPackages are the candidate package directories of the host and the
// files below them to keep (see mask).
type hostPackages struct {
	dirs []string
	keep []string
}

// findHostPackages asks each interpreter of in for its package
// directories and adds packageCandidates, but for any directory that holds
// an interpreter or its standard library. An interpreter that cannot say
// is reported, and its installation's usual directories are still masked.
func findHostPackages(ctx context.Context, in runtime.Interpreters) (hostPackages, error) {
	var (
		hp   hostPackages
		std  []string
		errs []string
	)
	for _, q := range []struct {
		rt   string
		args []string
	}{
		{runtime.Python, []string{"-I", "-S", "-c", pythonPackageDirs}},
		{runtime.NodeJS, []string{"-e", nodePackageDirs}},
	} {
		exe := in.Path(q.rt)
		if exe == "" {
			continue
		}
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			std = append(std, real) // node unpacked into /usr/local/lib/nodejs, say
		}
		cmd := exec.CommandContext(ctx, exe, q.args...)
		cmd.Env = genericEnv()
		cmd.Dir = "/"
		out, err := cmd.Output()
		var got struct{ Dirs, Keep, Std []string }
		if err == nil {
			err = json.Unmarshal(out, &got)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", exe, err))
			continue
		}
		hp.dirs = append(hp.dirs, got.Dirs...)
		hp.keep = append(hp.keep, got.Keep...)
		std = append(std, got.Std...)
	}
	for _, c := range packageCandidates {
		if !strings.ContainsAny(c, "*?[") {
			hp.dirs = append(hp.dirs, c)
			continue
		}
		m, _ := filepath.Glob(c)
		hp.dirs = append(hp.dirs, m...)
	}
	var dirs []string
	for _, d := range hp.dirs {
		if !filepath.IsAbs(d) {
			continue
		}
		d = resolveParent(filepath.Clean(d))
		// Never a directory that is, or holds, the standard library or
		// an interpreter.
		if slices.ContainsFunc(std, func(s string) bool { return s != "" && within(s, d) }) {
			continue
		}
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	hp.dirs = slices.Compact(dirs)
	var err error
	if len(errs) > 0 {
		err = fmt.Errorf("ask the interpreters for their package directories: %s", strings.Join(errs, "; "))
	}
	return hp, err
}

// resolveParent resolves the symbolic links of p's parent, where it
// exists: a mask is mounted on the real directory.
func resolveParent(p string) string {
	if parent, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(parent, filepath.Base(p))
	}
	return p
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// masks are the masks a sandbox built now needs: the candidate directories
// that exist, inside what the plan binds, and not inside another.
func (p *rootPlan) masks() []mask {
	var dirs []string
	for _, d := range p.packages.dirs {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if d, err = filepath.EvalSymlinks(d); err != nil {
				continue
			}
			if fi, err = os.Stat(d); err != nil {
				continue
			}
		}
		if fi.IsDir() && covered(d, p.binds) {
			dirs = append(dirs, d)
		}
	}
	var out []mask
	for _, d := range dirs {
		if slices.ContainsFunc(dirs, func(o string) bool { return o != d && within(d, o) }) {
			continue // its mask is an outer directory's
		}
		if slices.ContainsFunc(out, func(m mask) bool { return m.Path == d }) {
			continue
		}
		m := mask{Path: d}
		for _, k := range p.packages.keep {
			if k != d && within(k, d) {
				if _, err := os.Stat(k); err == nil {
					m.Keep = append(m.Keep, k)
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// lateMasks are the masks that a sandbox built with the masks masked needs
// now: package directories that appeared since. One that keeps files
// (Debian's /usr/share/nodejs, there since Node was installed) is left to
// the sandboxes built after it.
func (p *rootPlan) lateMasks(masked []string) []string {
	var out []string
	for _, m := range p.masks() {
		if len(m.Keep) == 0 && !slices.Contains(masked, m.Path) {
			out = append(out, m.Path)
		}
	}
	return out
}
