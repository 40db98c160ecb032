package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

var _ store.AuthStore = (*Store)(nil)

// defaultAuditLimit is the page size of a store.AuditQuery without one.
const defaultAuditLimit = 100

const keyCols = `id, name, scopes, functions, rate_limit, hash, sealed, kek_id, created_by, created_at, expires_at`

// CreateKey inserts a key; a taken ID is fn.ErrConflict.
func (s *Store) CreateKey(ctx context.Context, k *store.KeyRecord) error {
	if err := checkKey(k); err != nil {
		return fmt.Errorf("sqlite: create key: %w", err)
	}
	scopes, err := stringsJSON(k.Scopes)
	if err != nil {
		return fmt.Errorf("sqlite: create key %s: encode scopes: %w", k.ID, err)
	}
	functions, err := stringsJSON(k.Functions)
	if err != nil {
		return fmt.Errorf("sqlite: create key %s: encode functions: %w", k.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO api_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, scopes, functions, k.RateLimit, blob(k.Hash), blob(k.Sealed), k.KEKID, k.CreatedBy,
		nanos(k.CreatedAt), nanos(k.ExpiresAt))
	return wrapErr("create key "+k.ID, err)
}

// GetKey returns a key by ID.
func (s *Store) GetKey(ctx context.Context, id string) (*store.KeyRecord, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = ?`, id)
	k, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get key %q: %w", id, fn.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("get key", err)
	}
	return k, nil
}

// ListKeys returns every key, oldest first (ties by ID).
func (s *Store) ListKeys(ctx context.Context) ([]*store.KeyRecord, error) {
	return queryAll(ctx, s.r, "list keys", scanKey, `SELECT `+keyCols+` FROM api_keys ORDER BY created_at, id`)
}

// UpdateKeySeal replaces a key's hash, sealed secret and KEK id.
func (s *Store) UpdateKeySeal(ctx context.Context, id string, hash, sealed []byte, kekID string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET hash = ?, sealed = ?, kek_id = ? WHERE id = ?`,
		blob(hash), blob(sealed), kekID, id)
	return affectedOne(res, err, "update key seal", fmt.Sprintf("key %q", id))
}

// DeleteKey removes a key.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ?`, id)
	return affectedOne(res, err, "delete key", fmt.Sprintf("key %q", id))
}

const secretCols = `name, description, sealed, kek_id, version, created_at, updated_at`

