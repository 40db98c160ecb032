package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	nimbusruntime "github.com/nimbusfaas/nimbus/internal/runtime"
)

// Paths inside a container.
const (
	ioDir     = "/var/nimbus" // the protocol FIFOs: req (fd 3), resp (fd 4)
	taskDir   = "/var/task"   // the function's files
	shimMount = "/var/runtime"
)

// Labels on every container the driver starts.
const (
	labelManaged  = "io.nimbus.managed"  // "true"
	labelServer   = "io.nimbus.server"   // the server's id, kept in its data dir
	labelOwner    = "io.nimbus.owner"    // host/boot/pid/start of the process
	labelInstance = "io.nimbus.instance" // the instance id, also in the name
	labelRuntime  = "io.nimbus.runtime"  // python, nodejs
	labelMemory   = "io.nimbus.memory"   // MB
	labelFunction = "io.nimbus.function" // the function's id; absent on pooled containers
	labelPool     = "io.nimbus.pool"     // "true" on containers started for the pool
)

// poolKey is what a generic container is started for: everything that is
// fixed when it starts.
type poolKey struct {
	runtime  string
	memoryMB int
	network  bool
}

func keyOf(f *fn.Function) poolKey {
	return poolKey{runtime: f.Runtime, memoryMB: f.Memory, network: f.Network}
}

// create creates and starts a container for key, generic (f nil: for the
// pool) or for f, with its protocol FIFOs open. Its shim waits for Init.
func (d *Driver) create(ctx context.Context, key poolKey, f *fn.Function) (*container, error) {
	image, err := d.images.resolve(ctx, key.runtime)
	if err != nil {
		return nil, err
	}
	id := fn.NewID()
	c := &container{
		d:    d,
		name: "nimbus-" + id,
		key:  key,
		dir:  filepath.Join(d.instDir, id),
		done: make(chan struct{}),
	}
	if err := c.makeDir(); err != nil {
		os.RemoveAll(c.dir)
		return nil, unavailable("instance directory", err)
	}
	if !d.track(c) {
		c.closeFiles()
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("docker: driver closed: %w", fn.ErrUnavailable)
	}
	labels := map[string]string{
		labelManaged:  "true",
		labelServer:   d.server,
		labelOwner:    d.owner,
		labelInstance: id,
		labelRuntime:  key.runtime,
		labelMemory:   strconv.Itoa(key.memoryMB),
	}
	if f != nil {
		labels[labelFunction] = f.ID
	} else {
		labels[labelPool] = "true"
	}
	d.oom.start()
	// Create and start run to the end even when ctx ends, so that the
	// driver always knows what exists and can remove it.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	res, err := d.cli.ContainerCreate(actx, client.ContainerCreateOptions{
		Name:       c.name,
		Config:     d.containerConfig(image, key, labels),
		HostConfig: d.hostConfig(key, c.dir),
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			d.images.forget(key.runtime) // removed since it was found
		}
		c.removeByName() // in case the daemon created it all the same
		c.discard()
		return nil, unavailable("create container", err)
	}
	c.id = res.ID
	for _, w := range res.Warnings {
		d.log.Debug("container created with a warning", "container", c.name, "warning", w)
	}
	c.conn = driver.NewConn(c.resp, c.req, c.broken)
	if _, err := d.cli.ContainerStart(actx, c.id, client.ContainerStartOptions{}); err != nil {
		c.remove()
		c.discard()
		return nil, unavailable("start container", err)
	}
	go c.wait()
	if ctx.Err() != nil {
		c.Kill("start abandoned")
		return nil, ctx.Err()
	}
	return c, nil
}

func (d *Driver) containerConfig(image string, key poolKey, labels map[string]string) *ctr.Config {
	var cmd string
	switch key.runtime {
	case fn.Python:
		cmd = "exec python3 -I -B " + shimMount + "/bootstrap.py"
	case fn.NodeJS:
		cmd = "exec node --max-old-space-size=" + strconv.Itoa(key.memoryMB) + " " + shimMount + "/bootstrap.js"
	}
	return &ctr.Config{
		Image: image,
		// The shell opens the protocol FIFOs on fds 3 and 4 and becomes
		// the interpreter: no adapter process runs in the container.
		Entrypoint: []string{"/bin/sh", "-c", "exec 3<" + ioDir + "/req 4>" + ioDir + "/resp && " + cmd},
		Cmd:        []string{},
		Env:        nimbusruntime.BaseEnv(taskDir),
		WorkingDir: taskDir,
		User:       user,
		Labels:     labels,
	}
}

