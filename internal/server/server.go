package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/api"
	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/bus"
	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
	"github.com/nimbusfaas/nimbus/internal/metrics"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/trigger/async"
	"github.com/nimbusfaas/nimbus/internal/trigger/schedule"
	"github.com/nimbusfaas/nimbus/internal/web"

	// The built-in drivers.
	_ "github.com/nimbusfaas/nimbus/internal/driver/docker"
	_ "github.com/nimbusfaas/nimbus/internal/driver/microvm"
	_ "github.com/nimbusfaas/nimbus/internal/driver/sandbox"
)

// Server is a configured Nimbus.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   store.Store
	bus     *bus.Bus
	async   *async.Queue
	sched   *schedule.Scheduler
	engine  *engine.Engine
	fns     *functions.Service
	metrics *metrics.Recorder
	http    *http.Server
	ln      net.Listener
	drivers map[string]driver.Driver
	interp  runtime.Interpreters
	auth    *authParts

	stopping chan struct{} // closed by Shutdown
	stopOnce sync.Once
}

// New opens the store, finds the interpreters, opens the drivers and wires
// the API. lookup is the environment.
func New(ctx context.Context, cfg config.Config, lookup func(string) (string, bool), log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b, err := bus.Open(ctx, bus.Config{
		DataDir: dataDir,
		URL:     cfg.NATSURL, CredsFile: cfg.NATSCreds, User: cfg.NATSUser, Password: cfg.NATSPassword,
		Logger: log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	// closeAll undoes what New opened when a later step fails.
	closeAll := func() {
		b.Close(context.WithoutCancel(ctx))
		st.Close()
	}
	az, err := openAuth(ctx, cfg, st, dataDir, log)
	if err != nil {
		closeAll()
		return nil, err
	}
	interp, errs := runtime.FindInterpreters(ctx, lookup)
	for _, err := range errs {
		log.Warn("runtime not available", "error", err)
	}
	shims, err := runtime.InstallShims(filepath.Join(dataDir, "runtime"))
	if err != nil {
		closeAll()
		return nil, err
	}
	dcfg := driver.Config{DataDir: dataDir, Lookup: lookup, Logger: log, Interpreters: interp, Shims: shims}
	drivers := map[string]driver.Driver{}
	for _, name := range driver.Names() {
		d, err := driver.Open(name, dcfg.WithLogger(log.With("component", "driver", "driver", name)))
		if err != nil {
			log.Warn("driver not available", "driver", name, "error", err)
			continue
		}
		if a := driver.CheckAvailability(ctx, d); !a.Available {
			log.Warn("driver cannot run functions now", "driver", name, "error", a.Reason)
		}
		drivers[name] = d
	}
	reg := metrics.NewRegistry()
	mcfg := metrics.Config{
		Registry:     reg,
		SaveInterval: metricsSaveInterval,
		Retention:    cfg.MetricsRetention,
		Logger:       log,
	}
	if ms, ok := store.Store(st).(store.MetricsStore); ok {
		mcfg.Store = minuteStore{ms}
	} else {
		log.Warn("the store keeps no metrics: charts start empty after a restart", "store", fmt.Sprintf("%T", st))
	}
	rec := metrics.New(mcfg)
	var fns *functions.Service // the engine's source of code, made below
	eng := engine.New(engine.Config{
		Drivers: drivers,
		Code: codeSource(func(ctx context.Context, f *fn.Function) (string, []string, error) {
			return fns.Code(ctx, f)
		}),
		Records:           st,
		Secrets:           az.secrets,
		Metrics:           rec,
		Logger:            log,
		QueueTimeout:      cfg.QueueTimeout,
		KeepAlive:         cfg.KeepAlive,
		Adaptive:          cfg.Adaptive,
		ReapInterval:      reapInterval(cfg),
		FreezeAfter:       cfg.FreezeAfter,
		LogLimit:          cfg.LogLimit,
		Retention:         cfg.Retention,
		FlushInterval:     50 * time.Millisecond,
		RecordBuffer:      cfg.RecordBuffer,
		RecordBufferBytes: cfg.RecordBufferBytes,
	})
	if err := errors.Join(metrics.RegisterEngine(reg, eng), bus.RegisterMetrics(reg, b)); err != nil {
		closeAll()
		return nil, err
	}
	checker := newChecker(interp, drivers, log)
	bcfg := deps.Config{
		Dir:          filepath.Join(dataDir, "layers", "built"),
		Interpreters: interp,
		PipIndexURL:  cfg.PipIndexURL, PipFindLinks: cfg.PipFindLinks, NpmRegistry: cfg.NpmRegistry,
		Timeout:  cfg.BuildTimeout,
		MemoryMB: cfg.BuildMemoryMB,
		Go:       cfg.Go,
		GoProxy:  cfg.GoProxy,
		GoCache:  filepath.Join(dataDir, "go-cache"),
	}
	if bcfg.Go == "" {
		bcfg.Go = deps.FindGo(lookup)
	}
	if bcfg.GoProxy == "" {
		bcfg.GoProxy = deps.DefaultGoProxy(lookup)
	}
	if c, ok := drivers[fn.DefaultDriver].(driver.Confiner); ok {
		bcfg.Confine = c.Confine
	}
	builder, err := deps.New(bcfg)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("dependency builds: %w", err)
	}
	fns = functions.New(functions.Config{
		Store:    st,
		Engine:   eng,
		CodeDir:  filepath.Join(dataDir, "code"),
		LayerDir: filepath.Join(dataDir, "layers", "uploaded"),
		Events:   rec.Events(),
		Audit:    az.audit,
		Secrets:  az.secrets,
		Builder:  depsBuilder{builder},
		Limits: build.Limits{
			ArchiveBytes: cfg.MaxArchiveBytes, UnpackedBytes: cfg.MaxUnpackedBytes, Files: cfg.MaxArchiveFiles,
		},
		CheckSyntax: func(ctx context.Context, rt string, files map[string]string) error {
			err := checker.Check(ctx, rt, files)
			var se *runtime.SyntaxError
			switch {
			case errors.As(err, &se):
				return fn.Invalid("code", se.Error())
			case errors.Is(err, runtime.ErrCheckKilled):
				return fn.Invalid("code", fmt.Sprintf("too large to check: the syntax checker needed more than %d MB", checkMemoryMB))
			}
			if err != nil {
				// The checker itself could not run (no interpreter): the
				// first call will report what is wrong.
				log.Warn("syntax check skipped", "runtime", rt, "error", err)
			}
			return nil
		},
		Defaults: fn.Defaults{TimeoutMs: cfg.DefaultTimeoutMs, MemoryMB: cfg.DefaultMemoryMB},
		Logger:   log,
	})
	queue, err := async.Open(ctx, async.Config{
		Bus: b, Functions: fns, Engine: eng, AckWait: cfg.AsyncAckWait, Logger: log,
	})
	if err == nil {
		err = async.RegisterMetrics(reg, queue, func(id string) string {
			if f, err := fns.Resolve(context.Background(), id); err == nil {
				return f.Name
			}
			return ""
		})
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	sched, err := schedule.New(schedule.Config{
		Bus: b, Functions: fns, Logger: log,
		Enqueue: func(ctx context.Context, f *fn.Function, trigger, qualifier string, event json.RawMessage, key string) (string, error) {
			a, err := queue.Enqueue(ctx, f, async.Call{Trigger: trigger, Qualifier: qualifier, Event: event, IdempotencyKey: key})
			return a.ExecutionID, err
		},
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	az.secrets.UsedBy = fns.UsedBy
	s := &Server{cfg: cfg, log: log, store: st, bus: b, async: queue, sched: sched, engine: eng, fns: fns, metrics: rec, drivers: drivers, interp: interp, stopping: make(chan struct{}), auth: az}
	handler := api.New(api.Config{
		Store:        st,
		Engine:       eng,
		Functions:    fns,
		Metrics:      rec,
		APIKey:       cfg.APIKey,
		Keys:         az.keys,
		Secrets:      az.secrets,
		Audit:        az.audit,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Logger:       log,
		System:       s.facts,
		Interpreters: s.interp,
		Gatherer:     reg,
		UI:           web.Handler(),
		Async:        queue,

		LambdaRegion:  cfg.LambdaRegion,
		LambdaAccount: cfg.LambdaAccount,

		BindHost:       cfg.Host,
		AllowedHosts:   cfg.AllowedHosts,
		AllowedOrigins: cfg.AllowedOrigins,
	})
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	s.http.RegisterOnShutdown(handler.CloseStreams) // event streams never go idle by themselves
	return s, nil
}

// depsBuilder is a deps.Builder as the functions service uses it.
type depsBuilder struct{ b *deps.Builder }

func (d depsBuilder) Build(ctx context.Context, rt, srcDir string, scripts bool, log io.Writer) (key, dir string, cached bool, err error) {
	p, ok, err := d.b.Plan(rt, srcDir, scripts)
	if err != nil || !ok {
		return "", "", false, err
	}
	dir, cached, err = d.b.Build(ctx, p, log)
	return p.Key, dir, cached, err
}

func (d depsBuilder) Layer(key string) string {
	dir := d.b.Dir(key)
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

func (d depsBuilder) Collect(keep map[string]bool) ([]string, error) { return d.b.Collect(keep) }

// codeSource is a function as an engine.CodeSource.
type codeSource func(ctx context.Context, f *fn.Function) (string, []string, error)

func (c codeSource) Code(ctx context.Context, f *fn.Function) (string, []string, error) {
	return c(ctx, f)
}

// facts is what GET /api/system reports about this host.
func (s *Server) facts(ctx context.Context) any {
	type driverFact struct {
		driver.Availability
		Protections map[string]string `json:"protections,omitempty"`
		Details     map[string]any    `json:"details,omitempty"`
	}
	drivers := map[string]driverFact{}
	for name, d := range s.drivers {
		f := driverFact{Availability: driver.CheckAvailability(ctx, d)}
		if p, ok := d.(driver.ProtectionReporter); ok {
			f.Protections = p.Protections()
		}
		if dd, ok := d.(driver.DetailReporter); ok {
			f.Details = dd.Details()
		}
		drivers[name] = f
	}
	runtimes := map[string]any{}
	for _, rt := range runtime.Names() {
		runtimes[rt] = map[string]string{"path": s.interp.Path(rt), "version": s.interp.Version(rt)}
	}
	return map[string]any{"drivers": drivers, "runtimes": runtimes, "bus": s.bus.Health(ctx)}
}

// Listen binds the configured address (port 0 picks a free one).
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Serve starts the engine and serves HTTP until Shutdown.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	if err := s.metrics.Start(ctx); err != nil {
		s.log.Error("metrics from before this start are not available", "error", err)
	}
	s.engine.Start(ctx)
	s.async.Start(ctx)
	if err := s.sched.Start(ctx); err != nil {
		s.log.Error("schedules do not fire", "error", err)
	}
	s.warmUp(ctx)
	go s.collect()
	// Rollouts move their aliases until Shutdown.
	rctx, stopRollouts := context.WithCancel(context.WithoutCancel(ctx))
	go func() { <-s.stopping; stopRollouts() }()
	go s.fns.RunRollouts(rctx, rolloutTick)
	// Keys are read again each second (a revocation on another server
	// sharing the store reaches this one), the audit log pruned hourly.
	go s.auth.keys.Run(rctx)
	go s.auth.audit.Prune(rctx, s.cfg.AuditRetention)
	loc, _ := StoreLocation(s.cfg)
	s.log.Info("nimbus listening", "addr", "http://"+s.ln.Addr().String(), "data", s.cfg.DataDir, "store", store.Redact(loc))
	if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// warmUp starts the minInstances of every valid function, in the background.
func (s *Server) warmUp(ctx context.Context) {
	if err := s.fns.WarmUp(ctx); err != nil {
		s.log.Warn("functions' minInstances not started: cannot list functions", "error", err)
	}
}

// rolloutTick is how often running rollouts are looked at: a step ends
// within a tick of its interval.
const rolloutTick = time.Second

// collectEvery is how often unused code, layers and blobs are collected.
const collectEvery = 10 * time.Minute

// collect deletes what no function uses any more (functions.Collect), at
// start and every collectEvery, until Shutdown.
func (s *Server) collect() {
	t := time.NewTicker(collectEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.fns.Collect(ctx); err != nil {
			s.log.Warn("collecting unused code failed", "error", err)
		}
		cancel()
		select {
		case <-t.C:
		case <-s.stopping:
			return
		}
	}
}

// Shutdown stops accepting connections, lets calls in flight finish until
// ctx ends, stops every instance, closes the bus, writes the remaining
// records and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	herr := s.http.Shutdown(ctx)
	// Async calls stop coming in; those running finish (or run again
	// later) before the engine stops.
	aerr := errors.Join(s.sched.Close(ctx), s.async.Close(ctx))
	eerr := s.engine.Close(ctx)
	for _, d := range s.drivers {
		// Drivers that keep processes of their own (warm sandboxes) stop them.
		if c, ok := d.(driver.Closer); ok {
			eerr = errors.Join(eerr, c.Close())
		}
	}
	// What was published reaches the server even when the drain was cut
	// short.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	berr := s.bus.Close(bctx)
	cancel()
	// The last minutes are saved even when the drain was cut short.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	merr := s.metrics.Close(mctx)
	cancel()
	serr := s.store.Close()
	return errors.Join(herr, aerr, eerr, berr, merr, serr)
}

// checkMemoryMB bounds the memory of one syntax check; a few run at once.
// Compiling 4 MB of ordinary Python takes ~900 MB.
const checkMemoryMB = 1536

// newChecker runs syntax checks one per CPU at a time, each confined by
// the first driver that can confine a process (the sandbox's cgroups):
// anyone who can create a function chooses the checker's input.
func newChecker(interp runtime.Interpreters, drivers map[string]driver.Driver, log *slog.Logger) *runtime.Checker {
	var confine func(pid int) (func(), error)
	for _, name := range slices.Sorted(maps.Keys(drivers)) {
		if c, ok := drivers[name].(driver.Confiner); ok {
			confine = func(pid int) (func(), error) { return c.Confine(pid, checkMemoryMB) }
			break
		}
	}
	if confine == nil {
		log.Warn("syntax checks run unconfined: no driver can hold them to a memory limit")
	}
	return runtime.NewChecker(interp, goruntime.GOMAXPROCS(0), confine)
}

// reapInterval is how often the engine scales pools: often enough for the
// keep-alive, and for idle instances to be frozen soon after FreezeAfter.
func reapInterval(cfg config.Config) time.Duration {
	d := min(cfg.KeepAlive/4, time.Second)
	if cfg.FreezeAfter > 0 {
		d = min(d, cfg.FreezeAfter)
	}
	return max(d, 10*time.Millisecond)
}
