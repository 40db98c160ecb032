package deps_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// TestScripts: with scripts on, the function's own install script runs
// as the build user, in its own PID namespace and root: it cannot write
// to a world-writable directory of the host or to the host's /tmp, nor
// read a world-readable file of the host. With scripts off (the default)
// it does not run at all.
func TestScripts(t *testing.T) {
	testenv.RequireRoot(t)
	reg := newRegistry(t, answerPackage(t))
	b := newBuilder(t, runtime.NodeJS, func(c *deps.Config) { c.NpmRegistry = reg.URL })

	host := sharedDir(t)
	open := filepath.Join(host, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777) // whatever the umask
	secret := filepath.Join(host, "secret.txt")
	if err := os.WriteFile(secret, []byte("the server's data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostTmp := filepath.Join(os.TempDir(), "nimbus-deps-escape-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { os.Remove(hostTmp) })
	script := strings.Join([]string{
		"id -u > uid.txt",
		"cat /proc/1/cmdline > pid1.txt",
		"echo x > " + filepath.Join(open, "escape.txt"),
		"echo x > " + hostTmp,
		"cat " + secret + " > leaked.txt",
		"ln -s /etc/passwd abs-link",
		"ln -s ../../../../../../../../../../.. up-link",
		"ln -s package.json in-link",
		"true",
	}, "; ")
	pkg := functionPackage(`"scripts": {"install": "` + script + `"}, `)

	var log logBuffer
	p := plan(t, b, runtime.NodeJS, map[string]string{"package.json": pkg}, true)
	dir, _, err := b.Build(context.Background(), p, &log)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	read := func(name string) string {
		data, _ := os.ReadFile(filepath.Join(dir, "nodejs", name))
		return strings.TrimSpace(string(data))
	}
	if got := read("uid.txt"); got != "65534" {
		t.Errorf("the install script ran as uid %q, want 65534\nlog:\n%s", got, log.String())
	}
	// npm sets its process title: "npm install".
	if got := read("pid1.txt"); !strings.HasPrefix(got, "npm") {
		t.Errorf("PID 1 of the build is %q, want npm", got)
	}
	if _, err := os.Stat(filepath.Join(open, "escape.txt")); err == nil {
		t.Error("the build wrote into a directory of the host")
	}
	if _, err := os.Stat(hostTmp); err == nil {
		t.Error("the build wrote into the host's /tmp")
	}
	if got := read("leaked.txt"); got != "" {
		t.Errorf("the build read a file of the host: %q", got)
	}
	for link, kept := range map[string]bool{"abs-link": false, "up-link": false, "in-link": true} {
		if _, err := os.Lstat(filepath.Join(dir, "nodejs", link)); (err == nil) != kept {
			t.Errorf("link %s: %v; want it kept: %v", link, err, kept)
		}
	}
	if !strings.Contains(log.String(), "removed nodejs/abs-link: a link to /etc/passwd, out of the layer") {
		t.Errorf("the log does not say which link was removed:\n%s", log.String())
	}
	if got := nodeAnswer(t, interpreters(t, runtime.NodeJS).Path(runtime.NodeJS), dir); got != "42" {
		t.Errorf("answer() = %q, want 42", got)
	}

	off := plan(t, b, runtime.NodeJS, map[string]string{"package.json": pkg}, false)
	if off.Key == p.Key {
		t.Fatal("the scripts setting did not change the key")
	}
	dir, _, err = b.Build(context.Background(), off, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodejs", "uid.txt")); err == nil {
		t.Error("with scripts off, the install script ran")
	}
}

// confined records what Confine was asked, checking the helper has not
// yet run the build when it is confined.
type confined struct {
	t        *testing.T
	mu       sync.Mutex
	pid, mb  int
	ns       map[string]string // the helper's namespaces: "net" → "net:[4026…]"
	pidNS    *os.File          // held open: its inode number cannot go to another namespace
	started  bool              // the build's command had started (exec'd) when confined
	released bool
	err      error // what Confine returns
}

func (c *confined) confine(pid, limitMB int) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pid, c.mb = pid, limitMB
	c.ns = namespaces(pid)
	if f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/pid"); err == nil {
		c.pidNS = f
		c.t.Cleanup(func() { f.Close() })
	}
	self, _ := os.Executable()
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	c.started = exe != self
	if c.err != nil {
		return nil, c.err
	}
	return func() {
		c.mu.Lock()
		c.released = true
		c.mu.Unlock()
	}, nil
}