func (d *Driver) hostConfig(key poolKey, dir string) *ctr.HostConfig {
	mem := int64(key.memoryMB) << 20
	cpus := min(max(float64(key.memoryMB)/mbPerCPU, 1), float64(runtime.NumCPU()))
	shares := max(int64(key.memoryMB)*1024/mbPerCPU, 2)
	pids := int64(pidsLimit)
	network := ctr.NetworkMode("none")
	if key.network {
		network = "bridge"
	}
	init := true // docker-init as pid 1: the shim gets signals as on the host, zombies are reaped
	return &ctr.HostConfig{
		Init:        &init,
		NetworkMode: network,
		Resources: ctr.Resources{
			Memory:     mem,
			MemorySwap: mem, // no swap
			NanoCPUs:   int64(cpus * 1e9),
			CPUShares:  shares,
			PidsLimit:  &pids,
		},
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": "rw,nosuid,nodev,size=" + strconv.Itoa(tmpSize) + ",mode=1777"},
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		LogConfig:      ctr.LogConfig{Type: "none"},
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: filepath.Join(dir, "io"), Target: ioDir, ReadOnly: true},
			{Type: mount.TypeBind, Source: filepath.Join(dir, "task"), Target: taskDir, ReadOnly: true},
			{Type: mount.TypeBind, Source: d.shimDir, Target: shimMount, ReadOnly: true},
		},
	}
}

// container is one container and, once handed its function, an instance.
type container struct {
	d    *Driver
	id   string // the daemon's id
	name string // nimbus-<instance id>
	key  poolKey
	dir  string // on the host: io/ (FIFOs) and task/ (code)

	req, resp *os.File // the FIFOs, held open read-write by the server
	conn      *driver.Conn
	init      atomic.Int64 // docker-init's pid on the host, once known
	pid       atomic.Int64 // the shim's pid on the host, once known

	function string // the function's id, once handed it
	initLogs driver.InitLogs

	mu     sync.Mutex
	reason string // why Nimbus killed it; first reason wins
	exit   driver.ExitInfo
	done   chan struct{}
}

var _ driver.Instance = (*container)(nil)

// makeDir creates the instance directory: the FIFOs and an empty task/.
// The server opens both FIFOs read-write, so opening them never blocks and
// the container's opens find a peer at once; death is learnt from the
// daemon, not from EOF.
func (c *container) makeDir() error {
	io := filepath.Join(c.dir, "io")
	if err := os.MkdirAll(io, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.dir, "task"), 0o755); err != nil {
		return err
	}
	for _, name := range []string{"req", "resp"} {
		p := filepath.Join(io, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		// The container's user (nobody) opens them; the directory above is
		// the server's only.
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	var err error
	if c.req, err = os.OpenFile(filepath.Join(io, "req"), os.O_RDWR, 0); err != nil {
		return err
	}
	if c.resp, err = os.OpenFile(filepath.Join(io, "resp"), os.O_RDWR, 0); err != nil {
		c.req.Close()
		return err
	}
	return nil
}

func (c *container) closeFiles() {
	if c.req != nil {
		c.req.Close()
	}
	if c.resp != nil {
		c.resp.Close()
	}
}

// discard forgets a container that never started.
func (c *container) discard() {
	c.closeFiles()
	os.RemoveAll(c.dir)
	c.d.untrack(c)
	close(c.done)
}

// remove force-removes the container, whatever its state.
func (c *container) remove() {
	if c.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.d.cli.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	// Not found: gone already; conflict: its removal is in progress.
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		c.d.log.Warn("remove container", "container", c.name, "error", err)
	}
}

// removeByName removes the container if the daemon created it although
// the create call failed.
func (c *container) removeByName() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = c.d.cli.ContainerRemove(ctx, c.name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
}

