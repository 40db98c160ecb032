package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// functionView is a function as the API shows it, with any warnings about
// running it (a driver that is not available now).
type functionView struct {
	*fn.Function
	Warnings []string `json:"warnings,omitempty"`
	// KeepAliveNow is the keep-alive in force (GET of one function).
	KeepAliveNow *keepAliveView `json:"keepAliveNow,omitempty"`
}

// keepAliveView shows engine.KeepAlive: after the function goes idle its
// instances are released at once when prewarmMs > 0, one is warm again
// from prewarmMs, and none from prewarmMs+keepAliveMs.
type keepAliveView struct {
	Source      string `json:"source"` // function, server or adaptive
	PrewarmMs   int64  `json:"prewarmMs"`
	KeepAliveMs int64  `json:"keepAliveMs"`
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) {
	fns, err := s.cfg.Store.ListFunctions(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]*fn.Function, len(fns))
	for i, f := range fns {
		g := *f
		g.Files = nil // the list stays light; GET one for its code
		out[i] = &g
	}
	writeJSON(w, http.StatusOK, map[string]any{"functions": out})
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Store.GetFunction(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	v := view(f)
	win, src := s.cfg.Engine.KeepAlive(f)
	v.KeepAliveNow = &keepAliveView{Source: src, PrewarmMs: win.Prewarm.Milliseconds(), KeepAliveMs: win.KeepAlive.Milliseconds()}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) createFunction(w http.ResponseWriter, r *http.Request) {
	f := new(fn.Function)
	if err := s.readJSON(w, r, f); err != nil {
		writeError(w, err)
		return
	}
	f.ID, f.Version = "", 0
	if err := s.prepare(r.Context(), f); err != nil {
		writeError(w, err)
		return
	}
	now := time.Now().UTC()
	f.ID = fn.NewID()
	f.Version = 1
	f.CreatedAt, f.UpdatedAt = now, now
	if err := s.cfg.Store.CreateFunction(r.Context(), f); err != nil {
		writeError(w, conflictName(err, f.Name))
		return
	}
	s.cfg.Engine.Update(f) // starts its minInstances
	s.log.Info("function created", "function", f.Name, "id", f.ID, "runtime", f.Runtime, "driver", f.Driver)
	v := view(f)
	v.Warnings = s.warnings(r.Context(), f)
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) updateFunction(w http.ResponseWriter, r *http.Request) {
	old, err := s.cfg.Store.GetFunction(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var patch map[string]json.RawMessage
	if err := s.readJSON(w, r, &patch); err != nil {
		writeError(w, err)
		return
	}
	f, err := merge(old, patch)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.prepare(r.Context(), f); err != nil {
		writeError(w, err)
		return
	}
	if fn.SameConfig(old, f) {
		writeJSON(w, http.StatusOK, view(old))
		return
	}
	f.Version = old.Version + 1
	f.UpdatedAt = time.Now().UTC()
	if err := s.cfg.Store.UpdateFunction(r.Context(), f, old.Version); err != nil {
		if errors.Is(err, fn.ErrConflict) && f.Name == old.Name {
			err = fmt.Errorf("function %q was changed by another request; read it again and retry: %w", old.Name, fn.ErrConflict)
		}
		writeError(w, conflictName(err, f.Name))
		return
	}
	s.forget(old)
	s.cfg.Engine.Update(f)
	s.log.Info("function updated", "function", f.Name, "id", f.ID, "version", f.Version)
	v := view(f)
	v.Warnings = s.warnings(r.Context(), f)
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteFunction(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Store.GetFunction(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	s.forget(f)
	s.cfg.Engine.Remove(f.ID)
	if err := s.cfg.Store.DeleteFunction(r.Context(), f.ID); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("function deleted", "function", f.Name, "id", f.ID)
	w.WriteHeader(http.StatusNoContent)
}

// merge applies the fields present in patch to a copy of old. Identity and
// bookkeeping fields cannot be changed.
func merge(old *fn.Function, patch map[string]json.RawMessage) (*fn.Function, error) {
	for _, k := range []string{"id", "version", "createdAt", "updatedAt"} {
		if _, ok := patch[k]; ok {
			return nil, fn.Invalid(k, "cannot be changed")
		}
	}
	base, err := json.Marshal(old)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	if _, ok := patch["code"]; ok {
		delete(m, "files")
	}
	for k, v := range patch {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	f := new(fn.Function)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return nil, fn.Invalid("body", "not valid JSON for a function: "+err.Error())
	}
	return f, nil
}

// prepare validates f, fills defaults and checks its sources compile.
func (s *Server) prepare(ctx context.Context, f *fn.Function) error {
	if err := f.Normalize(s.cfg.Defaults); err != nil {
		return err
	}
	if _, err := s.cfg.Engine.Driver(f.Driver); err != nil {
		return err
	}
	if s.cfg.CheckSyntax != nil {
		if err := s.cfg.CheckSyntax(ctx, f.Runtime, f.Files); err != nil {
			if errors.Is(err, fn.ErrInvalid) {
				return err
			}
			return fn.Invalid("code", err.Error())
		}
	}
	return nil
}

// warnings says what stands in the way of running f now.
func (s *Server) warnings(ctx context.Context, f *fn.Function) []string {
	if w := s.cfg.Engine.Availability(ctx, f.Driver).Warning(f.Driver); w != "" {
		return []string{w}
	}
	return nil
}

func conflictName(err error, name string) error {
	if errors.Is(err, fn.ErrConflict) {
		return fmt.Errorf("a function named %q already exists: %w", name, err)
	}
	return err
}

// functionTTL is how long the invoke path trusts a cached function before
// it reads it again, in the background: other servers sharing the database
// may have changed or deleted it.
const functionTTL = 2 * time.Second

// cachedFunction is a function as the invoke path last read it.
type cachedFunction struct {
	f          *fn.Function
	checked    atomic.Int64 // UnixNano of the last read (or attempt)
	refreshing atomic.Bool
}

// function finds a function for the invoke path, from the cache when it
// can. A cached function older than functionTTL is served as it is while a
// background read refreshes it, so a call never waits for the store once
// its function is known, even while the store is unavailable.
func (s *Server) function(ctx context.Context, idOrName string) (*fn.Function, error) {
	if v, ok := s.cache.Load(idOrName); ok {
		c := v.(*cachedFunction)
		if time.Since(time.Unix(0, c.checked.Load())) > functionTTL && c.refreshing.CompareAndSwap(false, true) {
			go s.refresh(c)
		}
		return c.f, nil
	}
	gen := s.gen.Load()
	f, err := s.cfg.Store.GetFunction(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	if s.gen.Load() == gen {
		s.remember(f)
	}
	s.cacheMu.Unlock()
	return f, nil
}

// remember caches f by id and name. s.cacheMu is held.
func (s *Server) remember(f *fn.Function) {
	c := &cachedFunction{f: f}
	c.checked.Store(time.Now().UnixNano())
	s.cache.Store(f.ID, c)
	s.cache.Store(f.Name, c)
}

// refresh reads a cached function again: a new version replaces it, a
// deletion (by another server) removes it and stops its instances, and a
// failed read keeps it until the next try.
func (s *Server) refresh(c *cachedFunction) {
	defer c.refreshing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gen := s.gen.Load()
	f, err := s.cfg.Store.GetFunction(ctx, c.f.ID)
	c.checked.Store(time.Now().UnixNano())
	switch {
	case errors.Is(err, fn.ErrNotFound):
		s.log.Info("function deleted elsewhere", "function", c.f.Name, "id", c.f.ID)
		s.forget(c.f)
		s.cfg.Engine.Remove(c.f.ID)
		return
	case err != nil:
		s.log.Debug("refresh cached function", "function", c.f.Name, "error", err)
		return
	case f.Version == c.f.Version && f.Name == c.f.Name:
		return
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.gen.Load() != gen {
		return // changed here meanwhile: the cache was cleared
	}
	s.log.Info("function changed elsewhere", "function", f.Name, "id", f.ID, "version", f.Version)
	if f.Name != c.f.Name {
		s.cache.Delete(c.f.Name)
	}
	s.remember(f)
	s.cfg.Engine.Update(f)
}

// forget drops f from the cache.
func (s *Server) forget(f *fn.Function) {
	s.cacheMu.Lock()
	s.gen.Add(1)
	s.cache.Delete(f.ID)
	s.cache.Delete(f.Name)
	s.cacheMu.Unlock()
}

func view(f *fn.Function) *functionView { return &functionView{Function: f} }
