package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

const functionCols = `id, name, runtime, handler, files, env, timeout_ms, memory_mb,
	driver, max_instances, version, created_at, updated_at, network,
	min_instances, concurrency, keep_alive_ms, code, url, async, schedules, test_events, secret_env`

// CreateFunction inserts f; a taken name (or id) is fn.ErrConflict.
func (s *Store) CreateFunction(ctx context.Context, f *fn.Function) error {
	if f == nil || f.ID == "" {
		return fmt.Errorf("sqlite: create function: %w", fn.Invalid("id", "is required"))
	}
	files, env, code, url, err := encodeMaps(f)
	if err != nil {
		return fmt.Errorf("sqlite: create function: %w", err)
	}
	async, schedules, err := encodeAsync(f)
	if err != nil {
		return fmt.Errorf("sqlite: create function: %w", err)
	}
	tests, err := encodeTestEvents(f)
	if err != nil {
		return fmt.Errorf("sqlite: create function: %w", err)
	}
	secretEnv, err := encodeSecretEnv(f)
	if err != nil {
		return fmt.Errorf("sqlite: create function: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO functions (`+functionCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.Name, f.Runtime, f.Handler, files, env, f.Timeout, f.Memory,
		f.Driver, f.MaxInstances, f.Revision, nanos(f.CreatedAt), nanos(f.UpdatedAt), boolInt(f.Network),
		f.MinInstances, f.Concurrency, f.KeepAlive, code, url, async, schedules, tests, secretEnv)
	return wrapErr("create function", err)
}

// GetFunction finds a function by id, or else by name.
func (s *Store) GetFunction(ctx context.Context, idOrName string) (*fn.Function, error) {
	// One query for both: a name may look like an id, and the id wins.
	row := s.r.QueryRowContext(ctx, `SELECT `+functionCols+` FROM functions
		WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1`, idOrName, idOrName, idOrName)
	f, err := scanFunction(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get function %q: %w", idOrName, fn.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("get function", err)
	}
	return f, nil
}

// ListFunctions returns every function, ordered by name.
func (s *Store) ListFunctions(ctx context.Context) ([]*fn.Function, error) {
	return queryAll(ctx, s.r, "list functions", scanFunction, `SELECT `+functionCols+` FROM functions ORDER BY name`)
}

// queryAll runs a query and scans every row it returns; what names the
// operation in errors.
func queryAll[T any](ctx context.Context, db *sql.DB, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr(what, err)
	}
	return out, nil
}

// UpdateFunction replaces the function with f.ID if its version is still
// prevVersion. It stores every field of f as given, version included.
func (s *Store) UpdateFunction(ctx context.Context, f *fn.Function, prevVersion int) error {
	if f == nil || f.ID == "" {
		return fmt.Errorf("sqlite: update function: %w", fn.Invalid("id", "is required"))
	}
	files, env, code, url, err := encodeMaps(f)
	if err != nil {
		return fmt.Errorf("sqlite: update function: %w", err)
	}
	async, schedules, err := encodeAsync(f)
	if err != nil {
		return fmt.Errorf("sqlite: update function: %w", err)
	}
	tests, err := encodeTestEvents(f)
	if err != nil {
		return fmt.Errorf("sqlite: update function: %w", err)
	}
	secretEnv, err := encodeSecretEnv(f)
	if err != nil {
		return fmt.Errorf("sqlite: update function: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("update function", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE functions SET name = ?, runtime = ?, handler = ?,
		files = ?, env = ?, timeout_ms = ?, memory_mb = ?, driver = ?, max_instances = ?,
		version = ?, created_at = ?, updated_at = ?, network = ?,
		min_instances = ?, concurrency = ?, keep_alive_ms = ?, code = ?, url = ?,
		async = ?, schedules = ?, test_events = ?, secret_env = ?
		WHERE id = ? AND version = ?`,
		f.Name, f.Runtime, f.Handler, files, env, f.Timeout, f.Memory, f.Driver,
		f.MaxInstances, f.Revision, nanos(f.CreatedAt), nanos(f.UpdatedAt), boolInt(f.Network),
		f.MinInstances, f.Concurrency, f.KeepAlive, code, url, async, schedules, tests, secretEnv, f.ID, prevVersion)
	if err != nil {
		return wrapErr("update function", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("update function", err)
	}
	if n == 0 {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM functions WHERE id = ?`, f.ID).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: update function %q: %w", f.ID, fn.ErrNotFound)
		case err != nil:
			return wrapErr("update function", err)
		}
		return fmt.Errorf("sqlite: update function %q: version is no longer %d: %w", f.ID, prevVersion, fn.ErrConflict)
	}
	return wrapErr("update function", tx.Commit())
}