// CreateSecret inserts a secret; a taken name is fn.ErrConflict.
func (s *Store) CreateSecret(ctx context.Context, sec *store.SecretRecord) error {
	if err := checkSecret(sec); err != nil {
		return fmt.Errorf("sqlite: create secret: %w", err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO secrets (`+secretCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		sec.Name, sec.Description, blob(sec.Sealed), sec.KEKID, sec.Version, nanos(sec.CreatedAt), nanos(sec.UpdatedAt))
	return wrapErr(fmt.Sprintf("create secret %q", sec.Name), err)
}

// GetSecret returns a secret by name.
func (s *Store) GetSecret(ctx context.Context, name string) (*store.SecretRecord, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+secretCols+` FROM secrets WHERE name = ?`, name)
	sec, err := scanSecret(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get secret %q: %w", name, fn.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("get secret", err)
	}
	return sec, nil
}

// ListSecrets returns every secret, ordered by name (bytewise).
func (s *Store) ListSecrets(ctx context.Context) ([]*store.SecretRecord, error) {
	return queryAll(ctx, s.r, "list secrets", scanSecret, `SELECT `+secretCols+` FROM secrets ORDER BY name`)
}

// UpdateSecret replaces the secret named sec.Name if its stored version is
// still prevVersion. It stores every field of sec as given, version
// included.
func (s *Store) UpdateSecret(ctx context.Context, sec *store.SecretRecord, prevVersion int) error {
	if err := checkSecret(sec); err != nil {
		return fmt.Errorf("sqlite: update secret: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("update secret", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE secrets SET description = ?, sealed = ?, kek_id = ?, version = ?,
		created_at = ?, updated_at = ? WHERE name = ? AND version = ?`,
		sec.Description, blob(sec.Sealed), sec.KEKID, sec.Version, nanos(sec.CreatedAt), nanos(sec.UpdatedAt),
		sec.Name, prevVersion)
	if err != nil {
		return wrapErr("update secret", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("update secret", err)
	}
	if n == 0 {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM secrets WHERE name = ?`, sec.Name).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: update secret %q: %w", sec.Name, fn.ErrNotFound)
		case err != nil:
			return wrapErr("update secret", err)
		}
		return fmt.Errorf("sqlite: update secret %q: version is no longer %d: %w", sec.Name, prevVersion, fn.ErrConflict)
	}
	return wrapErr("update secret", tx.Commit())
}

// DeleteSecret removes a secret.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM secrets WHERE name = ?`, name)
	return affectedOne(res, err, "delete secret", fmt.Sprintf("secret %q", name))
}

const auditCols = `id, time, key_id, source, action, target, before, after`

// AppendAudit appends entries to the audit log, all or none. A taken ID is
// fn.ErrConflict.
func (s *Store) AppendAudit(ctx context.Context, entries []*store.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i, e := range entries {
		if err := checkAuditEntry(e); err != nil {
			return fmt.Errorf("sqlite: append audit: entry %d: %w", i, err)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("append audit", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return wrapErr("append audit", err)
	}
	defer stmt.Close()
	for _, e := range entries {
		if _, err := stmt.ExecContext(ctx, e.ID, nanos(e.Time), e.KeyID, e.Source, e.Action, e.Target, e.Before, e.After); err != nil {
			return wrapErr("append audit entry "+e.ID, err)
		}
	}
	return wrapErr("append audit", tx.Commit())
}

// ListAudit returns the entries matching q, newest (greatest ID) first.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) ([]*store.AuditEntry, error) {
	var (
		where []string
		args  []any
	)
	if q.KeyID != "" {
		where, args = append(where, `key_id = ?`), append(args, q.KeyID)
	}
	if q.Action != "" {
		// The action itself, or one of its kind: those that begin with
		// q.Action and a dot, which are the strings from q.Action+"." up
		// to (not including) q.Action+"/" ('/' follows '.'), bytewise.
		where = append(where, `(action = ? OR (action >= ? AND action < ?))`)
		args = append(args, q.Action, q.Action+".", q.Action+"/")
	}
	if q.Target != "" {
		where, args = append(where, `target = ?`), append(args, q.Target)
	}
	if !q.Since.IsZero() {
		where, args = append(where, `time >= ?`), append(args, clampNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, `time < ?`), append(args, clampNanos(q.Until))
	}
	if q.Before != "" {
		where, args = append(where, `id < ?`), append(args, q.Before)
	}
	query := `SELECT ` + auditCols + ` FROM audit`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	return queryAll(ctx, s.r, "list audit", scanAuditEntry, query, args...)
}

// PruneAudit deletes the entries older than cutoff.
func (s *Store) PruneAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	if cutoff.IsZero() {
		return 0, nil // nothing is older than the zero time
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM audit WHERE time < ?`, clampNanos(cutoff))
	if err != nil {
		return 0, wrapErr("prune audit", err)
	}
	n, err := res.RowsAffected()
	return n, wrapErr("prune audit", err)
}

// affectedOne is the error of a write (res, err) meant for one row, what:
// fn.ErrNotFound if it found none.
func affectedOne(res sql.Result, err error, op, what string) error {
	if err != nil {
		return wrapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %s: %w", op, what, fn.ErrNotFound)
	}
	return nil
}

func checkKey(k *store.KeyRecord) error {
	switch {
	case k == nil || k.ID == "":
		return fn.Invalid("id", "is required")
	case math.IsNaN(k.RateLimit) || math.IsInf(k.RateLimit, 0) || k.RateLimit < 0:
		return fn.Invalid("rateLimit", "must be a number, 0 or more")
	}
	if err := checkTime("createdAt", k.CreatedAt); err != nil {
		return err
	}
	return checkTime("expiresAt", k.ExpiresAt)
}

func checkSecret(sec *store.SecretRecord) error {
	switch {
	case sec == nil || sec.Name == "":
		return fn.Invalid("name", "is required")
	case sec.Version < 1:
		return fn.Invalid("version", "must be 1 or more")
	}
	if err := checkTime("createdAt", sec.CreatedAt); err != nil {
		return err
	}
	return checkTime("updatedAt", sec.UpdatedAt)
}

func checkAuditEntry(e *store.AuditEntry) error {
	if e == nil || e.ID == "" {
		return fn.Invalid("id", "is required")
	}
	return checkTime("time", e.Time)
}

// Times are stored as Unix nanoseconds, which hold the years 1678 to
// 2262; others (but the zero time) are refused rather than stored wrong.
var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

func checkTime(field string, t time.Time) error {
	if !t.IsZero() && (t.Before(minNanos) || t.After(maxNanos)) {
		return fn.Invalid(field, "must be between the years 1678 and 2262")
	}
	return nil
}

// clampNanos is t in Unix nanoseconds, the bounds for times beyond them:
// a filter by a time past what can be stored is one by the bound.
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// blob stores bytes as a BLOB, never NULL: nil is empty.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// stringsJSON renders a list of strings as a JSON array, [] for none.
func stringsJSON(ss []string) (string, error) {
	if ss == nil {
		ss = []string{}
	}
	b, err := json.Marshal(ss)
	return string(b), err
}

// decodeStrings is the inverse of stringsJSON: never nil.
func decodeStrings(b []byte) ([]string, error) {
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return nil, err
	}
	if ss == nil {
		ss = []string{}
	}
	return ss, nil
}

// scanKey decodes a key row; nothing stored is trusted.
func scanKey(sc scanner) (*store.KeyRecord, error) {
	var (
		k                  store.KeyRecord
		scopes, functions  []byte
		created, expiresAt int64
	)
	if err := sc.Scan(&k.ID, &k.Name, &scopes, &functions, &k.RateLimit, &k.Hash, &k.Sealed, &k.KEKID,
		&k.CreatedBy, &created, &expiresAt); err != nil {
		return nil, err
	}
	var err error
	if k.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, fmt.Errorf("key %s: decode scopes: %w", k.ID, err)
	}
	if k.Functions, err = decodeStrings(functions); err != nil {
		return nil, fmt.Errorf("key %s: decode functions: %w", k.ID, err)
	}
	if math.IsNaN(k.RateLimit) || k.RateLimit < 0 {
		return nil, fmt.Errorf("key %s: stored rate limit %v is not 0 or more", k.ID, k.RateLimit)
	}
	k.CreatedAt, k.ExpiresAt = fromNanos(created), fromNanos(expiresAt)
	return &k, nil
}

// scanSecret decodes a secret row; nothing stored is trusted.
func scanSecret(sc scanner) (*store.SecretRecord, error) {
	var (
		sec              store.SecretRecord
		created, updated int64
	)
	if err := sc.Scan(&sec.Name, &sec.Description, &sec.Sealed, &sec.KEKID, &sec.Version, &created, &updated); err != nil {
		return nil, err
	}
	if sec.Version < 1 {
		return nil, fmt.Errorf("secret %q: stored version %d is not 1 or more", sec.Name, sec.Version)
	}
	sec.CreatedAt, sec.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &sec, nil
}

func scanAuditEntry(sc scanner) (*store.AuditEntry, error) {
	var (
		e  store.AuditEntry
		at int64
	)
	if err := sc.Scan(&e.ID, &at, &e.KeyID, &e.Source, &e.Action, &e.Target, &e.Before, &e.After); err != nil {
		return nil, err
	}
	e.Time = fromNanos(at)
	return &e, nil
}
