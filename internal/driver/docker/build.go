package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// LocalRepo is the repository of the images Build makes for rt:
// nimbus/runtime-python, nimbus/runtime-nodejs.
func LocalRepo(rt string) string { return "nimbus/runtime-" + rt }

// buildVersion changes when Build lays images out differently.
const buildVersion = "2"

// BuildConfig says which runtime images to build, from which interpreters.
type BuildConfig struct {
	Host         string               // DOCKER_HOST; empty means the default socket
	Interpreters runtime.Interpreters // the host's interpreters to copy
	Runtimes     []string             // fn.Python, fn.NodeJS; empty means both
	Force        bool                 // build even when the tag exists
}

// BuildResult is one runtime image.
type BuildResult struct {
	Runtime string
	Image   string // nimbus/runtime-python:<content hash>
	Built   bool   // false: it existed already
	Files   int
	Bytes   int64 // of file content
	Took    time.Duration
}

// Build makes, without any network, an image per runtime from this host's
// interpreter: the executable, the shared libraries it and its extension
// modules load (as ldd lists them), the language's standard library (for
// Python, without tests, site-packages and GUI modules), /bin/sh and a
// passwd file, imported through the Engine API as one layer. The tag is a
// hash of what goes in (paths, sizes, modes, times), so an image is built
// only when the interpreter changed; the driver uses the newest one when
// its configured image is the default, absent and cannot be pulled.
func Build(ctx context.Context, cfg BuildConfig) ([]BuildResult, error) {
	cli, err := newClient(cfg.Host)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return nil, fmt.Errorf("docker: no daemon answers: %v: %w", err, fn.ErrUnavailable)
	}
	rts := cfg.Runtimes
	if len(rts) == 0 {
		rts = []string{fn.Python, fn.NodeJS}
	}
	var out []BuildResult
	for _, rt := range rts {
		t0 := time.Now()
		tr, err := collect(ctx, rt, cfg.Interpreters)
		if err != nil {
			return out, fmt.Errorf("build %s image: %w", rt, err)
		}
		res := BuildResult{Runtime: rt, Image: LocalRepo(rt) + ":" + tr.tag(rt), Files: tr.files(), Bytes: tr.bytes()}
		if _, err := cli.ImageInspect(ctx, res.Image); err == nil && !cfg.Force {
			res.Took = time.Since(t0)
			out = append(out, res)
			continue
		} else if err != nil && !cerrdefs.IsNotFound(err) {
			return out, fmt.Errorf("build %s image: %w", rt, err)
		}
		if err := tr.importImage(ctx, cli, res.Image, rt); err != nil {
			return out, fmt.Errorf("build %s image: %w", rt, err)
		}
		res.Built = true
		res.Took = time.Since(t0)
		out = append(out, res)
	}
	return out, nil
}

// collect gathers the files of rt's image.
func collect(ctx context.Context, rt string, in runtime.Interpreters) (*tree, error) {
	t := newTree()
	t.base()
	switch rt {
	case fn.Python:
		if in.Python == "" {
			return nil, errors.New("no python3 interpreter found on this host")
		}
		if err := t.python(ctx, in.Python); err != nil {
			return nil, err
		}
		t.label = "python " + in.PythonVersion
	case fn.NodeJS:
		if in.Node == "" {
			return nil, errors.New("no node interpreter found on this host")
		}
		if err := t.binary(ctx, in.Node); err != nil {
			return nil, err
		}
		t.link("/usr/local/bin/node", in.Node)
		t.label = "node " + in.NodeVersion
	default:
		return nil, fmt.Errorf("runtime %q: %w", rt, fn.ErrInvalid)
	}
	return t, nil
}

// tree is an image's file system, paths absolute.
type tree struct {
	entries map[string]*entry
	label   string
	errs    []error
}

type entry struct {
	typ   byte // tar.TypeDir, TypeReg, TypeSymlink
	mode  int64
	size  int64
	mtime time.Time
	link  string
	src   string // a host file, for TypeReg
	data  []byte // or this content
}

func newTree() *tree { return &tree{entries: map[string]*entry{}} }

// epoch is the time of generated files and of directories, whose times
// change with what else the host keeps in them.
var epoch = time.Unix(0, 0)

