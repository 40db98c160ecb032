package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nimbusfaas/nimbus/internal/store"
)

// SystemID is who the server's own changes are done by (a rollout's
// steps, a rotation at start-up).
const SystemID = "system"

// Audit appends changes to the audit log. A nil *Audit records nothing.
type Audit struct {
	store store.AuthStore
	log   *slog.Logger
	now   func() time.Time
}

// NewAudit makes an Audit on st.
func NewAudit(st store.AuthStore, log *slog.Logger) *Audit {
	if log == nil {
		log = slog.Default()
	}
	return &Audit{store: st, log: log.With("component", "audit"), now: time.Now}
}

// Record appends one change: action done to target by ctx's principal,
// from ctx's source, with the hashes of before and after (as JSON; nil for
// none). The change has been made: a failure to append is logged, not
// returned.
func (a *Audit) Record(ctx context.Context, action, target string, before, after any) {
	if a == nil {
		return
	}
	e := &store.AuditEntry{ID: a.newID(), Time: a.now().UTC(), KeyID: SystemID, Source: sourceOf(ctx),
		Action: action, Target: target, Before: stateHash(before), After: stateHash(after)}
	if p := FromContext(ctx); p != nil {
		e.KeyID = p.KeyID
	}
	// The change is made: record it even if the request that made it
	// has gone.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.store.AppendAudit(actx, []*store.AuditEntry{e}); err != nil {
		a.log.Error("could not append to the audit log", "action", action, "target", target, "key", e.KeyID, "err", err)
	}
}

// newID sorts by time: 16 hex digits of Unix nanoseconds, then 8 random
// ones so that two servers never make the same.
func (a *Audit) newID() string {
	r := make([]byte, 4)
	rand.Read(r)
	return fmt.Sprintf("%016x%s", a.now().UnixNano(), hex.EncodeToString(r))
}

// stateHash is the hex SHA-256 of v as JSON, or "" for nil.
func stateHash(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// List returns entries matching q, newest first.
func (a *Audit) List(ctx context.Context, q store.AuditQuery) ([]*store.AuditEntry, error) {
	return a.store.ListAudit(ctx, q)
}

// Prune deletes, every hour until ctx ends, the entries older than
// retention.
func (a *Audit) Prune(ctx context.Context, retention time.Duration) {
	if a == nil || retention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := a.store.PruneAudit(ctx, a.now().Add(-retention)); err != nil && ctx.Err() == nil {
			a.log.Warn("pruning the audit log failed", "err", err)
		} else if n > 0 {
			a.log.Info("pruned the audit log", "entries", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
