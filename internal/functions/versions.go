package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// versionCache holds published versions as the invoke path runs them
// (they never change), and aliases as last read (they do: re-read after
// the TTL).
type versionCache struct {
	versions sync.Map // "<id>@<n>" → *fn.Function
	aliases  sync.Map // "<id>/<name>" → *cachedAlias
}

// forget drops what is cached of a deleted function's versions and
// aliases.
func (c *versionCache) forget(functionID string) {
	for _, m := range []*sync.Map{&c.versions, &c.aliases} {
		m.Range(func(k, _ any) bool {
			if key := k.(string); strings.HasPrefix(key, functionID+"@") || strings.HasPrefix(key, functionID+"/") {
				m.Delete(k)
			}
			return true
		})
	}
}

type cachedAlias struct {
	a    *fn.Alias
	read time.Time
}

// ResolveQualified finds what a call to idOrName with qualifier runs:
// the draft for "" or $LATEST, a published version for a number, and for
// an alias the version its weights choose for this call.
func (s *Service) ResolveQualified(ctx context.Context, idOrName, qualifier string) (*fn.Function, error) {
	f, err := s.Resolve(ctx, idOrName)
	if err != nil || qualifier == "" || qualifier == fn.Latest {
		return f, err
	}
	if n, err := strconv.Atoi(qualifier); err == nil {
		return s.versionToRun(ctx, f, n)
	}
	a, err := s.cachedAlias(ctx, f, qualifier)
	if err != nil {
		return nil, err
	}
	return s.versionToRun(ctx, f, a.Pick(rand.Float64()))
}

// versionToRun is version n of f, validated as a stored function is.
func (s *Service) versionToRun(ctx context.Context, f *fn.Function, n int) (*fn.Function, error) {
	key := f.ID + "@" + strconv.Itoa(n)
	if v, ok := s.versions.versions.Load(key); ok {
		return v.(*fn.Function), nil
	}
	v, err := s.cfg.Store.GetVersion(ctx, f.ID, n)
	if err != nil {
		return nil, versionErr(f, n, err)
	}
	if v.Function == nil || v.ID != f.ID || v.Version != n {
		return nil, fmt.Errorf("version %d of %q as stored is not that version: %w", n, f.Name, fn.ErrInvalid)
	}
	g, err := s.runnable(v.Function)
	if err != nil {
		return nil, err
	}
	g.Version = n // Normalize keeps it; said again for the reader
	s.versions.versions.Store(key, g)
	return g, nil
}

func versionErr(f *fn.Function, n int, err error) error {
	if errors.Is(err, fn.ErrNotFound) {
		return fmt.Errorf("function %q has no version %d: %w", f.Name, n, fn.ErrNotFound)
	}
	return err
}

func (s *Service) cachedAlias(ctx context.Context, f *fn.Function, name string) (*fn.Alias, error) {
	key := f.ID + "/" + name
	if v, ok := s.versions.aliases.Load(key); ok {
		if c := v.(*cachedAlias); time.Since(c.read) < s.cfg.TTL {
			return c.a, nil
		}
	}
	a, err := s.GetAlias(ctx, f.ID, name)
	if err != nil {
		return nil, err
	}
	s.versions.aliases.Store(key, &cachedAlias{a: a, read: time.Now()})
	return a, nil
}