var nsNames = []string{"mnt", "pid", "ipc", "uts", "net"}

func namespaces(pid int) map[string]string {
	out := map[string]string{}
	for _, n := range nsNames {
		out[n], _ = os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + n)
	}
	return out
}

// TestNamespaces: the build's helper is confined before the build runs,
// in new mount, PID, IPC and UTS namespaces; a Python build whose only
// source is a local directory also gets a network namespace of its own,
// and an npm build, which needs its registry, the host's.
func TestNamespaces(t *testing.T) {
	testenv.RequireRoot(t)
	self := namespaces(os.Getpid())
	for _, tc := range []struct {
		name    string
		rt      string
		files   map[string]string
		offline bool
	}{
		{"pip offline", runtime.Python, map[string]string{"requirements.txt": "nimbusdemo\n"}, true},
		{"npm", runtime.NodeJS, map[string]string{"package.json": functionPackage("")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &confined{t: t}
			b := newBuilder(t, tc.rt, func(cfg *deps.Config) {
				cfg.Confine = c.confine
				cfg.MemoryMB = 1000
				if tc.rt == runtime.Python {
					cfg.PipFindLinks = demoWheels(t)
				} else {
					cfg.NpmRegistry = newRegistry(t, answerPackage(t)).URL
				}
			})
			if _, _, err := b.Build(context.Background(), plan(t, b, tc.rt, tc.files, false), nil); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.pid == 0 || c.mb != 1000 || c.started || !c.released {
				t.Fatalf("Confine(%d, %d), build started before: %v, released: %v; want the helper confined to 1000 MB before it ran the build, released after",
					c.pid, c.mb, c.started, c.released)
			}
			for _, n := range nsNames {
				same := c.ns[n] == self[n]
				if c.ns[n] == "" || same != (n == "net" && !tc.offline) {
					t.Errorf("namespace %s of the build %q, of the test %q", n, c.ns[n], self[n])
				}
			}
		})
	}
}

// TestTimeout: a build that outlasts Timeout (its registry never answers)
// is killed with everything it started, says so, and leaves nothing.
func TestTimeout(t *testing.T) {
	reg := newRegistry(t, answerPackage(t))
	reg.Hang.Store(true)
	c := &confined{t: t}
	b := newBuilder(t, runtime.NodeJS, func(cfg *deps.Config) {
		cfg.NpmRegistry = reg.URL
		cfg.Timeout = 2 * time.Second
		cfg.Confine = c.confine
	})
	p := plan(t, b, runtime.NodeJS, map[string]string{"package.json": functionPackage("")}, false)
	_, _, err := b.Build(context.Background(), p, nil)
	if err == nil {
		t.Fatal("a build whose registry hangs succeeded")
	}
	buildErr(t, err)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "build nodejs layer "+p.Key+": timed out after 2s") {
		t.Errorf("error %q, want it timed out after 2s", err)
	}
	// Whether npm had reached the registry when its time was up depends
	// on the machine's load: either way it must be killed, leaving nothing.
	c.mu.Lock()
	pid, ns := c.pid, c.ns["pid"]
	c.mu.Unlock()
	if left := processesOf(t, pid, ns); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	assertNoTmp(t, b)
	if _, err := os.Stat(b.Dir(p.Key)); !os.IsNotExist(err) {
		t.Errorf("a timed-out build left a layer: %v", err)
	}
}