// base adds what every image has: directories, /bin/sh, users, CA
// certificates, time zones.
func (t *tree) base() {
	for _, d := range []string{"/etc", "/tmp", "/usr/local/bin", "/var/task", "/var/runtime", "/var/nimbus", "/proc", "/sys", "/dev"} {
		t.mkdirAll(d)
	}
	t.entries["/tmp"].mode = 0o1777
	t.gen("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	t.gen("/etc/group", "root:x:0:\nnogroup:x:65534:\n")
	t.gen("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
	if err := t.add("/bin/sh", 0); err != nil {
		t.errs = append(t.errs, err)
	} else if sh, err := filepath.EvalSymlinks("/bin/sh"); err == nil {
		t.libs(context.Background(), sh)
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		_ = t.add("/etc/ssl/certs/ca-certificates.crt", 0)
	}
	// Time zones, for functions that set TZ (4 MB).
	if _, err := os.Stat("/usr/share/zoneinfo"); err == nil {
		if _, err := t.addTree("/usr/share/zoneinfo", nil); err != nil {
			t.errs = append(t.errs, err)
		}
	}
}

// binary adds an executable and the libraries it loads.
func (t *tree) binary(ctx context.Context, path string) error {
	if err := t.add(path, 0); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	return t.libs(ctx, real)
}

// libs adds the shared libraries ldd lists for path.
func (t *tree) libs(ctx context.Context, path string) error {
	out, err := ldd(ctx, path)
	if err != nil {
		return err
	}
	return t.addLibs(out)
}

// ldd returns what ldd prints for path; nothing for a static binary.
func ldd(ctx context.Context, path string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ldd", path).Output()
	if err != nil {
		// A static binary: "not a dynamic executable", exit status 1.
		if errors.As(err, new(*exec.ExitError)) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	return out, nil
}

// addLibs adds the libraries in ldd's output.
func (t *tree) addLibs(out []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue // vdso, or "not found": the module that needs it fails to load, as on the host
		}
		if err := t.add(lib, 0); err != nil {
			return err
		}
	}
	return nil
}

// python adds the interpreter, its standard library and the libraries of
// its extension modules.
func (t *tree) python(ctx context.Context, exe string) error {
	out, err := exec.CommandContext(ctx, exe, "-I", "-c",
		`import sys, sysconfig; print(sysconfig.get_path("stdlib")); print(sysconfig.get_path("platstdlib")); print(sysconfig.get_config_var("DESTSHARED") or "")`).Output()
	if err != nil {
		return fmt.Errorf("ask %s for its paths: %w", exe, err)
	}
	if err := t.binary(ctx, exe); err != nil {
		return err
	}
	t.link("/usr/local/bin/python3", exe)
	var sos []string
	seen := map[string]bool{}
	for _, dir := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir = strings.TrimSpace(dir)
		if dir == "" || seen[dir] {
			continue
		}
		seen[dir] = true
		found, err := t.addTree(dir, skipStdlib)
		if err != nil {
			return err
		}
		sos = append(sos, found...)
	}
	return t.libsOf(ctx, sos)
}

// libsOf adds the libraries of every file in paths, running ldd on a few
// at a time.
func (t *tree) libsOf(ctx context.Context, paths []string) error {
	outs := make([][]byte, len(paths))
	errs := make([]error, len(paths))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i], errs[i] = ldd(ctx, p)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			return errs[i]
		}
		if err := t.addLibs(outs[i]); err != nil {
			return err
		}
	}
	return nil
}

// skipStdlib leaves out what functions do not need: tests, third-party
// packages (as in the official slim images: functions bring their own),
// GUI and IDE modules, optimised bytecode and build files.
func skipStdlib(rel string, d fs.DirEntry) bool {
	name := d.Name()
	if d.IsDir() {
		switch name {
		case "test", "tests", "idle_test", "site-packages", "dist-packages",
			"idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3":
			return true
		}
		return strings.HasPrefix(name, "config-") && !strings.Contains(rel, "/")
	}
	switch {
	case strings.HasSuffix(name, ".opt-1.pyc"), strings.HasSuffix(name, ".opt-2.pyc"), strings.HasSuffix(name, ".a"):
		return true
	case strings.HasSuffix(name, ".so") && (strings.HasPrefix(name, "_test") || strings.HasPrefix(name, "xxlimited") ||
		strings.HasPrefix(name, "_xxtestfuzz") || strings.HasPrefix(name, "_tkinter") || strings.HasPrefix(name, "_ctypes_test")):
		return true
	}
	return false
}

// addTree adds dir (resolving symlinks on the way to it) and what is below
// it, less what skip rejects; it returns the shared objects found.
func (t *tree) addTree(dir string, skip func(rel string, d fs.DirEntry) bool) ([]string, error) {
	if err := t.add(dir, 0); err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var sos []string
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == real {
			return nil
		}
		rel, _ := filepath.Rel(real, p)
		if skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			t.entries[p] = &entry{typ: tar.TypeDir, mode: 0o755, mtime: epoch}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.entries[p] = &entry{typ: tar.TypeSymlink, mode: 0o777, link: target, mtime: fi.ModTime()}
		case fi.Mode().IsRegular():
			t.file(p, fi)
			if strings.HasSuffix(p, ".so") || strings.Contains(filepath.Base(p), ".so.") {
				sos = append(sos, p)
			}
		}
		return nil
	})
	return sos, err
}