// DeleteFunction removes a function and all its executions, versions and
// aliases.
func (s *Store) DeleteFunction(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("delete function", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM functions WHERE id = ?`, id)
	if err != nil {
		return wrapErr("delete function", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("delete function", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete function %q: %w", id, fn.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM executions WHERE function_id = ?`, id); err != nil {
		return wrapErr("delete function executions", err)
	}
	// ON DELETE CASCADE removes these already; deleting them here too
	// keeps a database written with foreign keys off clean.
	if _, err := tx.ExecContext(ctx, `DELETE FROM function_versions WHERE function_id = ?`, id); err != nil {
		return wrapErr("delete function versions", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM aliases WHERE function_id = ?`, id); err != nil {
		return wrapErr("delete function aliases", err)
	}
	return wrapErr("delete function", tx.Commit())
}

// codeDoc is the code column: the stored code, layers and build.
type codeDoc struct {
	Info   *fn.CodeInfo      `json:"info,omitempty"`
	Layers []string          `json:"layers,omitempty"`
	Build  *fn.BuildSettings `json:"build,omitempty"`
	Status *fn.BuildStatus   `json:"status,omitempty"`
}

// encodeMaps renders f's files, env, code and URL settings as JSON text.
func encodeMaps(f *fn.Function) (files, env, code, url string, err error) {
	fb, err := json.Marshal(f.Files)
	if err != nil {
		return "", "", "", "", fmt.Errorf("encode files: %w", err)
	}
	eb, err := json.Marshal(f.Env)
	if err != nil {
		return "", "", "", "", fmt.Errorf("encode env: %w", err)
	}
	d := codeDoc{Info: f.CodeInfo, Layers: f.Layers, Build: f.Build, Status: f.BuildStatus}
	if d.Info != nil || d.Build != nil || d.Status != nil || len(d.Layers) > 0 {
		cb, err := json.Marshal(d)
		if err != nil {
			return "", "", "", "", fmt.Errorf("encode code: %w", err)
		}
		code = string(cb)
	}
	if f.URL != nil {
		ub, err := json.Marshal(f.URL)
		if err != nil {
			return "", "", "", "", fmt.Errorf("encode url: %w", err)
		}
		url = string(ub)
	}
	return string(fb), string(eb), code, url, nil
}

// encodeAsync renders f's async settings and schedules as JSON text, NULL
// (nil) for none. A schedule's NextRun is never stored.
func encodeAsync(f *fn.Function) (async, schedules any, err error) {
	if f.Async != nil {
		b, err := json.Marshal(f.Async)
		if err != nil {
			return nil, nil, fmt.Errorf("encode async: %w", err)
		}
		async = string(b)
	}
	if f.Schedules != nil {
		b, err := json.Marshal(withoutNextRun(f.Schedules))
		if err != nil {
			return nil, nil, fmt.Errorf("encode schedules: %w", err)
		}
		schedules = string(b)
	}
	return async, schedules, nil
}

// encodeTestEvents renders f's test events as JSON text, NULL (nil) for
// none.
func encodeTestEvents(f *fn.Function) (any, error) {
	if len(f.TestEvents) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(f.TestEvents)
	if err != nil {
		return nil, fmt.Errorf("encode test events: %w", err)
	}
	return string(b), nil
}

// encodeSecretEnv renders f's secret references (names, never values)
// as JSON text, NULL (nil) for none.
func encodeSecretEnv(f *fn.Function) (any, error) {
	if len(f.SecretEnv) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(f.SecretEnv)
	if err != nil {
		return nil, fmt.Errorf("encode secret env: %w", err)
	}
	return string(b), nil
}

// withoutNextRun returns a copy of ss with NextRun cleared: it is shown,
// never stored.
func withoutNextRun(ss []fn.Schedule) []fn.Schedule {
	out := make([]fn.Schedule, len(ss))
	for i, s := range ss {
		s.NextRun = nil
		out[i] = s
	}
	return out
}

type scanner interface{ Scan(dest ...any) error }

func scanFunction(sc scanner) (*fn.Function, error) {
	var (
		f                fn.Function
		files, env, code []byte
		url              []byte
		async, schedules []byte
		tests            []byte
		secretEnv        []byte
		created, updated int64
		network          int64
	)
	if err := sc.Scan(&f.ID, &f.Name, &f.Runtime, &f.Handler, &files, &env, &f.Timeout, &f.Memory,
		&f.Driver, &f.MaxInstances, &f.Revision, &created, &updated, &network,
		&f.MinInstances, &f.Concurrency, &f.KeepAlive, &code, &url, &async, &schedules, &tests, &secretEnv); err != nil {
		return nil, err
	}
	if len(code) > 0 {
		var d codeDoc
		if err := json.Unmarshal(code, &d); err != nil {
			return nil, fmt.Errorf("decode code of %s: %w", f.ID, err)
		}
		f.CodeInfo, f.Layers, f.Build, f.BuildStatus = d.Info, d.Layers, d.Build, d.Status
	}
	if len(url) > 0 {
		f.URL = new(fn.URLConfig)
		if err := json.Unmarshal(url, f.URL); err != nil {
			return nil, fmt.Errorf("decode url of %s: %w", f.ID, err)
		}
	}
	if len(async) > 0 {
		f.Async = new(fn.AsyncConfig)
		if err := json.Unmarshal(async, f.Async); err != nil {
			return nil, fmt.Errorf("decode async of %s: %w", f.ID, err)
		}
	}
	if len(schedules) > 0 {
		if err := json.Unmarshal(schedules, &f.Schedules); err != nil {
			return nil, fmt.Errorf("decode schedules of %s: %w", f.ID, err)
		}
		f.Schedules = withoutNextRun(f.Schedules)
	}
	if len(tests) > 0 {
		if err := json.Unmarshal(tests, &f.TestEvents); err != nil {
			return nil, fmt.Errorf("decode test events of %s: %w", f.ID, err)
		}
	}
	if err := json.Unmarshal(files, &f.Files); err != nil {
		return nil, fmt.Errorf("decode files of %s: %w", f.ID, err)
	}
	if err := json.Unmarshal(env, &f.Env); err != nil {
		return nil, fmt.Errorf("decode env of %s: %w", f.ID, err)
	}
	if len(secretEnv) > 0 {
		if err := json.Unmarshal(secretEnv, &f.SecretEnv); err != nil {
			return nil, fmt.Errorf("decode secret env of %s: %w", f.ID, err)
		}
		if _, err := fn.CheckSecretEnv(f.Env, f.SecretEnv); err != nil {
			return nil, fmt.Errorf("secret env of %s: %v", f.ID, err) // stored, not sent: not ErrInvalid
		}
		if len(f.SecretEnv) == 0 {
			f.SecretEnv = nil
		}
	}
	f.CreatedAt, f.UpdatedAt = fromNanos(created), fromNanos(updated)
	f.Network = network != 0
	return &f, nil
}