// TestConfineFails: a build that cannot be confined does not run.
func TestConfineFails(t *testing.T) {
	c := &confined{t: t, err: errors.New("no cgroups here")}
	b := newBuilder(t, runtime.Python, func(cfg *deps.Config) {
		cfg.Confine = c.confine
		cfg.PipFindLinks = demoWheels(t)
	})
	_, _, err := b.Build(context.Background(), plan(t, b, runtime.Python, map[string]string{"requirements.txt": "nimbusdemo\n"}, false), nil)
	if err == nil || !strings.Contains(err.Error(), "confine the build: no cgroups here") {
		t.Fatalf("Build: %v, want the confinement's failure", err)
	}
	if left := processesOf(t, c.pid, c.ns["pid"]); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	assertNoTmp(t, b)
}

// processesOf lists the processes still in the helper's PID namespace
// (held open by the confine hook, so that its number is not another's) or,
// without namespaces, in its process group.
func processesOf(t *testing.T, pid int, pidNS string) []string {
	t.Helper()
	if pid == 0 || (os.Geteuid() == 0 && pidNS == "") {
		t.Fatal("the helper was never confined: no pid")
	}
	if self, _ := os.Readlink("/proc/self/ns/pid"); pidNS == self {
		t.Fatal("the build shares the test's PID namespace")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp …: comm may hold anything but ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if os.Geteuid() != 0 {
			// Without a namespace of its own: the process group, whose id
			// another group may have taken since (rarely).
			if len(fields) > 2 && fields[2] == strconv.Itoa(pid) {
				left = append(left, e.Name()+" in the helper's process group")
			}
			continue
		}
		if ns, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid"); ns == pidNS {
			left = append(left, e.Name()+" in the build's PID namespace")
		}
	}
	return left
}

// TestRunningBuild: a build's output reaches its log while it runs; while
// it holds the only build slot, another build waits, until its own
// context ends; a canceled build is killed, leaving nothing.
func TestRunningBuild(t *testing.T) {
	reg := newRegistry(t, answerPackage(t))
	c := &confined{t: t}
	b := newBuilder(t, runtime.NodeJS, func(cfg *deps.Config) {
		cfg.NpmRegistry = reg.URL
		cfg.MaxBuilds = 1
		cfg.Confine = c.confine
		cfg.Timeout = deps.DefaultTimeout
	})
	slow := plan(t, b, runtime.NodeJS, map[string]string{"package.json": functionPackage(`"scripts": {"install": "echo nimbus-started; sleep 600"}, `)}, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log logBuffer
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Build(ctx, slow, &log)
		done <- err
	}()
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(log.String(), "nimbus-started"); {
		select {
		case err := <-done:
			t.Fatalf("the build ended: %v\nlog:\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output from the build in 2 minutes; log:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	other := plan(t, b, runtime.NodeJS, map[string]string{"package.json": functionPackage("")}, false)
	wait, stop := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer stop()
	if _, _, err := b.Build(wait, other, nil); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "wait for a free build slot") {
		t.Errorf("a second build while the only slot is taken: %v, want it to wait until its context ends", err)
	}
	if n := reg.Tarballs(); n != 1 {
		t.Errorf("the registry served %d tarballs, want 1: the second build ran", n)
	}

	// Collect leaves a running build alone.
	if _, err := b.Collect(nil); err != nil {
		t.Fatal(err)
	}
	if running, _ := os.ReadDir(filepath.Join(filepath.Dir(b.Dir(slow.Key)), "tmp")); len(running) != 1 {
		t.Errorf("tmp holds %v while one build runs, want its directory", running)
	}

	cancel()
	err := <-done
	buildErr(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled build: %v, want context.Canceled", err)
	}
	c.mu.Lock()
	pid, ns := c.pid, c.ns["pid"]
	c.mu.Unlock()
	if left := processesOf(t, pid, ns); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	assertNoTmp(t, b)
}
