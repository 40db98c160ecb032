package functions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// StartRollout makes a's rollout r begin: from where a points now to
// r.To, at r.Steps[0]. It is a change for UpdateAlias.
func StartRollout(a *fn.Alias, r *fn.Rollout, now time.Time) error {
	if err := r.Check(); err != nil {
		return err
	}
	if a.Rollout.Running() {
		return fmt.Errorf("alias %q is rolling out version %d: wait for it to end, or move the alias by hand to stop it: %w", a.Name, a.Rollout.To, fn.ErrConflict)
	}
	if r.To == a.Version {
		return fn.Invalid("rollout.to", fmt.Sprintf("the alias already points at version %d", r.To))
	}
	r.From, r.Step, r.StepStartedAt, r.State, r.Reason = a.Version, 0, now.UTC(), fn.RolloutRunning, ""
	a.Rollout = r
	r.Apply(a)
	if r.Steps[0] >= 1 {
		r.State = fn.RolloutCompleted
	}
	return nil
}

// Flusher writes the records the engine holds (engine.Engine): a
// rollout's judgement reads them from the store.
type Flusher interface {
	Flush(ctx context.Context) error
}

// RunRollouts moves every running rollout along, every tick, until ctx
// ends. Several servers may run it: an alias's revision lets one of them
// take each step.
func (s *Service) RunRollouts(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.StepRollouts(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("rollouts", "error", err)
		}
	}
}

// StepRollouts takes the steps of every rollout whose step has lasted
// its interval at now: the next share, the end, or a rollback when the
// new version failed too often in the step.
func (s *Service) StepRollouts(ctx context.Context, now time.Time) error {
	fs, err := s.cfg.Store.ListFunctions(ctx)
	if err != nil {
		return err
	}
	flushed := false
	var errs []error
	for _, f := range fs {
		as, err := s.cfg.Store.ListAliases(ctx, f.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range as {
			r := a.Rollout
			if !r.Running() || now.Sub(r.StepStartedAt) < r.Every() {
				continue
			}
			if fl, ok := s.cfg.Engine.(Flusher); ok && !flushed {
				_ = fl.Flush(ctx)
				flushed = true
			}
			if err := s.stepRollout(ctx, f, a, now); err != nil && !errors.Is(err, fn.ErrPrecondition) {
				errs = append(errs, err) // a precondition: another server took the step
			}
		}
	}
	return errors.Join(errs...)
}

// stepRollout judges the step of a's rollout that ended and takes the
// next one.
func (s *Service) stepRollout(ctx context.Context, f *fn.Function, a *fn.Alias, now time.Time) error {
	calls, failed, err := s.outcomes(ctx, f.ID, a.Rollout.To, a.Rollout.StepStartedAt)
	if err != nil {
		return err
	}
	next := *a
	r := *a.Rollout
	next.Rollout = &r
	reason := "rollout"
	switch {
	case calls > 0 && float64(failed)/float64(calls) > r.MaxErrorRate:
		reason = "rollout-rollback" // a move of its own: a rollback by hand then undoes it
		r.State = fn.RolloutRolledBack
		r.Reason = fmt.Sprintf("version %d failed %d of %d calls (%.1f%%) in step %d (%.0f%% of the calls), more than the %.1f%% allowed",
			r.To, failed, calls, 100*float64(failed)/float64(calls), r.Step+1, 100*r.Steps[r.Step], 100*r.MaxErrorRate)
		next.Version, next.AdditionalVersionWeights = r.From, nil
	case r.Step+1 >= len(r.Steps):
		r.State = fn.RolloutCompleted
		next.Version, next.AdditionalVersionWeights = r.To, nil
	default:
		r.Step++
		r.StepStartedAt = now.UTC()
		r.Apply(&next)
		if r.Steps[r.Step] >= 1 {
			r.State = fn.RolloutCompleted
		}
	}
	_, err = s.UpdateAlias(ctx, f.ID, a.Name, reason, func(b *fn.Alias) error {
		if b.Revision != a.Revision {
			return fmt.Errorf("the rollout of alias %q moved meanwhile: %w", a.Name, fn.ErrPrecondition)
		}
		b.Version, b.AdditionalVersionWeights, b.Rollout = next.Version, next.AdditionalVersionWeights, next.Rollout
		return nil
	})
	if err == nil && r.State == fn.RolloutRolledBack {
		s.log.Warn("rollout rolled back", "function", f.Name, "alias", a.Name, "reason", r.Reason)
	}
	return err
}

// outcomes counts the final executions of version n of a function that
// started from since, and those that failed.
func (s *Service) outcomes(ctx context.Context, functionID string, n int, since time.Time) (calls, failed int, err error) {
	q := store.ExecQuery{Limit: store.MaxExecLimit, Version: n, VersionSet: true}
	for {
		page, err := s.cfg.Store.ListExecutions(ctx, functionID, q)
		if err != nil {
			return 0, 0, err
		}
		for _, ex := range page {
			if ex.StartedAt.Before(since) {
				return calls, failed, nil
			}
			if !ex.Status.Final() {
				continue
			}
			calls++
			if ex.Status != fn.StatusSuccess {
				failed++
			}
		}
		if len(page) < q.PageSize() {
			return calls, failed, nil
		}
		q.Before = page[len(page)-1].ID
	}
}
