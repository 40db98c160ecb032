package engine

import (
	"errors"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// Idle instances whose driver can freeze them (driver.Freezer) are frozen
// once idle for Config.FreezeAfter, as Lambda freezes an execution
// environment between calls: a thread or process the handler left running
// stops using CPU. A call thaws its instance before it is sent. An
// instance's freeze lock orders the two: a call that takes an instance
// being frozen waits for the freeze to end, then thaws it.

// freezable lists the instances idle since before cutoff that are not
// frozen yet and whose driver can freeze them.
func (p *pool) freezable(cutoff time.Time) []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*instance
	for _, in := range p.insts {
		if in.calls == 0 && in.lastUsed.Before(cutoff) && !in.frozen.Load() && !in.unfreezable {
			if _, ok := in.Instance.(driver.Freezer); ok {
				out = append(out, in)
			}
		}
	}
	return out
}

// freeze freezes in unless a call took it meanwhile. A driver that cannot
// freeze this instance after all (driver.ErrNotSupported) is not asked
// again.
func (in *instance) freeze(p *pool) error {
	in.fz.Lock()
	defer in.fz.Unlock()
	// Marked frozen under the pool's lock, in the same step that finds it
	// idle: a call takes an instance under that lock too, so it either
	// made the instance busy first (no freeze), or finds it marked and
	// thaws it, waiting on fz for the freeze to end. Never a call sent to
	// an instance being frozen.
	p.mu.Lock()
	busy := in.calls > 0 || in.retired || in.frozen.Load()
	if !busy {
		in.frozen.Store(true)
	}
	p.mu.Unlock()
	if busy {
		return nil
	}
	err := in.Instance.(driver.Freezer).Freeze()
	switch {
	case err == nil:
	case errors.Is(err, driver.ErrNotSupported):
		p.mu.Lock()
		in.unfreezable = true
		p.mu.Unlock()
		fallthrough
	default:
		// Not frozen after all; a half-done freeze is undone by a thaw.
		in.frozen.Store(false)
		_ = in.Instance.(driver.Freezer).Thaw()
	}
	return err
}

// thaw thaws in if it is frozen; its caller holds a call on it.
func (in *instance) thaw() error {
	if !in.frozen.Load() {
		return nil
	}
	in.fz.Lock()
	defer in.fz.Unlock()
	if !in.frozen.Load() {
		return nil
	}
	if err := in.Instance.(driver.Freezer).Thaw(); err != nil {
		return err
	}
	in.frozen.Store(false)
	return nil
}
