package functions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// SyntaxChecker reports a syntax error in a function's sources (an error
// wrapping fn.ErrInvalid), or nil.
type SyntaxChecker func(ctx context.Context, runtime string, files map[string]string) error

// Engine is what the service needs of the engine (*engine.Engine).
type Engine interface {
	// Driver returns the named driver, or an error wrapping fn.ErrInvalid.
	Driver(name string) (driver.Driver, error)
	// Availability says whether the named driver can run functions now.
	Availability(ctx context.Context, name string) driver.Availability
	// Update says a function was created or changed.
	Update(f *fn.Function)
	// Remove says a function was deleted.
	Remove(functionID string)
	// Retire stops a function's instances; it may run again.
	Retire(functionID string)
}

// DefaultTTL is how long Resolve trusts a cached function by default.
const DefaultTTL = 2 * time.Second

// Config wires a Service.
type Config struct {
	Store  store.Store
	Engine Engine
	// CheckSyntax, when set, checks the sources of every function created
	// or updated.
	CheckSyntax SyntaxChecker
	Defaults    fn.Defaults
	Logger      *slog.Logger
	// TTL is how long Resolve serves a cached function before it reads it
	// again, in the background (DefaultTTL).
	TTL time.Duration
	// CodeDir and LayerDir are where this node unpacks stored code and
	// uploaded layers, each in a directory named by its SHA-256.
	CodeDir, LayerDir string
	// Limits bound the archives code comes in (build.DefaultLimits).
	Limits build.Limits
	// Builder builds dependencies; nil builds none (code that declares
	// some then runs without them).
	Builder Builder
	// Events receives build steps for the live stream; may be nil.
	Events Events
	// BlobGrace and DirGrace are Collect's grace periods (BlobGrace,
	// DirGrace when 0).
	BlobGrace, DirGrace time.Duration
	// Audit, when set, is told of every change: functions, versions,
	// aliases (and so schedules, which are part of a function).
	Audit Auditor
}

// Auditor appends changes to the audit log (auth.Audit): action done to
// target, with the state before and after (nil for none).
type Auditor interface {
	Record(ctx context.Context, action, target string, before, after any)
}

// audit tells the Auditor, if there is one.
func (s *Service) audit(ctx context.Context, action, target string, before, after any) {
	if s.cfg.Audit != nil {
		s.cfg.Audit.Record(ctx, action, target, before, after)
	}
}

// Service is the function lifecycle. It is safe for concurrent use.
type Service struct {
	cfg       Config
	log       *slog.Logger
	cache     cache
	versions  versionCache
	unpacking sync.Map // directory → *sync.Mutex, held while it is unpacked
	building  sync.Map // function id → *fn.BuildStatus of a build running here
}

// New builds a Service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.BlobGrace <= 0 {
		cfg.BlobGrace = BlobGrace
	}
	if cfg.DirGrace <= 0 {
		cfg.DirGrace = DirGrace
	}
	if cfg.Limits == (build.Limits{}) {
		cfg.Limits = build.DefaultLimits
	}
	if cfg.CodeDir == "" || cfg.LayerDir == "" {
		// Without directories of its own (a tool, a test), the service
		// unpacks below a temporary directory.
		tmp, err := os.MkdirTemp("", "nimbus-code-")
		if err != nil {
			panic(fmt.Sprintf("functions: no code directory: %v", err))
		}
		cfg.CodeDir, cfg.LayerDir = filepath.Join(tmp, "code"), filepath.Join(tmp, "layers")
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "functions")}
}

