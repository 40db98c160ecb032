package deps

import (
	"os"
	"strconv"
	"strings"
)

// sandboxSpec is everything the build helper does, computed by the server
// so that the helper stays small: build a root, drop privileges, run the
// build. It travels as JSON on the helper's fd 3; its arrival is the
// helper's go-ahead.
type sandboxSpec struct {
	// Isolate: build the root and become UID/GID. Otherwise (the server
	// is not root) the helper only runs the command.
	Isolate  bool      `json:"isolate"`
	Root     string    `json:"root,omitempty"` // an empty directory to mount the new root on
	Dirs     []string  `json:"dirs,omitempty"` // created in the new root, 0755
	Symlinks []symlink `json:"symlinks,omitempty"`
	Files    []file    `json:"files,omitempty"`
	Binds    []bind    `json:"binds,omitempty"` // mounted in order
	TmpBytes int64     `json:"tmpBytes,omitempty"`
	Loopback bool      `json:"loopback,omitempty"` // bring lo up: the build has a network namespace of its own
	UID      int       `json:"uid,omitempty"`
	GID      int       `json:"gid,omitempty"`

	// The command, run as UID/GID in Dir.
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

// bind mounts Src of the host at the same path in the new root: read-only
// and without set-user-ID programs or devices, unless RW (the work
// directory: writable, still nosuid and nodev) or Device (a device node).
type bind struct {
	Src    string `json:"src"`
	RW     bool   `json:"rw,omitempty"`
	Device bool   `json:"device,omitempty"`
}

type symlink struct {
	Target string `json:"target"`
	Path   string `json:"path"`
}

type file struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// tmpBytes is the size of a build's private /tmp. TMPDIR points into the
// work directory, on disk: /tmp is only for what insists on it.
const tmpBytes = 64 << 20

// systemLinks are the top-level directories merged-/usr systems make
// symbolic links into /usr; where they are real directories they are
// bound.
var systemLinks = []string{"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// etcBinds are the files of /etc a build may read: the loader's cache, CA
// certificates, OpenSSL's configuration, alternatives, time zone names.
// Nothing with secrets; pip's and npm's own configuration is not read.
var etcBinds = []string{
	"/etc/ld.so.cache",
	"/etc/ssl/certs",
	"/etc/ssl/openssl.cnf",
	"/etc/ca-certificates",
	"/etc/alternatives",
	"/etc/mime.types",
}

// netEtcBinds are bound for a build that has the host's network.
var netEtcBinds = []string{"/etc/resolv.conf", "/etc/hosts", "/etc/gai.conf"}

// devices are the device nodes a build gets.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// spec plans c's sandbox with its root on the empty directory root: a
// read-only tmpfs holding the system's /usr (and its links), a few files
// of /etc, the interpreter's installation, npm and local package sources,
// all read-only; the work directory writable; a private /tmp and /proc.
// Nothing else of the host (not the server's data, not other builds, not
// home directories) is there.
func (b *Builder) spec(c *command, w workDirs, root string) *sandboxSpec {
	sp := &sandboxSpec{Path: c.path, Args: c.args, Env: c.env, Dir: c.dir}
	if !b.isolate {
		return sp
	}
	sp.Isolate = true
	sp.Root = root
	sp.TmpBytes = tmpBytes
	sp.Loopback = !c.net
	sp.UID, sp.GID = b.cfg.UID, b.cfg.GID
	sp.Dirs = []string{"/etc", "/dev", "/proc", "/tmp"}
	sp.Binds = append(sp.Binds, bind{Src: "/usr"})
	for _, d := range systemLinks {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				sp.Symlinks = append(sp.Symlinks, symlink{Target: target, Path: d})
			}
		case fi.IsDir():
			sp.Binds = append(sp.Binds, bind{Src: d})
		}
	}
	for _, n := range c.needs {
		if n != "" && !covered(n, sp.Binds) {
			sp.Binds = append(sp.Binds, bind{Src: n})
		}
	}
	etc := etcBinds
	if c.net {
		etc = append(etc[:len(etc):len(etc)], netEtcBinds...)
	} else {
		sp.Files = append(sp.Files, file{Path: "/etc/hosts", Content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"})
	}
	for _, e := range etc {
		if _, err := os.Stat(e); err == nil {
			sp.Binds = append(sp.Binds, bind{Src: e})
		}
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		sp.Symlinks = append(sp.Symlinks, symlink{Target: target, Path: "/etc/localtime"})
	}
	for _, d := range devices {
		if _, err := os.Stat("/dev/" + d); err == nil {
			sp.Binds = append(sp.Binds, bind{Src: "/dev/" + d, Device: true})
		}
	}
	sp.Symlinks = append(sp.Symlinks,
		symlink{Target: "/proc/self/fd", Path: "/dev/fd"},
		symlink{Target: "/proc/self/fd/0", Path: "/dev/stdin"},
		symlink{Target: "/proc/self/fd/1", Path: "/dev/stdout"},
		symlink{Target: "/proc/self/fd/2", Path: "/dev/stderr"},
	)
	u, g := strconv.Itoa(b.cfg.UID), strconv.Itoa(b.cfg.GID)
	sp.Files = append(sp.Files,
		file{Path: "/etc/passwd", Content: "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
			"build:x:" + u + ":" + g + ":Nimbus build:" + w.home + ":/usr/sbin/nologin\n"},
		file{Path: "/etc/group", Content: "root:x:0:\nbuild:x:" + g + ":\n"},
		file{Path: "/etc/nsswitch.conf", Content: "passwd: files\ngroup: files\nhosts: files dns\n"},
	)
	sp.Binds = append(sp.Binds, bind{Src: w.work, RW: true})
	for _, d := range c.writable {
		sp.Binds = append(sp.Binds, bind{Src: d, RW: true})
	}
	return sp
}

// covered reports whether p is inside a directory already bound.
func covered(p string, binds []bind) bool {
	for _, b := range binds {
		if p == b.Src || strings.HasPrefix(p, b.Src+"/") {
			return true
		}
	}
	return false
}
