package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Name is the name functions select this driver by.
const Name = "docker"

func init() {
	driver.Register(Name, func(cfg driver.Config) (driver.Driver, error) { return New(cfg) })
}

// Driver runs instances in containers of a Docker daemon on this host.
type Driver struct {
	cfg     driver.Config
	opts    options
	log     driver.Logger
	cli     *client.Client
	dir     string // the driver's directory below the data dir
	instDir string // one directory per container, bind-mounted into it
	shimDir string // the installed shims, bind-mounted at /var/runtime
	relay   string // this executable, bind-mounted as the Runtime API relay ("" if unknown)
	server  string // this server's id, kept in dir: labels its containers
	owner   string // this process: labels its containers

	images *imageResolver
	pool   *pool
	oom    *oomWatch

	mu     sync.Mutex
	live   map[*container]struct{} // started and not yet removed
	closed bool

	up      atomic.Bool  // the daemon answered once: leftovers are gone
	pinged  atomic.Int64 // when the daemon last answered, UnixNano
	upMu    sync.Mutex
	warming atomic.Bool

	ctx    context.Context // the driver's lifetime: background work
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Closer = (*Driver)(nil)
)

// New builds the driver. When the daemon answers, it removes the containers
// an earlier run of this server left behind and, if this data dir has run
// docker functions before, starts filling the pool. A daemon that does not
// answer is not an error: docker functions are unavailable until it does.
func New(cfg driver.Config) (*Driver, error) {
	opts, err := readOptions(cfg.Lookup)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = driver.Discard
	}
	cli, err := newClient(opts.host)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	dir := filepath.Join(cfg.DataDir, "docker")
	d := &Driver{
		cfg:     cfg,
		opts:    opts,
		log:     cfg.Logger,
		cli:     cli,
		dir:     dir,
		instDir: filepath.Join(dir, "instances"),
		live:    map[*container]struct{}{},
	}
	d.shimDir = cfg.Shims.Dir
	if exe, err := os.Executable(); err == nil {
		d.relay = exe
	}
	if d.server, err = serverID(dir); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker: %w", err)
	}
	d.owner = ownerID()
	d.images = newImageResolver(d)
	d.pool = newPool(d, opts.poolSize)
	d.oom = newOOMWatch(d)
	d.ctx, d.cancel = context.WithCancel(context.Background())

	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
	defer cancel()
	if err := d.Available(ctx); err != nil {
		d.log.Info("docker functions are unavailable until a daemon answers", "error", err)
	} else if _, err := os.Stat(filepath.Join(dir, usedMarker)); err == nil {
		d.warm()
	}
	return d, nil
}

func newClient(host string) (*client.Client, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	return client.New(opts...)
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Available implements driver.Driver: nil when the daemon answers a ping
// (a success is trusted for a second: metrics ask often). The first
// success removes what an earlier run left behind.
func (d *Driver) Available(ctx context.Context) error {
	if t := d.pinged.Load(); t != 0 && time.Since(time.Unix(0, t)) < time.Second {
		return nil
	}
	if err := d.ping(ctx); err != nil {
		return err
	}
	d.pinged.Store(time.Now().UnixNano())
	if !d.up.Load() {
		d.upMu.Lock()
		if !d.up.Load() {
			// However short the caller's deadline, the clean-up gets its time.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			d.removeLeftovers(rctx)
			cancel()
			d.resetDir()
			d.up.Store(true)
		}
		d.upMu.Unlock()
	}
	return nil
}

func (d *Driver) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := d.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("docker: no daemon answers at %s: %v: %w", d.hostName(), err, fn.ErrUnavailable)
	}
	return nil
}

func (d *Driver) hostName() string {
	if d.opts.host != "" {
		return d.opts.host
	}
	return client.DefaultDockerHost
}

// resetDir empties the instances directory: what is there belongs to
// containers that are gone.
func (d *Driver) resetDir() {
	if err := os.RemoveAll(d.instDir); err != nil {
		d.log.Warn("clean instance directories", "error", err)
	}
	if err := os.MkdirAll(d.instDir, 0o755); err != nil {
		d.log.Warn("create instance directory", "error", err)
	}
}

