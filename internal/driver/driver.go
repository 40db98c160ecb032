package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Driver starts instances of functions under one isolation technology.
type Driver interface {
	// Name is the name functions select the driver by: "sandbox", "docker", "microvm".
	Name() string
	// Available reports nil, or why the driver cannot start instances now.
	// The error wraps fn.ErrUnavailable.
	Available(ctx context.Context) error
	// Start starts an instance and loads the function's handler in it. A
	// handler that cannot be loaded gives a *runtime.Error; a driver that
	// cannot start anything gives an error wrapping fn.ErrUnavailable.
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
}

// Optional capabilities: a driver that has one implements its interface,
// with a compile-time guard beside it (var _ driver.Closer = (*Driver)(nil)),
// and the server finds it by type assertion.

// Closer is a driver that holds something of its own (warm workers, pooled
// containers, VMs and their files) to release at shutdown.
type Closer interface {
	Close() error
}

// ProtectionReporter is a driver that isolates instances and says how:
// each protection's name, and "on", or "off: why".
type ProtectionReporter interface {
	Protections() map[string]string
}

// DetailReporter is a driver with more to say in GET /api/system (the
// microVM accelerator and why it was chosen, say).
type DetailReporter interface {
	Details() map[string]any
}

// Confiner is a driver that can hold a helper process of the server's own
// (a syntax checker, a build) to a memory limit, as it holds instances:
// pid is put under limitMB megabytes until release is called, after the
// process has exited.
type Confiner interface {
	Confine(pid, limitMB int) (release func(), err error)
}

// Freezer is an instance that can be frozen between calls, so that what
// its handler left running uses no CPU while it is idle, and thawed before
// the next. Freeze returns an error wrapping ErrNotSupported when this
// instance cannot be frozen at all. Kill stops a frozen instance too.
type Freezer interface {
	Freeze() error
	Thaw() error
}

// ErrNotSupported says a driver cannot do what was asked of this instance.
var ErrNotSupported = errors.New("not supported")

// Availability is whether a driver can run functions now and, when not,
// why: what the API, GET /api/system and the start-up log show.
type Availability struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// CheckAvailability asks d whether it can run functions now.
func CheckAvailability(ctx context.Context, d Driver) Availability {
	if err := d.Available(ctx); err != nil {
		return Availability{Reason: err.Error()}
	}
	return Availability{Available: true}
}

// Warning is what to tell whoever picks the driver called name that it
// cannot run functions now, or "" when it can.
func (a Availability) Warning(name string) string {
	if a.Available {
		return ""
	}
	return fmt.Sprintf("driver %q cannot run functions now: %s", name, a.Reason)
}

// InstanceSpec is what an instance is started for.
type InstanceSpec struct {
	Function *fn.Function
	LogLimit int // bytes of logs kept per invocation; 0 means the default

	// Code is the local directory holding the function's files. It is
	// shared by every instance of every function with that code: a driver
	// shows it to the instance read-only and never writes into it. When it
	// is "", the driver writes Function.Files itself (specs built by hand).
	Code string
	// Layers are local layer directories in Lambda's layout (python/,
	// nodejs/node_modules/), read-only like Code: instances see layer i at
	// LayerDir(i), and the runtime shims search them in this order.
	Layers []string
}

// LayersDir is where instances see their layers: layer i is LayersDir/<i>.
const LayersDir = "/opt/layers"

// LayerDir is where instances see layer i.
func LayerDir(i int) string { return LayersDir + "/" + strconv.Itoa(i) }

// LayerDirs are where instances of spec see its layers, in order.
func (s InstanceSpec) LayerDirs() []string {
	if len(s.Layers) == 0 {
		return nil
	}
	dirs := make([]string, len(s.Layers))
	for i := range s.Layers {
		dirs[i] = LayerDir(i)
	}
	return dirs
}

// Check reports whether spec's code and layer directories are directories
// a driver can show an instance: absolute paths of existing directories.
// They are the server's, never a user's: an error here is the server's.
func (s InstanceSpec) Check() error {
	check := func(what, dir string) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%s %q: not an absolute path", what, dir)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s %q: not a directory", what, dir)
		}
		return nil
	}
	if s.Code != "" {
		if err := check("code directory", s.Code); err != nil {
			return err
		}
	}
	for i, l := range s.Layers {
		if err := check("layer "+strconv.Itoa(i), l); err != nil {
			return err
		}
	}
	return nil
}

