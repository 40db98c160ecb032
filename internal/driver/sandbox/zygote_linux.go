package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"golang.org/x/sys/unix"
)

// The Python zygote. A spare Python worker still costs its own
// interpreter: some 9 MB of memory per idle instance, most of it the same
// in every one (the interpreter's heap after start-up, the shim, the stdlib
// modules), and tens of milliseconds of CPU to start. So the driver runs one
// Python process (runtime/python/zygote.py) that has imported all that,
// outside every sandbox, and forks each Python worker from it; the pages
// stay shared, copy-on-write.
//
// The sandbox is the init helper's, as for any instance: the helper builds
// it (namespaces, read-only root, cgroup, locked down as always) and then,
// told to hold it, execs the init shell with nothing to run but waiting
// and reaping. The server passes the zygote the helper's namespaces and
// cgroup as file descriptors; the zygote's child joins the cgroup and the
// namespaces (its root becomes the sandbox's), forks the worker inside the
// PID namespace, and exits. The worker leaves its session, sets the
// rlimits, drops its capability sets, becomes the sandbox user, sets
// no_new_privs and loads this driver's seccomp filter before any function
// code exists in it, then waits for Init as a spare worker does. The
// zygote, a child subreaper, is its parent: it reaps it and reports its
// wait status, and the server then ends the helper, which takes anything
// left in the PID namespace with it. Killing the instance kills the
// helper, as always, and so the worker.

// zygoteChild is a worker the zygote forked, and how it ended.
type zygoteChild struct {
	pid    int           // on the host
	exited chan struct{} // closed once it is reaped, or the zygote is gone
	known  bool          // status is the worker's; false: the zygote died first
	status syscall.WaitStatus
}

// zygote is the running zygote process and the server's end of its socket.
type zygote struct {
	runtime string // whose workers it forks
	cmd     *exec.Cmd
	conn    *net.UnixConn
	pid     int

	forkMu  sync.Mutex // one fork at a time: a request, then its reply
	replies chan zygoteMsg

	mu       sync.Mutex
	children map[string]*zygoteChild // by instance id
	dead     chan struct{}
	err      error // why it stopped; read after dead
	wasReady atomic.Bool
}

// zygoteMsg is any message from the zygote.
type zygoteMsg struct {
	Ready  int    `json:"ready,omitempty"`
	ID     string `json:"id,omitempty"`
	PID    int    `json:"pid,omitempty"`
	Error  string `json:"error,omitempty"`
	Exit   string `json:"exit,omitempty"`
	Status int    `json:"status,omitempty"`
}

// zygoteConfig is the first message to the zygote: what every worker gets.
type zygoteConfig struct {
	UID        int        `json:"uid"`
	GID        int        `json:"gid"`
	SetGroups  bool       `json:"setGroups"`
	Rlimits    [][3]int64 `json:"rlimits"`
	Seccomp    []byte     `json:"seccomp,omitempty"` // struct sock_filter[], base64 in JSON
	Dir        string     `json:"dir"`
	RuntimeDir string     `json:"runtimeDir"`
}

// zygoteStartTimeout bounds the zygote's start-up and imports.
const zygoteStartTimeout = 30 * time.Second

