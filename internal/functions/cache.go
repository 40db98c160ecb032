package functions

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// cache holds functions as the invoke path last read them. Ids and names
// are kept apart, so that no name can stand for another function's id.
type cache struct {
	byID   sync.Map     // id → *cachedFunction
	byName sync.Map     // name → *cachedFunction
	mu     sync.Mutex   // serialises fills with invalidations (not reads)
	gen    atomic.Int64 // bumped on every change, so a racing read is not cached
}

// cachedFunction is a function as the invoke path last read it.
type cachedFunction struct {
	f          *fn.Function
	checked    atomic.Int64 // UnixNano of the last read (or attempt)
	refreshing atomic.Bool
}

// Resolve finds the function idOrName to run. idOrName is taken as an id
// when it has an id's shape (fn.LooksLikeID), else as a name. A
// function read from the store is validated before it is served (an error
// wrapping fn.ErrInvalid if it could not run). Resolve serves from a cache
// when it can: a cached function older than the TTL is served as it is
// while a background read refreshes it, so a call never waits for the
// store once its function is known, even while the store is unavailable.
func (s *Service) Resolve(ctx context.Context, idOrName string) (*fn.Function, error) {
	if c := s.cached(idOrName); c != nil {
		if time.Since(time.Unix(0, c.checked.Load())) > s.cfg.TTL && c.refreshing.CompareAndSwap(false, true) {
			go s.refresh(c)
		}
		return c.f, nil
	}
	gen := s.cache.gen.Load()
	f, err := s.cfg.Store.GetFunction(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if f, err = s.runnable(f); err != nil {
		return nil, err
	}
	s.cache.mu.Lock()
	if s.cache.gen.Load() == gen {
		s.remember(f)
	}
	s.cache.mu.Unlock()
	return f, nil
}

// cached finds idOrName in the cache: by id if it has an id's shape, else
// by name.
func (s *Service) cached(idOrName string) *cachedFunction {
	m := &s.cache.byName
	if fn.LooksLikeID(idOrName) {
		m = &s.cache.byID
	}
	if v, ok := m.Load(idOrName); ok {
		return v.(*cachedFunction)
	}
	return nil
}

// remember caches f by id and by name. s.cache.mu is held.
func (s *Service) remember(f *fn.Function) {
	c := &cachedFunction{f: f}
	c.checked.Store(time.Now().UnixNano())
	s.cache.byID.Store(f.ID, c)
	s.cache.byName.Store(f.Name, c)
}

// refresh reads a cached function again: a new version replaces it, a
// deletion (by another server) removes it and stops its instances, a
// version that is not valid is dropped from the cache (Resolve then says
// why), and a failed read keeps it until the next try.
func (s *Service) refresh(c *cachedFunction) {
	defer c.refreshing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gen := s.cache.gen.Load()
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
	case f.Revision == c.f.Revision && f.Name == c.f.Name:
		return
	}
	if f, err = s.runnable(f); err != nil {
		s.forget(c.f)
		return
	}
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	if s.cache.gen.Load() != gen {
		return // changed here meanwhile: the cache was cleared
	}
	s.log.Info("function changed elsewhere", "function", f.Name, "id", f.ID, "revision", f.Revision)
	if f.Name != c.f.Name {
		s.cache.byName.CompareAndDelete(c.f.Name, c)
	}
	s.remember(f)
	s.cfg.Engine.Update(f)
}

// forget drops f from the cache, and makes fills that read the store
// before now leave it out.
func (s *Service) forget(f *fn.Function) {
	s.cache.mu.Lock()
	s.cache.gen.Add(1)
	s.cache.byID.Delete(f.ID)
	if v, ok := s.cache.byName.Load(f.Name); ok && v.(*cachedFunction).f.ID == f.ID {
		s.cache.byName.Delete(f.Name)
	}
	s.cache.mu.Unlock()
}