// Init is the init frame that loads spec's function from taskDir, with env
// set on top of the worker's environment and the layers where instances
// see them (LayerDirs).
func (s InstanceSpec) Init(taskDir string, env map[string]string) runtime.Init {
	f := s.Function
	return runtime.Init{
		Handler:         f.Handler,
		TaskDir:         taskDir,
		FunctionName:    f.Name,
		FunctionVersion: f.VersionName(),
		MemoryMB:        f.Memory,
		LogLimit:        s.LogLimit,
		Env:             env,
		Concurrency:     f.Concurrency,
		Layers:          s.LayerDirs(),
	}
}

// Instance is one started worker serving one function version.
type Instance interface {
	// Invoke runs the handler once. ctx carries the deadline: when it
	// expires the instance is killed and ctx's error returned. A worker that
	// dies under the call gives an *ExitError.
	Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error)
	// Stats reports what the instance holds now.
	Stats() Stats
	// Kill stops the instance for reason; it is safe to call more than once.
	Kill(reason string) error
	// Done is closed once the instance has stopped; Exit then tells why.
	Done() <-chan struct{}
	Exit() ExitInfo
}

// Stats describes a running instance.
type Stats struct {
	ID     string `json:"id"`
	PID    int    `json:"pid,omitempty"`
	RSSKiB int64  `json:"rssKiB,omitempty"`
}

// ExitInfo says why an instance stopped.
type ExitInfo struct {
	Code   int    `json:"code"`             // exit status, -1 when signalled
	Signal string `json:"signal,omitempty"` // the signal that ended it
	OOM    bool   `json:"oom,omitempty"`    // killed for exceeding its memory
	Reason string `json:"reason,omitempty"` // why Nimbus killed it, if it did
}

func (e ExitInfo) String() string {
	switch {
	case e.OOM:
		return "killed for exceeding its memory limit"
	case e.Reason != "":
		return "killed: " + e.Reason
	case e.Signal != "":
		return "killed by signal " + e.Signal
	}
	return fmt.Sprintf("exited with status %d", e.Code)
}

// ExitError is returned by Invoke when the worker died under the call.
type ExitError struct{ Exit ExitInfo }

func (e *ExitError) Error() string { return "worker " + e.Exit.String() }

// NewRequest builds an invoke request.
func NewRequest(id string, event json.RawMessage, deadlineMs int64) *runtime.Request {
	return &runtime.Request{Type: runtime.TypeInvoke, ID: id, Event: event, DeadlineMs: deadlineMs}
}

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Factory builds a driver from the server's configuration.
type Factory func(cfg Config) (Driver, error)

// Config is what every driver may need from the server.
type Config struct {
	DataDir      string // a directory the driver may own below
	Lookup       func(string) (string, bool)
	Logger       Logger
	Interpreters runtime.Interpreters // the host's interpreters by runtime, found once
	Shims        runtime.Shims        // the runtime shims installed on the host
}

// WithLogger returns a copy of c with log.
func (c Config) WithLogger(log Logger) Config {
	c.Logger = log
	return c
}

// Logger is the part of *slog.Logger drivers use.
type Logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Debug(msg string, args ...any)
}

// Discard is the Logger of a driver whose Config has none.
var Discard Logger = slog.New(slog.DiscardHandler)

// Register makes a driver available by name; a duplicate name panics.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("driver: Register called twice for " + name)
	}
	registry[name] = f
}

// Names lists the registered drivers, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open builds the registered driver called name.
func Open(name string, cfg Config) (Driver, error) {
	regMu.Lock()
	f, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("driver %q: %w", name, fn.ErrNotFound)
	}
	return f(cfg)
}

// InitError is returned by Start when the function's handler could not be
// loaded: a syntax or import error, a missing handler, an exception at
// import. Logs holds what the module printed while loading.
type InitError struct {
	Err  *runtime.Error
	Logs string
}

func (e *InitError) Error() string { return "load handler: " + e.Err.Error() }
func (e *InitError) Unwrap() error { return e.Err }