// usedMarker, in the driver's directory, says this data dir has run docker
// functions: the next start warms the pool at once.
const usedMarker = "used"

// Start implements driver.Driver: it takes a started generic container from
// the pool (or starts one), hands it the function's code, layers and
// environment, and loads the handler.
func (d *Driver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	f := spec.Function
	r, ok := runtime.Lookup(f.Runtime)
	if !ok {
		return nil, fmt.Errorf("docker: runtime %q: %w", f.Runtime, fn.ErrInvalid)
	}
	if r.Relayed() && d.relay == "" {
		return nil, fmt.Errorf("docker: the server's executable is unknown: no Runtime API relay for %s: %w", f.Runtime, fn.ErrUnavailable)
	}
	if err := spec.Check(); err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	if d.shimDir == "" {
		return nil, fmt.Errorf("docker: no runtime shims installed: %w", fn.ErrUnavailable)
	}
	if !d.up.Load() {
		if err := d.Available(ctx); err != nil {
			return nil, err
		}
	}
	d.warm()
	key := keyOf(f)
	c := d.pool.take(ctx, key)
	if c == nil {
		var err error
		if c, err = d.create(ctx, key, f); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
	}
	c.function = f.ID
	if err := c.give(spec); err != nil {
		c.Kill("could not give it the function's code")
		return nil, fmt.Errorf("docker: %w: %w", err, fn.ErrUnavailable)
	}
	if err := c.Load(ctx, spec.Init(taskDir, driver.FunctionEnv(f, taskDir))); err != nil {
		return nil, err
	}
	c.loadedUs.Store(monotonicUs())
	c.Stats() // learns the shim's pid, which an OOM kill in the kernel's log names
	return c, nil
}

// Warm starts filling the pool now, rather than at the first Start.
func (d *Driver) Warm() { d.warm() }

// warm marks this data dir as running docker functions and starts the
// background job that keeps the pool filled.
func (d *Driver) warm() {
	if d.warming.Swap(true) {
		return
	}
	if err := os.WriteFile(filepath.Join(d.dir, usedMarker), nil, 0o644); err != nil {
		d.log.Debug("write marker", "error", err)
	}
	if d.opts.poolSize == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		d.pool.run(d.ctx, d.opts.memoryMB)
	}()
}

// track and untrack keep the set of containers Close must remove.
func (d *Driver) track(c *container) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.live[c] = struct{}{}
	return true
}

func (d *Driver) untrack(c *container) {
	d.mu.Lock()
	delete(d.live, c)
	d.mu.Unlock()
}

// closeTimeout bounds how long Close waits for containers to go.
const closeTimeout = time.Minute

// Close stops the pool and removes every container the driver started,
// waiting for them up to a minute. The server calls it at shutdown.
func (d *Driver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	live := make([]*container, 0, len(d.live))
	for c := range d.live {
		live = append(live, c)
	}
	d.mu.Unlock()
	d.cancel()
	d.bg.Wait()
	for _, c := range live {
		go c.Kill("driver closed")
	}
	var err error
	for _, c := range live {
		select {
		case <-c.Done():
		case <-ctx.Done():
			err = fmt.Errorf("docker: close: %d containers not yet removed: %w", len(live), ctx.Err())
		}
		if err != nil {
			break
		}
	}
	d.sweep(ctx)
	d.cli.Close()
	return err
}

// sweep removes whatever container of this driver is still there.
func (d *Driver) sweep(ctx context.Context) {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", labelOwner+"="+d.owner),
	})
	if err != nil {
		return
	}
	for _, c := range res.Items {
		d.log.Warn("removing a container the driver lost track of", "container", firstName(c.Names))
		_, _ = d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// unavailable wraps an error of the daemon as fn.ErrUnavailable: whatever
// went wrong, the driver cannot start instances now.
func unavailable(what string, err error) error {
	if errors.Is(err, fn.ErrUnavailable) {
		return fmt.Errorf("docker: %s: %w", what, err)
	}
	return fmt.Errorf("docker: %s: %v: %w", what, err, fn.ErrUnavailable)
}