// add adds path as it is on the host: every directory and symlink on the
// way, and whatever the symlinks point to.
func (t *tree) add(path string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: too many levels of symbolic links", path)
	}
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: not an absolute path", path)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			t.entries[next] = &entry{typ: tar.TypeSymlink, mode: 0o777, link: target, mtime: fi.ModTime()}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			return t.add(filepath.Join(append([]string{target}, parts[i+1:]...)...), depth+1)
		case fi.IsDir():
			if _, ok := t.entries[next]; !ok {
				t.entries[next] = &entry{typ: tar.TypeDir, mode: 0o755, mtime: epoch}
			}
			cur = next
		case i == len(parts)-1 && fi.Mode().IsRegular():
			t.file(next, fi)
		default:
			return fmt.Errorf("%s: not a directory or regular file", next)
		}
	}
	return nil
}

func (t *tree) file(p string, fi fs.FileInfo) {
	// Readable by the containers' user; no set-id bits.
	mode := int64(fi.Mode().Perm()|0o444) &^ 0o022
	t.entries[p] = &entry{typ: tar.TypeReg, mode: mode, size: fi.Size(), mtime: fi.ModTime(), src: p}
}

func (t *tree) gen(p, content string) {
	t.mkdirAll(filepath.Dir(p))
	t.entries[p] = &entry{typ: tar.TypeReg, mode: 0o644, size: int64(len(content)), mtime: epoch, data: []byte(content)}
}

func (t *tree) link(p, target string) {
	if p == target {
		return
	}
	if e, ok := t.entries[p]; ok && e.typ != tar.TypeSymlink {
		return // the interpreter is there already
	}
	t.mkdirAll(filepath.Dir(p))
	t.entries[p] = &entry{typ: tar.TypeSymlink, mode: 0o777, link: target, mtime: epoch}
}

func (t *tree) mkdirAll(p string) {
	for ; p != "/" && p != "."; p = filepath.Dir(p) {
		if _, ok := t.entries[p]; !ok {
			t.entries[p] = &entry{typ: tar.TypeDir, mode: 0o755, mtime: epoch}
		}
	}
}

func (t *tree) paths() []string {
	ps := make([]string, 0, len(t.entries))
	for p := range t.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps) // a directory before what is in it
	return ps
}

func (t *tree) files() int { return len(t.entries) }

func (t *tree) bytes() int64 {
	var n int64
	for _, e := range t.entries {
		n += e.size
	}
	return n
}

// tag hashes what goes into the image.
func (t *tree) tag(rt string) string {
	h := sha256.New()
	fmt.Fprintf(h, "nimbus runtime image %s\n%s\n", buildVersion, rt)
	for _, p := range t.paths() {
		e := t.entries[p]
		fmt.Fprintf(h, "%s %c %o %d %d %s\n", p, e.typ, e.mode, e.size, e.mtime.UnixNano(), e.link)
		if e.data != nil {
			h.Write(e.data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// writeTar writes the tree as a tar archive.
func (t *tree) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, p := range t.paths() {
		e := t.entries[p]
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     strings.TrimPrefix(p, "/"),
			Mode:     e.mode,
			ModTime:  e.mtime,
			Linkname: e.link,
			Format:   tar.FormatPAX,
		}
		if e.typ == tar.TypeDir {
			hdr.Name += "/"
		}
		if e.typ == tar.TypeReg {
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if e.typ != tar.TypeReg {
			continue
		}
		if e.data != nil {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(f, e.size))
		f.Close()
		if err == nil && n != e.size {
			err = fmt.Errorf("%s changed while being read", e.src)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// importImage streams the tree to the daemon as image ref.
func (t *tree) importImage(ctx context.Context, cli *client.Client, ref, rt string) error {
	if len(t.errs) > 0 {
		return errors.Join(t.errs...)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(t.writeTar(pw)) }()
	resp, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
		Message: "nimbus images build: " + t.label + " from this host",
		Changes: []string{
			"ENV PATH=/usr/local/bin:/usr/bin:/bin",
			"LABEL io.nimbus.runtime=" + rt,
			"USER 65534:65534",
			"WORKDIR " + taskDir,
			`CMD ["/bin/sh"]`,
		},
	})
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	defer resp.Close()
	dec := json.NewDecoder(resp)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.ErrorDetail != nil {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}