// startZygote starts the zygote if this host and the settings allow it,
// and returns why not otherwise.
func (d *Driver) startZygote() (*zygote, error) {
	switch {
	case !d.opts.zygote:
		return nil, fmt.Errorf("turned off by %s=off", EnvZygote)
	case !d.isolation.on:
		return nil, errors.New("no isolation: workers are plain processes")
	case d.isolation.userns:
		return nil, errors.New("the server is not root: joining a sandbox's user namespace from outside is not done")
	}
	r := zygoteRuntime()
	switch {
	case r == nil:
		return nil, errors.New("no runtime has a zygote")
	case d.cfg.Interpreters.Path(r.Name) == "":
		return nil, fmt.Errorf("no %s", r.Command)
	case d.cfg.Shims.Zygote(r.Name) == "":
		return nil, fmt.Errorf("no installed %s shim", r.Label)
	}
	script := d.cfg.Shims.Zygote(r.Name)
	if _, err := os.Stat(script); err != nil {
		return nil, err
	}
	cfg := zygoteConfig{UID: d.opts.uid, GID: d.opts.gid, SetGroups: true, Dir: TaskDir, RuntimeDir: RuntimeDir}
	for _, r := range d.instanceSpec("", "", false).Rlimits {
		cfg.Rlimits = append(cfg.Rlimits, [3]int64{int64(r.Resource), int64(r.Cur), int64(r.Max)})
	}
	if d.isolation.seccomp {
		prog, err := seccompProgram()
		if err != nil {
			return nil, err
		}
		cfg.Seccomp = unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0])))
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(pair[0]), "zygote"), os.NewFile(uintptr(pair[1]), "zygote")
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, err
	}
	conn := fc.(*net.UnixConn)
	outR, outW, err := os.Pipe()
	if err != nil {
		conn.Close()
		return nil, err
	}
	interp := d.cfg.Interpreters.Path(r.Name)
	cmd := &exec.Cmd{
		Path:       interp,
		Args:       append(append([]string{interp}, r.ShimArgs...), script),
		Env:        genericEnv(),
		Dir:        "/",
		Stdout:     outW,
		Stderr:     outW,
		ExtraFiles: []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = cmd.Start()
	outW.Close()
	theirs.Close()
	if err != nil {
		conn.Close()
		outR.Close()
		return nil, fmt.Errorf("start %s: %w", script, err)
	}
	z := &zygote{runtime: r.Name, cmd: cmd, conn: conn, pid: cmd.Process.Pid, replies: make(chan zygoteMsg, 1),
		children: map[string]*zygoteChild{}, dead: make(chan struct{})}
	go z.drain(outR, d)
	go func() {
		werr := cmd.Wait()
		z.die(fmt.Errorf("exited: %v", werr))
		z.conn.Close()
		if !d.closing.Load() && z.wasReady.Load() {
			d.log.Warn("the python zygote exited: python workers start as fresh interpreters from now on", "error", werr)
		}
	}()
	b, _ := json.Marshal(map[string]any{"config": cfg})
	if _, err := conn.Write(b); err != nil {
		z.stop()
		return nil, fmt.Errorf("configure: %w", err)
	}
	ready := make(chan error, 1)
	go z.read(ready)
	select {
	case err = <-ready:
	case <-time.After(zygoteStartTimeout):
		err = fmt.Errorf("not ready within %v", zygoteStartTimeout)
	}
	if err != nil {
		z.stop()
		<-z.dead
		return nil, err
	}
	z.wasReady.Store(true)
	return z, nil
}

// drain passes what the zygote prints to the server's log.
func (z *zygote) drain(r *os.File, d *Driver) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		d.log.Warn("python zygote output", "line", sc.Text())
	}
}

// read reads the zygote's messages until its socket closes: the first says
// it is ready (reported on ready), then replies to forks and the exits of
// the workers.
func (z *zygote) read(ready chan<- error) {
	buf := make([]byte, 64<<10)
	first := true
	for {
		n, err := z.conn.Read(buf)
		if err == nil && n == 0 {
			err = errors.New("its socket closed")
		}
		if err != nil {
			if first {
				ready <- fmt.Errorf("exited before it was ready: %w", err)
			}
			z.die(err)
			return
		}
		var m zygoteMsg
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			continue
		}
		switch {
		case first:
			first = false
			if m.Ready == 0 {
				ready <- fmt.Errorf("first message %q, want ready", buf[:n])
				z.die(errors.New("protocol error"))
				return
			}
			ready <- nil
		case m.Exit != "":
			z.mu.Lock()
			c := z.children[m.Exit]
			delete(z.children, m.Exit)
			z.mu.Unlock()
			if c != nil {
				c.status, c.known = syscall.WaitStatus(m.Status), true
				close(c.exited)
			}
		case m.ID != "":
			select {
			case z.replies <- m:
			default: // nobody waits for it any more
			}
		}
	}
}

// die records that the zygote is gone and tells every worker's instance.
func (z *zygote) die(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if driver.IsClosed(z.dead) {
		return
	}
	z.err = err
	close(z.dead)
	for id, c := range z.children {
		delete(z.children, id)
		close(c.exited)
	}
}

// alive reports whether the zygote still forks.
func (z *zygote) alive() bool { return z != nil && !driver.IsClosed(z.dead) }

// stop kills the zygote. Its workers die with their instances: their
// helpers are killed when the zygote's death is noticed.
func (z *zygote) stop() {
	_ = syscall.Kill(z.pid, syscall.SIGKILL)
	z.conn.Close()
}

// zygoteForkTimeout bounds one fork: the child's move into a cgroup (on
// v1 it waits for an RCU grace period), the namespaces and the worker's
// set-up.
const zygoteForkTimeout = 10 * time.Second

