package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	nimbusruntime "github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
)

// Paths inside a container.
const (
	ioDir     = "/var/nimbus" // the protocol FIFOs: req (fd 3), resp (fd 4)
	taskDir   = "/var/task"   // the function's files
	shimMount = "/var/runtime"
	layersDir = driver.LayersDir // the function's layers, <i> each
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
	}
	// The daemon can take over a second to report a container stopped.
	c.Base = driver.NewBase(c.kill, 2*time.Second)
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
	c.Connect(c.resp, c.req)
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
	if r, ok := nimbusruntime.Lookup(key.runtime); ok && r.Relayed() {
		// The Runtime API relay, this binary mounted (hostConfig): it
		// serves 127.0.0.1:9001 in the container's own network namespace,
		// whatever its network mode.
		cmd = "exec " + runtimeapi.RelayPath
	} else if ok {
		// The images have the interpreter in PATH; the descriptors'
		// arguments need no quoting.
		cmd = "exec " + strings.Join(r.ShimCommand(r.Command, shimMount+"/"+r.Shim, key.memoryMB), " ")
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
	mounts := []mount.Mount{
		{Type: mount.TypeBind, Source: filepath.Join(dir, "io"), Target: ioDir, ReadOnly: true},
		{Type: mount.TypeBind, Source: filepath.Join(dir, "task"), Target: taskDir, ReadOnly: true},
		{Type: mount.TypeBind, Source: filepath.Join(dir, "layers"), Target: layersDir, ReadOnly: true},
		{Type: mount.TypeBind, Source: d.shimDir, Target: shimMount, ReadOnly: true},
	}
	if r, ok := nimbusruntime.Lookup(key.runtime); ok && r.Relayed() && d.relay != "" {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: d.relay, Target: runtimeapi.RelayPath, ReadOnly: true})
	}
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
		Mounts:         mounts,
	}
}

// makeDir creates the instance directory: the FIFOs and an empty task/
// and layers/. The server opens both FIFOs read-write, so opening them
// never blocks and the container's opens find a peer at once; death is
// learnt from the daemon, not from EOF.
func (c *container) makeDir() error {
	io := filepath.Join(c.dir, "io")
	if err := os.MkdirAll(io, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"task", "layers"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return err
		}
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

// give hands the container spec's function: its code appears at
// /var/task and its layers at /opt/layers/<i>, through the directories
// bind-mounted there when the container started, generic, for the pool.
// The container cannot be given a mount of its own after it started (that
// would take mount propagation from the host, root, and a daemon that
// shares the server's mount namespace), so code and layers are hard-linked
// into those directories (driver.LinkTree): no data is copied, every byte
// and executable bit is the code directory's own, and the binds are
// read-only. Files given by hand (spec.Code "") are written.
func (c *container) give(spec driver.InstanceSpec) error {
	task := filepath.Join(c.dir, "task")
	if spec.Code == "" {
		if err := driver.WriteFiles(task, spec.Function.Files); err != nil {
			return fmt.Errorf("write code: %w", err)
		}
	} else if err := driver.LinkTree(spec.Code, task); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	for i, l := range spec.Layers {
		if err := driver.LinkTree(l, filepath.Join(c.dir, "layers", strconv.Itoa(i))); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
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