// Create validates f, fills its defaults, stores its code, checks its
// sources compile, gives it a new id and version 1, builds its
// dependencies, stores it and tells the engine (which starts its
// minInstances). It returns f so completed. A taken name is
// fn.ErrConflict. A failed build still creates the function, with its
// buildStatus saying why: it cannot run until code that builds is sent.
func (s *Service) Create(ctx context.Context, f *fn.Function) (*fn.Function, error) {
	f.ID, f.Revision, f.CodeInfo, f.BuildStatus = "", 0, nil, nil
	if err := s.prepare(ctx, f); err != nil {
		return nil, err
	}
	if _, err := s.cfg.Store.GetFunction(ctx, f.Name); err == nil {
		return nil, conflictName(fn.ErrConflict, f.Name) // before a build that would be lost
	}
	now := time.Now().UTC()
	f.ID = fn.NewID()
	f.Revision = 1
	f.CreatedAt, f.UpdatedAt = now, now
	_ = s.buildDeps(ctx, f) // a failure is in f.BuildStatus
	if err := s.cfg.Store.CreateFunction(ctx, f); err != nil {
		return nil, conflictName(err, f.Name)
	}
	s.buildDone(f)
	if !buildFailed(f) {
		s.cfg.Engine.Update(f)
	}
	s.log.Info("function created", "function", f.Name, "id", f.ID, "runtime", f.Runtime, "driver", f.Driver)
	s.audit(ctx, "function.create", f.Name, nil, f)
	return f, nil
}

// Update changes the function idOrName: change edits a copy of it as
// stored (Merge applies a JSON patch), and the result is validated and
// checked as Create's is. Its id and creation time cannot change. When
// nothing that runs changed, Update returns the stored function and
// changed false, and the version stays. Otherwise the new version (one
// more) is stored if no other update came first (else fn.ErrConflict), and
// the engine retires the old version's instances.
func (s *Service) Update(ctx context.Context, idOrName string, change func(*fn.Function) error) (f *fn.Function, changed bool, err error) {
	old, err := s.cfg.Store.GetFunction(ctx, idOrName)
	if err != nil {
		return nil, false, err
	}
	g := *old
	g.Files, g.Env = maps.Clone(old.Files), maps.Clone(old.Env)
	if err := change(&g); err != nil {
		return nil, false, err
	}
	f = &g
	f.ID, f.CreatedAt, f.BuildStatus = old.ID, old.CreatedAt, old.BuildStatus
	if f.CodeInfo != nil && old.CodeInfo != nil && f.CodeInfo.SHA256 == old.CodeInfo.SHA256 {
		f.CodeInfo = old.CodeInfo // the stored manifest, whatever came back with it
	}
	if err := s.prepare(ctx, f); err != nil {
		return nil, false, err
	}
	if fn.SameConfig(old, f) && !buildFailed(old) {
		return old, false, nil
	}
	if f.CodeSHA256() != old.CodeSHA256() || f.Runtime != old.Runtime || f.Scripts() != old.Scripts() || buildFailed(old) {
		ci := *f.CodeInfo
		f.CodeInfo = &ci
		if err := s.buildDeps(ctx, f); err != nil && !buildFailed(old) {
			// The last good code keeps serving: only the failed build's
			// status is kept, on the function as it was.
			kept := *old
			kept.BuildStatus = f.BuildStatus
			if serr := s.cfg.Store.UpdateFunction(ctx, &kept, old.Revision); serr == nil {
				s.forget(old)
			}
			s.buildDone(f)
			return nil, false, err
		}
	}
	f.Revision = old.Revision + 1
	f.UpdatedAt = time.Now().UTC()
	if err := s.cfg.Store.UpdateFunction(ctx, f, old.Revision); err != nil {
		if errors.Is(err, fn.ErrConflict) && f.Name == old.Name {
			err = fmt.Errorf("function %q was changed by another request; read it again and retry: %w", old.Name, fn.ErrConflict)
		}
		return nil, false, conflictName(err, f.Name)
	}
	s.forget(old)
	s.buildDone(f)
	if buildFailed(f) {
		s.cfg.Engine.Retire(f.ID) // nothing of it runs until code that builds comes
	} else {
		s.cfg.Engine.Update(f)
	}
	s.log.Info("function updated", "function", f.Name, "id", f.ID, "revision", f.Revision)
	s.audit(ctx, "function.update", f.Name, old, f)
	return f, true, nil
}