// Publish makes the draft of idOrName a new numbered version, unless it
// is the newest version already (then that version and false). With
// expectedHash set, the draft's BehaviourHash must be it
// (fn.ErrPrecondition otherwise): what was tested is what is published.
func (s *Service) Publish(ctx context.Context, idOrName, description, expectedHash string) (*fn.Version, bool, error) {
	if len(description) > fn.MaxDescriptionLen {
		return nil, false, fn.Invalid("description", fmt.Sprintf("at most %d bytes", fn.MaxDescriptionLen))
	}
	for try := 0; ; try++ {
		f, err := s.Get(ctx, idOrName)
		if err != nil {
			return nil, false, err
		}
		if f.BuildStatus != nil && f.BuildStatus.State != fn.BuildReady {
			return nil, false, fmt.Errorf("function %q cannot be published while its build is %s: %w", f.Name, f.BuildStatus.State, fn.ErrConflict)
		}
		if _, err := s.runnable(f); err != nil {
			return nil, false, err
		}
		hash := f.BehaviourHash()
		if expectedHash != "" && expectedHash != hash {
			return nil, false, fmt.Errorf("the draft of %q has hash %s, not the expected %s: %w", f.Name, hash, expectedHash, fn.ErrPrecondition)
		}
		vs, err := s.cfg.Store.ListVersions(ctx, f.ID)
		if err != nil {
			return nil, false, err
		}
		n := 1
		if len(vs) > 0 {
			last := vs[len(vs)-1]
			if last.ConfigHash == hash {
				return last, false, nil
			}
			n = last.Version + 1
		}
		snap, err := clone(f)
		if err != nil {
			return nil, false, err
		}
		// Test events are the draft's, as Lambda's are the function's:
		// a version does not carry them (nor does its hash).
		snap.Version, snap.Files, snap.TestEvents = n, nil, nil
		v := &fn.Version{Function: snap, Description: description, ConfigHash: hash, PublishedAt: time.Now().UTC()}
		err = s.cfg.Store.CreateVersion(ctx, v)
		if errors.Is(err, fn.ErrConflict) && try < 3 {
			continue // another publish took the number: look again
		}
		if err != nil {
			return nil, false, err
		}
		s.log.Info("version published", "function", f.Name, "id", f.ID, "version", n)
		s.audit(ctx, "version.publish", f.Name+":"+strconv.Itoa(n), nil, v)
		return v, true, nil
	}
}

// clone is a deep copy of f.
func clone(f *fn.Function) (*fn.Function, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	g := new(fn.Function)
	return g, json.Unmarshal(b, g)
}

// Versions lists the published versions of idOrName, oldest first.
func (s *Service) Versions(ctx context.Context, idOrName string) (*fn.Function, []*fn.Version, error) {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, nil, err
	}
	vs, err := s.cfg.Store.ListVersions(ctx, f.ID)
	return f, vs, err
}

// Version reads version n of idOrName.
func (s *Service) Version(ctx context.Context, idOrName string, n int) (*fn.Version, error) {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	v, err := s.cfg.Store.GetVersion(ctx, f.ID, n)
	if err != nil {
		return nil, versionErr(f, n, err)
	}
	return v, nil
}

// DeleteVersion deletes version n of idOrName, unless an alias sends
// calls to it (fn.ErrConflict).
func (s *Service) DeleteVersion(ctx context.Context, idOrName string, n int) error {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	as, err := s.cfg.Store.ListAliases(ctx, f.ID)
	if err != nil {
		return err
	}
	for _, a := range as {
		if slices.Contains(a.Versions(), n) {
			return fmt.Errorf("alias %q of %q sends calls to version %d: move it first: %w", a.Name, f.Name, n, fn.ErrConflict)
		}
	}
	v, err := s.cfg.Store.GetVersion(ctx, f.ID, n)
	if err != nil {
		return versionErr(f, n, err)
	}
	if err := s.cfg.Store.DeleteVersion(ctx, f.ID, n); err != nil {
		return versionErr(f, n, err)
	}
	s.audit(ctx, "version.delete", f.Name+":"+strconv.Itoa(n), v, nil)
	s.versions.versions.Delete(f.ID + "@" + strconv.Itoa(n))
	s.log.Info("version deleted", "function", f.Name, "id", f.ID, "version", n)
	return nil
}

// Aliases lists the aliases of idOrName.
func (s *Service) Aliases(ctx context.Context, idOrName string) ([]*fn.Alias, error) {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	return s.cfg.Store.ListAliases(ctx, f.ID)
}

// GetAlias reads an alias of idOrName.
func (s *Service) GetAlias(ctx context.Context, idOrName, name string) (*fn.Alias, error) {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if err := fn.CheckAliasName(name); err != nil {
		return nil, fmt.Errorf("function %q has no alias %q: %w", f.Name, name, fn.ErrNotFound)
	}
	a, err := s.cfg.Store.GetAlias(ctx, f.ID, name)
	if errors.Is(err, fn.ErrNotFound) {
		return nil, fmt.Errorf("function %q has no alias %q: %w", f.Name, name, fn.ErrNotFound)
	}
	return a, err
}

// CreateAlias creates an alias of idOrName pointing at published
// versions.
func (s *Service) CreateAlias(ctx context.Context, idOrName string, a *fn.Alias) (*fn.Alias, error) {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	a.FunctionID, a.History = f.ID, nil
	if err := s.checkAlias(ctx, f, a); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	a.Revision, a.CreatedAt, a.UpdatedAt = 1, now, now
	a.Move(now, "create")
	if err := s.cfg.Store.CreateAlias(ctx, a); err != nil {
		if errors.Is(err, fn.ErrConflict) {
			return nil, fmt.Errorf("function %q already has an alias %q: %w", f.Name, a.Name, err)
		}
		return nil, err
	}
	s.log.Info("alias created", "function", f.Name, "alias", a.Name, "version", a.Version)
	s.audit(ctx, "alias.create", f.Name+":"+a.Name, nil, a)
	return a, nil
}

