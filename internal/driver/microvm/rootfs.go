package microvm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// rootfsLayout changes whenever what goes into a runtime image changes in a
// way its inputs do not show, so that images are rebuilt.
const rootfsLayout = "4"

// Guest user the worker runs as once the agent has set it up.
const (
	guestUID = 1000
	guestGID = 1000
)

// mksquashfsArgs are the image options: zstd decompresses fast, which
// matters under emulation.
var mksquashfsArgs = []string{"-noappend", "-comp", "zstd", "-Xcompression-level", "6", "-all-root", "-no-xattrs", "-quiet"}

// rootfsSpec lists what a runtime image holds: the interpreter and every
// file it needs, at the paths they have on the host, so that the
// interpreter finds its libraries and standard library where it expects.
type rootfsSpec struct {
	runtime     string
	interpreter string // its real path on the host, and in the image
	version     string
	files       []string // host paths, sorted
}

// pythonDropped are standard-library directories left out of the image:
// tests, GUI toolkits, installers and third-party packages (functions ship
// their own dependencies in their files, as on Lambda).
var pythonDropped = map[string]bool{
	"site-packages": true, "dist-packages": true, "test": true, "idlelib": true,
	"tkinter": true, "turtledemo": true, "ensurepip": true, "lib2to3": true,
	"pydoc_data": true,
}

const pythonProbe = `import json, os, sys, sysconfig
print(json.dumps({
    "exe": os.path.realpath(sys.executable),
    "stdlib": sysconfig.get_path("stdlib"),
    "platstdlib": sysconfig.get_path("platstdlib"),
    "dynload": [p for p in sys.path if p.endswith("lib-dynload")],
    "tag": sys.implementation.cache_tag,
}))`

// pythonRootfs lists the files of a Python interpreter's image.
func pythonRootfs(ctx context.Context, interp, version string) (*rootfsSpec, error) {
	out, err := exec.CommandContext(ctx, interp, "-I", "-c", pythonProbe).Output()
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", interp, err)
	}
	var p struct {
		Exe, Stdlib, Platstdlib, Tag string
		Dynload                      []string
	}
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("probe %s: %w", interp, err)
	}
	files := map[string]bool{p.Exe: true}
	var elfs []string
	for _, root := range uniq(append([]string{p.Stdlib, p.Platstdlib}, p.Dynload...)) {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && filepath.Dir(path) == p.Stdlib && (pythonDropped[d.Name()] || strings.HasPrefix(d.Name(), "config-")) {
					return filepath.SkipDir
				}
				return nil
			}
			name := d.Name()
			if strings.HasPrefix(name, "_tkinter.") {
				return nil // Tk and X11 are not in the image
			}
			if strings.HasSuffix(name, ".pyc") && !strings.HasSuffix(name, "."+p.Tag+".pyc") {
				return nil // optimized (-O) bytecode: never loaded
			}
			if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			files[path] = true
			if strings.HasSuffix(name, ".so") {
				elfs = append(elfs, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", root, err)
		}
	}
	libs, err := sharedLibs(ctx, append([]string{p.Exe}, elfs...))
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		files[l] = true
	}
	if err := addZoneinfo(files); err != nil {
		return nil, err
	}
	return &rootfsSpec{runtime: fn.Python, interpreter: p.Exe, version: version, files: sortedKeys(files)}, nil
}

// nodeRootfs lists the files of a Node.js interpreter's image: one binary
// and its shared libraries.
func nodeRootfs(ctx context.Context, interp, version string) (*rootfsSpec, error) {
	exe, err := filepath.EvalSymlinks(interp)
	if err != nil {
		return nil, err
	}
	libs, err := sharedLibs(ctx, []string{exe})
	if err != nil {
		return nil, err
	}
	files := map[string]bool{exe: true}
	for _, l := range libs {
		files[l] = true
	}
	if err := addZoneinfo(files); err != nil {
		return nil, err
	}
	return &rootfsSpec{runtime: fn.NodeJS, interpreter: exe, version: version, files: sortedKeys(files)}, nil
}

// zoneinfo is the host's time zone database, which the C library reads for
// a function's TZ.
const zoneinfo = "/usr/share/zoneinfo"

// addZoneinfo adds the time zone database, without its "right" (leap
// second) and "posix" copies, if the host has one.
func addZoneinfo(files map[string]bool) error {
	if _, err := os.Stat(zoneinfo); err != nil {
		return nil
	}
	return filepath.WalkDir(zoneinfo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != zoneinfo && filepath.Dir(path) == zoneinfo && (d.Name() == "right" || d.Name() == "posix") {
				return filepath.SkipDir
			}
			return nil
		}
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			files[path] = true
		}
		return nil
	})
}

// sharedLibs lists the shared libraries the given ELF files load, the
// dynamic loader included, as ldd resolves them on this host. Libraries
// ldd cannot find (an optional extension's) are left out.
func sharedLibs(ctx context.Context, elfs []string) ([]string, error) {
	libs := map[string]bool{}
	for i := 0; i < len(elfs); i += 64 {
		batch := elfs[i:min(i+64, len(elfs))]
		cmd := exec.CommandContext(ctx, "ldd", batch...)
		out, _ := cmd.Output() // non-zero when one of them is not dynamic
		if len(out) == 0 {
			return nil, fmt.Errorf("ldd %s: no output (is ldd installed?)", batch[0])
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasSuffix(line, ":") {
				continue // "file:", heading each file's list
			}
			if _, target, ok := strings.Cut(line, "=> "); ok {
				line = target
			}
			path, _, _ := strings.Cut(line, " (")
			if strings.HasPrefix(path, "/") {
				libs[path] = true
			}
		}
	}
	return sortedKeys(libs), nil
}

// key is the image's content address: a hash of everything that goes in.
func (s *rootfsSpec) key() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "layout %s\nruntime %s\ninterpreter %s\nversion %s\nmksquashfs %q\n",
		rootfsLayout, s.runtime, s.interpreter, s.version, mksquashfsArgs)
	for _, f := range s.files {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d %d %o\n", f, st.Size(), st.ModTime().UnixNano(), st.Mode())
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// build stages the image's files in a temporary directory beside out and
// makes the squashfs image out of them.
func (s *rootfsSpec) build(ctx context.Context, out string) error {
	stage, err := os.MkdirTemp(filepath.Dir(out), ".stage-"+s.runtime+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil { // the guest's root
		return err
	}
	for _, f := range s.files {
		if err := stageFile(f, filepath.Join(stage, f)); err != nil {
			return err
		}
	}
	for _, d := range []string{"tmp", "var/task", "proc", "dev", "sys/fs/cgroup", "nimbus", "etc/nimbus"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return err
		}
	}
	etc := map[string]string{
		"etc/passwd":             fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nnimbus:x:%d:%d:nimbus:/tmp:/bin/false\n", guestUID, guestGID),
		"etc/group":              fmt.Sprintf("root:x:0:\nnimbus:x:%d:\n", guestGID),
		"etc/nimbus/interpreter": s.interpreter + "\n",
	}
	for name, content := range etc {
		if err := os.WriteFile(filepath.Join(stage, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	tmp := out + ".tmp"
	args := append([]string{stage, tmp}, mksquashfsArgs...)
	cmd := exec.CommandContext(ctx, "mksquashfs", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mksquashfs: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return os.Rename(tmp, out)
}

// stageFile puts the content of src (a symlink is followed) at dst: a hard
// link where it can, a copy otherwise.
func stageFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	if os.Link(real, dst) == nil {
		return nil
	}
	in, err := os.Open(real)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	o, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(o, in)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	return err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