// fork has the zygote fork a worker into sb's sandbox, with p's child ends
// as its protocol pipes and output. sb's helper must have built its sandbox.
func (z *zygote) fork(sb *sandbox, p *pipes) (*zygoteChild, error) {
	z.forkMu.Lock()
	defer z.forkMu.Unlock()
	if !z.alive() {
		return nil, errors.New("the zygote is not running")
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	hpid := strconv.Itoa(sb.h.cmd.Process.Pid)
	for _, ns := range []string{"ipc", "uts", "net", "pid", "mnt"} { // mnt last: see zygote.py
		f, err := os.Open("/proc/" + hpid + "/ns/" + ns)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	var cgroups int
	if sb.cg != nil {
		for _, dir := range sb.cg.dirs {
			f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
			cgroups++
		}
	}
	fds := []int{int(p.reqR.Fd()), int(p.respW.Fd()), int(p.outW.Fd())}
	for _, f := range files {
		fds = append(fds, int(f.Fd()))
	}
	c := &zygoteChild{exited: make(chan struct{})}
	z.mu.Lock()
	z.children[sb.id] = c
	z.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"fork": sb.id, "ns": 5, "cgroups": cgroups})
	_, _, err := z.conn.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
	if err != nil {
		z.forget(sb.id)
		return nil, fmt.Errorf("ask the zygote to fork: %w", err)
	}
	var m zygoteMsg
	for {
		select {
		case m = <-z.replies:
		case <-z.dead:
			return nil, fmt.Errorf("the zygote exited: %v", z.err)
		case <-time.After(zygoteForkTimeout):
			z.forget(sb.id)
			return nil, fmt.Errorf("the zygote did not fork within %v", zygoteForkTimeout)
		}
		if m.ID == sb.id {
			break
		}
	}
	if m.Error != "" {
		// A worker that started and failed is reaped and reported; its
		// instance is never made.
		z.forget(sb.id)
		return nil, fmt.Errorf("zygote: %s", m.Error)
	}
	c.pid = m.PID
	return c, nil
}

func (z *zygote) forget(id string) {
	z.mu.Lock()
	delete(z.children, id)
	z.mu.Unlock()
}

// zygoteUp reports whether Python workers are forked from the zygote.
func (d *Driver) zygoteUp() bool { return d.zygote.alive() }

// zygoteFor reports whether runtime rt's workers are forked from the
// zygote.
func (d *Driver) zygoteFor(rt string) bool { return d.zygoteUp() && d.zygote.runtime == rt }

// zygoteRuntime is the runtime the zygote forks workers of: the first in
// the table that has one (Python).
func zygoteRuntime() *runtime.Runtime {
	for _, r := range runtime.All() {
		if r.Zygote != "" {
			return r
		}
	}
	return nil
}

// forkWorker turns a sandbox into an instance whose worker the
// zygote forks into its sandbox: the helper holds the sandbox as its init
// shell, the worker waits for Init. On an error the helper is gone too.
func (d *Driver) forkWorker(sb *sandbox) (*instance, error) {
	<-sb.h.ready
	if driver.IsClosed(sb.h.reported) || driver.IsClosed(sb.h.exited) {
		sb.abort()
		<-sb.h.exited
		if st := parseStatus(sb.h.status); st.err != "" {
			return nil, fmt.Errorf("sandbox: set up instance: %s: %w", st.err, fn.ErrUnavailable)
		}
		return nil, fmt.Errorf("sandbox: init helper stopped before its sandbox was ready: %w", fn.ErrUnavailable)
	}
	p, err := newPipes()
	if err != nil {
		sb.abort()
		return nil, err
	}
	// The helper becomes the init shell while the zygote forks.
	if err := sb.run(runSpec{Hold: true, Dir: "/"}); err != nil {
		p.closeAll()
		sb.abort()
		return nil, err
	}
	child, err := d.zygote.fork(sb, p)
	p.closeChildEnds()
	if err != nil {
		p.closeAll()
		sb.abort()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	sb.p.closeAll() // the helper's own pipes: it closed its ends, no worker has them
	sb.p = p
	return d.newInstance(sb.id, sb.dir, sb.h.cmd, p, sb.h, sb.cg, child), nil
}

// spawnZygote starts an instance of spec's function from the zygote on
// demand: a spare sandbox (or one started now) with its code, layers and
// limits, and a worker forked into it. Init, with the function's
// environment, follows in Start.
func (d *Driver) spawnZygote(spec driver.InstanceSpec) (*instance, error) {
	sb, err := d.sandboxFor(spec)
	if err != nil {
		return nil, err
	}
	return d.forkWorker(sb)
}

// watchZygoteChild ends the instance when its zygote-forked worker ends:
// the helper holding the sandbox goes, and with it anything left in the
// PID namespace. If the zygote itself died, no one can report how the
// worker ends: the instance is killed.
func (i *instance) watchZygoteChild() {
	select {
	case <-i.zygoteChild.exited:
	case <-i.Done():
		return
	}
	if !i.zygoteChild.known {
		i.Kill("the python zygote exited")
		return
	}
	pid := i.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGKILL)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// zygoteExit fills info from the zygote's report of how the worker
// ended, waiting a moment for it: the helper may end first.
func (i *instance) zygoteExit(info *driver.ExitInfo) {
	select {
	case <-i.zygoteChild.exited:
	case <-time.After(time.Second):
		return
	}
	if !i.zygoteChild.known {
		return
	}
	ws := i.zygoteChild.status
	switch {
	case ws.Signaled():
		info.Code, info.Signal = -1, unix.SignalName(ws.Signal())
	case ws.Exited():
		info.Code, info.Signal = ws.ExitStatus(), ""
	}
}