// checkAlias validates a and checks that its versions are published.
func (s *Service) checkAlias(ctx context.Context, f *fn.Function, a *fn.Alias) error {
	if err := a.Normalize(); err != nil {
		return err
	}
	for _, n := range a.Versions() {
		if _, err := s.cfg.Store.GetVersion(ctx, f.ID, n); err != nil {
			if errors.Is(err, fn.ErrNotFound) {
				return fn.Invalid("version", fmt.Sprintf("function %q has no version %d: publish it first", f.Name, n))
			}
			return err
		}
	}
	return nil
}

// UpdateAlias changes an alias: change edits a copy of it. Where it
// points is recorded in its history when that changes; reason says why
// ("update", "rollback").
func (s *Service) UpdateAlias(ctx context.Context, idOrName, name, reason string, change func(*fn.Alias) error) (*fn.Alias, error) {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	old, err := s.GetAlias(ctx, f.ID, name)
	if err != nil {
		return nil, err
	}
	a := *old
	a.AdditionalVersionWeights = maps.Clone(old.AdditionalVersionWeights)
	a.History = slices.Clone(old.History)
	if old.Rollout != nil {
		r := *old.Rollout
		r.Steps = slices.Clone(r.Steps)
		a.Rollout = &r
	}
	if err := change(&a); err != nil {
		return nil, err
	}
	a.FunctionID, a.Name, a.CreatedAt, a.Revision = old.FunctionID, old.Name, old.CreatedAt, old.Revision
	a.History = old.History // not the caller's to write
	if err := s.checkAlias(ctx, f, &a); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if a.Version != old.Version || !maps.Equal(a.AdditionalVersionWeights, old.AdditionalVersionWeights) || reason == "rollback" {
		a.History = slices.Clone(old.History)
		a.Move(now, reason)
	}
	a.Revision, a.UpdatedAt = old.Revision+1, now
	if err := s.cfg.Store.UpdateAlias(ctx, &a, old.Revision); err != nil {
		if errors.Is(err, fn.ErrConflict) {
			err = fmt.Errorf("alias %q of %q was changed by another request; read it again and retry: %w", name, f.Name, fn.ErrPrecondition)
		}
		return nil, err
	}
	s.versions.aliases.Delete(f.ID + "/" + name)
	s.log.Info("alias changed", "function", f.Name, "alias", name, "version", a.Version, "reason", reason)
	action := "alias.update"
	if reason == "rollback" {
		action = "alias.rollback"
	}
	s.audit(ctx, action, f.Name+":"+name, old, &a)
	return &a, nil
}

// DeleteAlias deletes an alias of idOrName.
func (s *Service) DeleteAlias(ctx context.Context, idOrName, name string) error {
	f, err := s.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	old, err := s.GetAlias(ctx, f.ID, name)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteAlias(ctx, f.ID, name); err != nil {
		return err
	}
	s.versions.aliases.Delete(f.ID + "/" + name)
	s.audit(ctx, "alias.delete", f.Name+":"+name, old, nil)
	return nil
}

// Rollback moves an alias back to where it pointed before its last
// move. Moves undone by a rollback are not gone back to: a second
// rollback goes one step further back.
func (s *Service) Rollback(ctx context.Context, idOrName, name string) (*fn.Alias, error) {
	return s.UpdateAlias(ctx, idOrName, name, "rollback", func(a *fn.Alias) error {
		stack := previousStates(a.History)
		if len(stack) < 2 {
			return fmt.Errorf("alias %q has no earlier version to roll back to: %w", name, fn.ErrConflict)
		}
		prev := stack[len(stack)-2]
		a.Version, a.AdditionalVersionWeights = prev.Version, maps.Clone(prev.Weights)
		return nil
	})
}

// previousStates replays an alias's history as a stack of where it
// pointed: a move pushes, a rollback pops.
func previousStates(history []fn.AliasMove) []fn.AliasMove {
	var stack []fn.AliasMove
	for _, m := range history {
		if m.Reason == "rollback" {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		stack = append(stack, m)
	}
	return stack
}