// wait learns the container's pid, waits for it to stop, records why, and
// removes it.
func (c *container) wait() {
	ctx := context.Background()
	if r, err := c.d.cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{}); err == nil && r.Container.State != nil {
		c.init.Store(int64(r.Container.State.Pid))
	}
	info, ok := c.waitExit(ctx)
	if !ok {
		info = driver.ExitInfo{Code: -1}
	}
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	// Killed, not by Nimbus, and the state does not say OOM: the daemon's
	// "oom" event may (it can follow the exit, by over a second on a loaded
	// host: a SIGKILL crash pays that wait, an OOM must not be missed).
	if !info.OOM && info.Signal == "SIGKILL" && reason == "" {
		if info.OOM = c.d.oom.saw(c.id, 4*time.Second); info.OOM {
			c.d.log.Debug("out of memory: the daemon's oom event followed the exit", "container", c.name)
		}
	}
	c.d.oom.forget(c.id)
	c.mu.Lock()
	info.Reason = c.reason
	c.exit = info
	c.mu.Unlock()
	// The response stream breaks: a call in flight learns the worker died.
	c.closeFiles()
	c.remove()
	os.RemoveAll(c.dir)
	c.d.untrack(c)
	close(c.done)
}

// waitExit waits until the container is not running and reads its exit
// status. ok is false when the daemon could not tell (the container is
// gone, or the daemon stopped answering for a minute).
func (c *container) waitExit(ctx context.Context) (driver.ExitInfo, bool) {
	var failing time.Time
	for {
		w := c.d.cli.ContainerWait(ctx, c.id, client.ContainerWaitOptions{Condition: ctr.WaitConditionNotRunning})
		var err error
		select {
		case <-w.Result:
		case err = <-w.Error:
		}
		r, ierr := c.d.cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{})
		switch {
		case ierr == nil && r.Container.State != nil && !r.Container.State.Running:
			return exitInfo(r.Container.State), true
		case ierr != nil && cerrdefs.IsNotFound(ierr):
			return driver.ExitInfo{}, false
		case ierr == nil:
			failing = time.Time{} // still running: the wait was cut short
		case failing.IsZero():
			failing = time.Now()
		case time.Since(failing) > time.Minute:
			c.d.log.Warn("docker daemon stopped answering: instance given up", "container", c.name, "error", errors.Join(err, ierr))
			return driver.ExitInfo{}, false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func exitInfo(st *ctr.State) driver.ExitInfo {
	info := driver.ExitInfo{Code: st.ExitCode, OOM: st.OOMKilled}
	if st.ExitCode > 128 && st.ExitCode < 128+65 {
		if name := unix.SignalName(unix.Signal(st.ExitCode - 128)); name != "" {
			info.Signal = name
			info.Code = -1
		}
	}
	return info
}

// Kill implements driver.Instance: it kills the container, which is then
// removed.
func (c *container) Kill(reason string) error {
	c.setReason(reason)
	if isDone(c.done) || c.id == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.d.cli.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: "KILL"})
	if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) {
		return nil // gone, or not running
	}
	return fmt.Errorf("docker: kill %s: %w", c.name, err)
}

// setReason records why Nimbus kills the container; the first reason wins.
func (c *container) setReason(reason string) {
	c.mu.Lock()
	if c.reason == "" && !isDone(c.done) {
		c.reason = reason
	}
	c.mu.Unlock()
}

// broken is called when the response stream fails. The server holds both
// ends of each FIFO, so that happens only when wait closed them, or when
// the worker wrote something that is not a frame: then it is of no use.
func (c *container) broken(error) {
	go func() {
		select {
		case <-c.done:
		case <-time.After(time.Second):
			c.Kill("broke the protocol")
		}
	}()
}

// Done implements driver.Instance.
func (c *container) Done() <-chan struct{} { return c.done }

// Exit implements driver.Instance.
func (c *container) Exit() driver.ExitInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exit
}

// Stats implements driver.Instance: the container's name, and the pid and
// resident memory of the shim in it (docker-init's child).
func (c *container) Stats() driver.Stats {
	pid := int(c.pid.Load())
	if pid == 0 && c.init.Load() > 0 {
		if pid = shimPID(int(c.init.Load())); pid > 0 {
			c.pid.Store(int64(pid))
		}
	}
	return driver.Stats{ID: c.name, PID: pid, RSSKiB: rssKiB(pid)}
}

// shimPID is the first child of docker-init (pid init on the host), or 0.
func shimPID(init int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(init) + "/task/" + strconv.Itoa(init) + "/children")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

func rssKiB(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	_, v, ok := strings.Cut(string(b), "VmRSS:")
	if !ok {
		return 0
	}
	v, _, _ = strings.Cut(v, "\n")
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
