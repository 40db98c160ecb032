package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
)

// Paths inside a sandbox.
const (
	TaskDir    = "/var/task"    // the function's code, read-only (Lambda's path)
	RuntimeDir = "/var/runtime" // the runtime shims, read-only
)

// rootPlan is the part of the file-system plan every instance shares,
// computed once from the host: what of the host to bind and what to write.
type rootPlan struct {
	dirs     []string
	symlinks []symlink
	binds    []bindSpec
	files    []file
	prefixes []string     // interpreter prefixes bound outside /usr
	packages hostPackages // the host's package directories, masked (packages.go)
	// relay is the server's executable on the host, bound read-only at
	// runtimeapi.RelayPath: the worker of relayed runtimes ("" if unknown).
	relay string
}

// systemLinks are the root-level directories that merged-/usr systems make
// symlinks into /usr; where they are real directories they are bound.
var systemLinks = []string{"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// devices are the device nodes an instance gets.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// etcBinds are host files and directories of /etc an interpreter may read:
// the dynamic loader's cache, CA certificates, OpenSSL's configuration, the
// alternatives symlinks and the time zone data. Nothing with secrets.
var etcBinds = []string{
	"/etc/ld.so.cache",
	"/etc/ssl/certs",
	"/etc/ssl/openssl.cnf",
	"/etc/ca-certificates",
	"/etc/alternatives",
	"/etc/mime.types",
}

// netEtcBinds are bound only for functions with network access.
var netEtcBinds = []string{"/etc/resolv.conf", "/etc/hosts", "/etc/gai.conf"}

// newRootPlan plans the root for interpreters exes and the relay (the
// server's executable, "" if none), running as uid/gid.
func newRootPlan(exes []string, relay string, uid, gid int) (*rootPlan, error) {
	p := &rootPlan{
		dirs:  []string{"/etc", "/dev", "/var", TaskDir, RuntimeDir, "/proc", "/tmp"},
		relay: relay,
	}
	p.binds = append(p.binds, bindSpec{Src: "/usr", Dst: "/usr"})
	for _, d := range systemLinks {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return nil, err
			}
			p.symlinks = append(p.symlinks, symlink{Target: target, Path: d})
		case fi.IsDir():
			p.binds = append(p.binds, bindSpec{Src: d, Dst: d})
		}
	}
	for _, exe := range exes {
		if exe == "" {
			continue
		}
		prefix, err := interpreterPrefix(exe)
		if err != nil {
			return nil, err
		}
		if prefix == "" || covered(prefix, p.binds) {
			continue
		}
		p.prefixes = append(p.prefixes, prefix)
		p.binds = append(p.binds, bindSpec{Src: prefix, Dst: prefix})
	}
	for _, e := range etcBinds {
		if _, err := os.Stat(e); err == nil {
			p.binds = append(p.binds, bindSpec{Src: e, Dst: e})
		}
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		p.symlinks = append(p.symlinks, symlink{Target: target, Path: "/etc/localtime"})
	}
	for _, d := range devices {
		if _, err := os.Stat("/dev/" + d); err == nil {
			p.binds = append(p.binds, bindSpec{Src: "/dev/" + d, Dst: "/dev/" + d, RW: true})
		}
	}
	p.symlinks = append(p.symlinks,
		symlink{Target: "/proc/self/fd", Path: "/dev/fd"},
		symlink{Target: "/proc/self/fd/0", Path: "/dev/stdin"},
		symlink{Target: "/proc/self/fd/1", Path: "/dev/stdout"},
		symlink{Target: "/proc/self/fd/2", Path: "/dev/stderr"},
	)
	u, g := strconv.Itoa(uid), strconv.Itoa(gid)
	p.files = []file{
		{Path: "/etc/passwd", Mode: 0o644, Content: "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
			"sandbox:x:" + u + ":" + g + ":Nimbus function:/tmp:/usr/sbin/nologin\n"},
		{Path: "/etc/group", Mode: 0o644, Content: "root:x:0:\nsandbox:x:" + g + ":\n"},
		{Path: "/etc/nsswitch.conf", Mode: 0o644, Content: "passwd: files\ngroup: files\nhosts: files dns\n"},
	}
	return p, nil
}

// interpreterPrefix is the installation an interpreter executable belongs
// to: two levels above the real executable (/opt/python/bin/python3 →
// /opt/python). A prefix directly under the root (/root, /home, /opt) would
// show the function far more than the interpreter: then only the
// executable's own directory is bound, and the interpreter may miss its
// libraries.
func interpreterPrefix(exe string) (string, error) {
	real, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return "", fmt.Errorf("interpreter %s: %w", exe, err)
	}
	bin := filepath.Dir(real)
	prefix := filepath.Dir(bin)
	if strings.Count(prefix, "/") < 2 || prefix == "/" {
		return bin, nil
	}
	return prefix, nil
}

// covered reports whether p is inside a directory already bound.
func covered(p string, binds []bindSpec) bool {
	for _, b := range binds {
		if p == b.Src || strings.HasPrefix(p, b.Src+"/") {
			return true
		}
	}
	return false
}

// spec builds the helper's spec for one instance: the shared plan plus the
// instance's directories bound at /var/task and /opt/layers (taskSrc and
// layersSrc, "" for none), the shims, and the masks of the host's package
// directories that exist now.
func (p *rootPlan) spec(root, taskSrc, layersSrc, shimDir string, network bool) spec {
	sp := spec{
		Root:     root,
		Hostname: "sandbox",
		Dirs:     p.dirs,
		Symlinks: p.symlinks,
		Files:    p.files,
		Loopback: !network,
	}
	sp.Binds = make([]bindSpec, 0, len(p.binds)+5)
	sp.Binds = append(sp.Binds, p.binds...)
	if network {
		for _, e := range netEtcBinds {
			if _, err := os.Stat(e); err == nil {
				sp.Binds = append(sp.Binds, bindSpec{Src: e, Dst: e})
			}
		}
	} else {
		sp.Files = append(sp.Files[:len(sp.Files):len(sp.Files)],
			file{Path: "/etc/hosts", Mode: 0o644, Content: "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost\n"})
	}
	if taskSrc != "" {
		sp.Binds = append(sp.Binds, bindSpec{Src: taskSrc, Dst: TaskDir})
	}
	if layersSrc != "" {
		sp.Binds = append(sp.Binds, bindSpec{Src: layersSrc, Dst: driver.LayersDir})
	}
	if shimDir != "" {
		sp.Binds = append(sp.Binds, bindSpec{Src: shimDir, Dst: RuntimeDir})
	}
	if p.relay != "" {
		// Every sandbox, since a spare does not know its runtime yet: the
		// binary is public and read-only, and holds no secret.
		sp.Binds = append(sp.Binds, bindSpec{Src: p.relay, Dst: runtimeapi.RelayPath})
	}
	sp.Masks = p.masks()
	return sp
}