// Delete deletes the function idOrName and its executions, after stopping
// its instances, and returns what it deleted.
func (s *Service) Delete(ctx context.Context, idOrName string) (*fn.Function, error) {
	f, err := s.cfg.Store.GetFunction(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	s.forget(f)
	s.cfg.Engine.Remove(f.ID)
	if err := s.cfg.Store.DeleteFunction(ctx, f.ID); err != nil {
		return nil, err
	}
	s.versions.forget(f.ID)
	s.log.Info("function deleted", "function", f.Name, "id", f.ID)
	s.audit(ctx, "function.delete", f.Name, f, nil)
	return f, nil
}

// Get reads the function idOrName from the store, as it is stored: one
// that could not run can still be shown, fixed or deleted. Resolve is the
// way to a function to run.
//
// While this server builds a new version of its code, its buildStatus
// says "building" (the stored function, which still serves, is shown
// otherwise as it is).
func (s *Service) Get(ctx context.Context, idOrName string) (*fn.Function, error) {
	f, err := s.cfg.Store.GetFunction(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if b, ok := s.building.Load(f.ID); ok {
		g := *f
		g.BuildStatus = b.(*fn.BuildStatus)
		return &g, nil
	}
	return f, nil
}

// List reads every function from the store, ordered by name.
func (s *Service) List(ctx context.Context) ([]*fn.Function, error) {
	return s.cfg.Store.ListFunctions(ctx)
}

// WarmUp tells the engine of every stored function that is valid, which
// starts their minInstances; it logs those that are not.
func (s *Service) WarmUp(ctx context.Context) error {
	fs, err := s.cfg.Store.ListFunctions(ctx)
	if err != nil {
		return fmt.Errorf("list functions: %w", err)
	}
	for _, f := range fs {
		if f, err := s.runnable(f); err == nil {
			s.cfg.Engine.Update(f) // only those with minInstances start anything
		}
	}
	return nil
}

// Warnings says what stands in the way of running f now (a driver that is
// not available), or nil.
func (s *Service) Warnings(ctx context.Context, f *fn.Function) []string {
	if w := s.cfg.Engine.Availability(ctx, f.Driver).Warning(f.Driver); w != "" {
		return []string{w}
	}
	return nil
}

// prepare validates f, fills defaults, stores the code it brings and
// checks its handler's module compiles.
func (s *Service) prepare(ctx context.Context, f *fn.Function) error {
	if err := f.Normalize(s.cfg.Defaults); err != nil {
		return err
	}
	if _, err := s.cfg.Engine.Driver(f.Driver); err != nil {
		return err
	}
	if err := s.ingest(ctx, f); err != nil {
		return err
	}
	if err := f.Normalize(s.cfg.Defaults); err != nil { // the code as stored
		return err
	}
	for _, l := range f.Layers {
		if _, err := s.blobDir(ctx, s.cfg.LayerDir, l); err != nil {
			if errors.Is(err, fn.ErrNotFound) {
				return fn.Invalid("layers", fmt.Sprintf("no layer %q: upload it with POST /api/layers first", l))
			}
			return err
		}
	}
	if s.cfg.CheckSyntax != nil {
		src, err := s.moduleSource(ctx, f)
		if err != nil {
			return err
		}
		if err := s.cfg.CheckSyntax(ctx, f.Runtime, src); err != nil {
			if errors.Is(err, fn.ErrInvalid) {
				return err
			}
			return fn.Invalid("code", err.Error())
		}
	}
	return nil
}

// runnable validates a function read from the store as Create validates
// one a user sends (all but the syntax check) and returns the normalized
// copy to run, or an error wrapping fn.ErrInvalid, which it logs.
func (s *Service) runnable(f *fn.Function) (*fn.Function, error) {
	g := *f
	if err := g.Normalize(s.cfg.Defaults); err != nil {
		s.log.Warn("stored function is invalid: it will not run", "function", f.Name, "id", f.ID, "error", err)
		return nil, fmt.Errorf("function %q as stored cannot run: %w", f.Name, err)
	}
	if buildFailed(&g) {
		return nil, errBuildFailed(&g)
	}
	return &g, nil
}

func conflictName(err error, name string) error {
	if errors.Is(err, fn.ErrConflict) {
		return fmt.Errorf("a function named %q already exists: %w", name, err)
	}
	return err
}
