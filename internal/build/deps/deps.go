package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Settings the server reads into Config (the names are the contract; the
// server's configuration parses them).
const (
	EnvPipIndexURL  = "NIMBUS_PIP_INDEX_URL"  // pip's --index-url
	EnvPipFindLinks = "NIMBUS_PIP_FIND_LINKS" // pip's --find-links: a directory of wheels, or a URL
	EnvNpmRegistry  = "NIMBUS_NPM_REGISTRY"   // npm's --registry
	EnvBuildTimeout = "NIMBUS_BUILD_TIMEOUT"  // the most one build may take
	EnvGo           = "NIMBUS_GO"             // the go command of Go builds
	EnvGoProxy      = "NIMBUS_GOPROXY"        // GOPROXY of Go builds
)

// Defaults of Config's zero values.
const (
	DefaultTimeout   = 10 * time.Minute
	DefaultMemoryMB  = 2048
	DefaultUID       = 65534 // nobody
	DefaultGID       = 65534 // nogroup
	DefaultMaxBuilds = 2
)

// Config says where layers live and how builds run. Zero values take the
// defaults above.
type Config struct {
	// Dir holds the layers, one directory per key (Dir/<key>/), and the
	// builds in progress (Dir/tmp/). It must be on one file system.
	Dir string
	// Interpreters are the host's python3 and node: pip runs as
	// "python3 -m pip", npm as the npm beside node.
	Interpreters runtime.Interpreters
	// Where packages come from. PipFindLinks alone (a directory of wheels,
	// which the build user must be able to read) makes Python builds
	// offline; empty settings use pip's and npm's own defaults (PyPI,
	// registry.npmjs.org).
	PipIndexURL, PipFindLinks, NpmRegistry string
	// Go is the go command that builds Go functions ("" : they cannot be
	// built; FindGo finds it). GoProxy is their GOPROXY (DefaultGoProxy
	// when ""), GoSumDB their GOSUMDB when they need the network (Go's
	// default when ""), and GoCache holds Go's build and module caches
	// between builds (Dir's sibling go-cache when "").
	Go, GoProxy, GoSumDB, GoCache string
	// Timeout bounds one build, from the start of its process to its end
	// (DefaultTimeout).
	Timeout time.Duration
	// MemoryMB bounds one build's memory, when Confine is set
	// (DefaultMemoryMB).
	MemoryMB int
	// Confine puts process pid under limitMB megabytes until release is
	// called after it has exited: the sandbox driver's driver.Confiner.
	// Nil leaves builds' memory unbounded.
	Confine func(pid, limitMB int) (release func(), err error)
	// UID and GID are the unprivileged user builds run as when the server
	// is root (DefaultUID, DefaultGID; 0 means the default: a build never
	// runs as root).
	UID, GID int
	// MaxBuilds is how many builds run at once; more wait their turn
	// (DefaultMaxBuilds). Each may use MemoryMB.
	MaxBuilds int
}

// A Builder builds dependency layers; its methods are safe for concurrent
// use.
type Builder struct {
	cfg       Config
	dir, tmp  string
	isolate   bool // root: builds run in the build sandbox
	slots     chan struct{}
	checkPip  sync.Map // interpreter path → true once it has shown it has pip
	mu        sync.Mutex
	keys      map[string]*keyLock // keys being built or waited for
	inProcess map[string]bool     // names in tmp of builds and removals in progress

	goOnce        sync.Once // asks the go command its version and GOROOT
	goVer, goRoot string
	goErr         error
}

// New returns a Builder for cfg, creating cfg.Dir and its tmp directory.
func New(cfg Config) (*Builder, error) {
	if cfg.Dir == "" {
		return nil, errors.New("deps: no layer directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("deps: %w", err)
	}
	cfg.Dir = dir
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = DefaultMemoryMB
	}
	if cfg.UID <= 0 {
		cfg.UID = DefaultUID
	}
	if cfg.GID <= 0 {
		cfg.GID = DefaultGID
	}
	if cfg.MaxBuilds <= 0 {
		cfg.MaxBuilds = DefaultMaxBuilds
	}
	if cfg.GoProxy == "" {
		cfg.GoProxy = DefaultGoProxy(nil)
	}
	if cfg.GoCache == "" {
		cfg.GoCache = filepath.Join(filepath.Dir(dir), "go-cache")
	}
	// A directory of wheels is named by its absolute path: the build's
	// working directory is not the server's.
	if fl := cfg.PipFindLinks; fl != "" && !strings.Contains(fl, ":") && !filepath.IsAbs(fl) {
		if cfg.PipFindLinks, err = filepath.Abs(fl); err != nil {
			return nil, fmt.Errorf("deps: %s: %w", EnvPipFindLinks, err)
		}
	}
	b := &Builder{
		cfg:       cfg,
		dir:       dir,
		tmp:       filepath.Join(dir, "tmp"),
		isolate:   os.Geteuid() == 0,
		slots:     make(chan struct{}, cfg.MaxBuilds),
		keys:      map[string]*keyLock{},
		inProcess: map[string]bool{},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("deps: %w", err)
	}
	if err := os.MkdirAll(b.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("deps: %w", err)
	}
	return b, nil
}

// Dir returns the directory of the layer with key, built or not.
func (b *Builder) Dir(key string) string { return filepath.Join(b.dir, key) }

// Build returns the layer directory of p, building it unless it exists: a
// cache hit runs nothing and says so in log and in cached. Concurrent
// Builds of one key build it once; the others wait and find it cached (or
// build it themselves if that build failed). The build's output streams
// to log, line by line, as it runs. A failed build returns a *BuildError.
func (b *Builder) Build(ctx context.Context, p *Plan, log io.Writer) (dir string, cached bool, err error) {
	if log == nil {
		log = io.Discard
	}
	dir = b.Dir(p.Key)
	if isDir(dir) {
		fmt.Fprintf(log, "layer %s is cached: nothing to build\n", p.Key)
		return dir, true, nil
	}
	unlock, err := b.lockKey(ctx, p.Key)
	if err != nil {
		return "", false, fmt.Errorf("deps: wait for another build of layer %s: %w", p.Key, err)
	}
	defer unlock()
	if isDir(dir) {
		fmt.Fprintf(log, "layer %s was built meanwhile: nothing to build\n", p.Key)
		return dir, true, nil
	}
	select {
	case b.slots <- struct{}{}:
		defer func() { <-b.slots }()
	case <-ctx.Done():
		return "", false, fmt.Errorf("deps: wait for a free build slot: %w", ctx.Err())
	}
	if err := b.build(ctx, p, dir, log); err != nil {
		return "", false, err
	}
	return dir, false, nil
}

// BuildError is a build that ran and failed: its command failed, was
// killed, or timed out.
type BuildError struct {
	Runtime string
	Key     string
	Err     error    // why: "pip exited with status 1", "timed out after 10m0s" (wrapping context.DeadlineExceeded)
	Output  []string // the last lines of its output
}

func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deps: build %s layer %s: %v", e.Runtime, e.Key, e.Err)
	if len(e.Output) == 0 {
		b.WriteString(" (no output)")
		return b.String()
	}
	b.WriteString("; its last output:")
	for _, l := range e.Output {
		b.WriteString("\n")
		b.WriteString(l)
	}
	return b.String()
}

func (e *BuildError) Unwrap() error { return e.Err }

// keyLock serialises the builds of one key.
type keyLock struct {
	ch   chan struct{}
	refs int // holders and waiters
}

// lockKey waits until no other Build of key runs, or ctx is done.
func (b *Builder) lockKey(ctx context.Context, key string) (unlock func(), err error) {
	b.mu.Lock()
	l := b.keys[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		b.keys[key] = l
	}
	l.refs++
	b.mu.Unlock()
	release := func() {
		b.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(b.keys, key)
		}
		b.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// offline reports whether every place Python packages may come from is a
// local directory, so that a Python build needs no network at all.
func (c *Config) offline() bool {
	if c.PipFindLinks == "" && c.PipIndexURL == "" {
		return false // PyPI
	}
	for _, s := range []string{c.PipFindLinks, c.PipIndexURL} {
		if s != "" && localPath(s) == "" {
			return false
		}
	}
	return true
}

// localPath is the directory a package source names, "" when it is not
// local: an absolute path or a file: URL.
func localPath(s string) string {
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	if u, err := url.Parse(s); err == nil && u.Scheme == "file" && filepath.IsAbs(u.Path) {
		return filepath.Clean(u.Path)
	}
	return ""
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}
