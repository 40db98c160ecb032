package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nimbusfaas/nimbus/internal/api"
	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
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
	engine  *engine.Engine
	metrics *metrics.Recorder
	http    *http.Server
	ln      net.Listener
	drivers map[string]driver.Driver
	interp  runtime.Interpreters
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
	interp, errs := runtime.FindInterpreters(ctx, lookup)
	for _, err := range errs {
		log.Warn("runtime not available", "error", err)
	}
	shims, err := runtime.InstallShims(filepath.Join(dataDir, "runtime"))
	if err != nil {
		st.Close()
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
		if err := d.Available(ctx); err != nil {
			log.Warn("driver cannot run functions now", "driver", name, "error", err)
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
	eng := engine.New(engine.Config{
		Drivers:       drivers,
		Records:       st,
		Metrics:       rec,
		Logger:        log,
		QueueTimeout:  cfg.QueueTimeout,
		KeepAlive:     cfg.KeepAlive,
		Adaptive:      cfg.Adaptive,
		ReapInterval:  max(min(cfg.KeepAlive/4, time.Second), 10*time.Millisecond),
		LogLimit:      cfg.LogLimit,
		Retention:     cfg.Retention,
		FlushInterval: 50 * time.Millisecond,
		RecordBuffer:  cfg.RecordBuffer,
	})
	if err := metrics.RegisterEngine(reg, eng); err != nil {
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: st, engine: eng, metrics: rec, drivers: drivers, interp: interp}
	handler := api.New(api.Config{
		Store:   st,
		Engine:  eng,
		Metrics: rec,
		CheckSyntax: func(ctx context.Context, rt string, files map[string]string) error {
			err := runtime.CheckSyntax(ctx, interp, rt, files)
			var se *runtime.SyntaxError
			if errors.As(err, &se) {
				return fn.Invalid("code", se.Error())
			}
			if err != nil {
				// The checker itself could not run (no interpreter): the
				// first call will report what is wrong.
				log.Warn("syntax check skipped", "runtime", rt, "error", err)
			}
			return nil
		},
		Defaults:     fn.Defaults{TimeoutMs: cfg.DefaultTimeoutMs, MemoryMB: cfg.DefaultMemoryMB},
		APIKey:       cfg.APIKey,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Logger:       log,
		System:       s.facts,
		Gatherer:     reg,
		UI:           web.Handler(),

		BindHost:       cfg.Host,
		AllowedHosts:   cfg.AllowedHosts,
		AllowedOrigins: cfg.AllowedOrigins,
	})
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	s.http.RegisterOnShutdown(handler.CloseStreams) // event streams never go idle by themselves
	return s, nil
}

// facts is what GET /api/system reports about this host.
func (s *Server) facts(ctx context.Context) any {
	type driverFact struct {
		Available   bool              `json:"available"`
		Reason      string            `json:"reason,omitempty"`
		Protections map[string]string `json:"protections,omitempty"`
		Details     map[string]any    `json:"details,omitempty"`
	}
	drivers := map[string]driverFact{}
	for name, d := range s.drivers {
		var f driverFact
		if err := d.Available(ctx); err != nil {
			f.Reason = err.Error()
		} else {
			f.Available = true
		}
		// Drivers that isolate instances say how.
		if p, ok := d.(interface{ Protections() map[string]string }); ok {
			f.Protections = p.Protections()
		}
		// Drivers say more where it helps (the microVM accelerator and why).
		if dd, ok := d.(interface{ Details() map[string]any }); ok {
			f.Details = dd.Details()
		}
		drivers[name] = f
	}
	return map[string]any{
		"drivers": drivers,
		"runtimes": map[string]any{
			fn.Python: map[string]string{"path": s.interp.Python, "version": s.interp.PythonVersion},
			fn.NodeJS: map[string]string{"path": s.interp.Node, "version": s.interp.NodeVersion},
		},
	}
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
	s.warmUp(ctx)
	loc, _ := StoreLocation(s.cfg)
	s.log.Info("nimbus listening", "addr", "http://"+s.ln.Addr().String(), "data", s.cfg.DataDir, "store", store.Redact(loc))
	if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// warmUp starts the minInstances of every function, in the background.
func (s *Server) warmUp(ctx context.Context) {
	fs, err := s.store.ListFunctions(ctx)
	if err != nil {
		s.log.Warn("functions' minInstances not started: cannot list functions", "error", err)
		return
	}
	for _, f := range fs {
		s.engine.Update(f) // only those with minInstances start anything
	}
}

// Shutdown stops accepting connections, lets calls in flight finish until
// ctx ends, stops every instance, writes the remaining records and closes
// the store.
func (s *Server) Shutdown(ctx context.Context) error {
	herr := s.http.Shutdown(ctx)
	eerr := s.engine.Close(ctx)
	for _, d := range s.drivers {
		// Drivers that keep processes of their own (warm sandboxes) stop them.
		if c, ok := d.(interface{ Close() error }); ok {
			eerr = errors.Join(eerr, c.Close())
		}
	}
	// The last minutes are saved even when the drain was cut short.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	merr := s.metrics.Close(mctx)
	cancel()
	serr := s.store.Close()
	return errors.Join(herr, eerr, merr, serr)
}
