package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Versions and aliases are stored as JSON (the data columns), with their
// keys in columns of their own; a read checks that the two agree.

// CreateVersion stores a published version of a function.
func (s *Store) CreateVersion(ctx context.Context, v *fn.Version) error {
	if v == nil || v.Function == nil || v.ID == "" {
		return fmt.Errorf("sqlite: create version: %w", fn.Invalid("id", "is required"))
	}
	if v.Version < 1 {
		return fmt.Errorf("sqlite: create version: %w", fn.Invalid("version", "must be 1 or more"))
	}
	data, err := json.Marshal(versionToStore(v))
	if err != nil {
		return fmt.Errorf("sqlite: create version: encode: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("create version", err)
	}
	defer tx.Rollback()
	if err := functionExists(ctx, tx, v.ID, "create version"); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO function_versions (function_id, number, data, published_at)
		VALUES (?, ?, ?, ?)`, v.ID, v.Version, string(data), nanos(v.PublishedAt))
	if err != nil {
		return wrapErr(fmt.Sprintf("create version %d of %s", v.Version, v.ID), err)
	}
	return wrapErr("create version", tx.Commit())
}

// GetVersion returns a function's version by number.
func (s *Store) GetVersion(ctx context.Context, functionID string, number int) (*fn.Version, error) {
	row := s.r.QueryRowContext(ctx, `SELECT function_id, number, data FROM function_versions
		WHERE function_id = ? AND number = ?`, functionID, number)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get version %d of %s: %w", number, functionID, fn.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("get version", err)
	}
	return v, nil
}

// ListVersions returns a function's versions, oldest first.
func (s *Store) ListVersions(ctx context.Context, functionID string) ([]*fn.Version, error) {
	return queryAll(ctx, s.r, "list versions", scanVersion, `SELECT function_id, number, data FROM function_versions
		WHERE function_id = ? ORDER BY number`, functionID)
}

// DeleteVersion removes a version.
func (s *Store) DeleteVersion(ctx context.Context, functionID string, number int) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM function_versions WHERE function_id = ? AND number = ?`, functionID, number)
	if err != nil {
		return wrapErr("delete version", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("delete version", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete version %d of %s: %w", number, functionID, fn.ErrNotFound)
	}
	return nil
}

// CreateAlias stores a new alias.
func (s *Store) CreateAlias(ctx context.Context, a *fn.Alias) error {
	if err := checkAliasKey(a); err != nil {
		return fmt.Errorf("sqlite: create alias: %w", err)
	}
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("sqlite: create alias: encode: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("create alias", err)
	}
	defer tx.Rollback()
	if err := functionExists(ctx, tx, a.FunctionID, "create alias"); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO aliases (function_id, name, revision, data) VALUES (?, ?, ?, ?)`,
		a.FunctionID, a.Name, a.Revision, string(data))
	if err != nil {
		return wrapErr(fmt.Sprintf("create alias %q of %s", a.Name, a.FunctionID), err)
	}
	return wrapErr("create alias", tx.Commit())
}

// GetAlias returns a function's alias by name.
func (s *Store) GetAlias(ctx context.Context, functionID, name string) (*fn.Alias, error) {
	row := s.r.QueryRowContext(ctx, `SELECT function_id, name, revision, data FROM aliases
		WHERE function_id = ? AND name = ?`, functionID, name)
	a, err := scanAlias(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get alias %q of %s: %w", name, functionID, fn.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("get alias", err)
	}
	return a, nil
}

// ListAliases returns a function's aliases, ordered by name (bytewise).
func (s *Store) ListAliases(ctx context.Context, functionID string) ([]*fn.Alias, error) {
	return queryAll(ctx, s.r, "list aliases", scanAlias, `SELECT function_id, name, revision, data FROM aliases
		WHERE function_id = ? ORDER BY name`, functionID)
}

// UpdateAlias replaces the alias if its stored revision is still
// prevRevision.
func (s *Store) UpdateAlias(ctx context.Context, a *fn.Alias, prevRevision int) error {
	if err := checkAliasKey(a); err != nil {
		return fmt.Errorf("sqlite: update alias: %w", err)
	}
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("sqlite: update alias: encode: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("update alias", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE aliases SET revision = ?, data = ?
		WHERE function_id = ? AND name = ? AND revision = ?`, a.Revision, string(data), a.FunctionID, a.Name, prevRevision)
	if err != nil {
		return wrapErr("update alias", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("update alias", err)
	}
	if n == 0 {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM aliases WHERE function_id = ? AND name = ?`, a.FunctionID, a.Name).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: update alias %q of %s: %w", a.Name, a.FunctionID, fn.ErrNotFound)
		case err != nil:
			return wrapErr("update alias", err)
		}
		return fmt.Errorf("sqlite: update alias %q of %s: revision is no longer %d: %w", a.Name, a.FunctionID, prevRevision, fn.ErrConflict)
	}
	return wrapErr("update alias", tx.Commit())
}

// DeleteAlias removes an alias.
func (s *Store) DeleteAlias(ctx context.Context, functionID, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM aliases WHERE function_id = ? AND name = ?`, functionID, name)
	if err != nil {
		return wrapErr("delete alias", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("delete alias", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete alias %q of %s: %w", name, functionID, fn.ErrNotFound)
	}
	return nil
}

// functionExists is nil if the function id exists, fn.ErrNotFound if not.
func functionExists(ctx context.Context, tx *sql.Tx, id, op string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM functions WHERE id = ?`, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: %s: function %q: %w", op, id, fn.ErrNotFound)
	case err != nil:
		return wrapErr(op, err)
	}
	return nil
}

// checkAliasKey checks an alias's key: its function and a name the API
// would accept (as the other stores do).
func checkAliasKey(a *fn.Alias) error {
	if a == nil || a.FunctionID == "" {
		return fn.Invalid("functionId", "is required")
	}
	return fn.CheckAliasName(a.Name)
}

// versionToStore is the snapshot as stored: what a function store never
// keeps (inline code and archives as they came in, the next run of a
// schedule) is left out, as CreateFunction leaves it out.
func versionToStore(v *fn.Version) *fn.Version {
	f := *v.Function
	f.Code, f.ZipFile, f.Archive = "", nil, nil
	if f.Schedules != nil {
		f.Schedules = withoutNextRun(f.Schedules)
	}
	out := *v
	out.Function = &f
	return &out
}

// scanVersion decodes a version row and checks it: nothing stored is
// trusted, and a snapshot that names another function or number than
// its key is an error rather than a wrong answer.
func scanVersion(sc scanner) (*fn.Version, error) {
	var (
		fid    string
		number int
		data   []byte
	)
	if err := sc.Scan(&fid, &number, &data); err != nil {
		return nil, err
	}
	var v fn.Version
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decode version %d of %s: %w", number, fid, err)
	}
	switch {
	case number < 1:
		return nil, fmt.Errorf("version %d of %s: not a version number", number, fid)
	case v.Function == nil:
		return nil, fmt.Errorf("version %d of %s: stored without its function", number, fid)
	case v.ID != fid || v.Version != number:
		return nil, fmt.Errorf("version %d of %s: stored data is version %d of %q", number, fid, v.Version, v.ID)
	}
	v.PublishedAt = v.PublishedAt.UTC()
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return &v, nil
}

// scanAlias decodes an alias row and checks it as scanVersion does.
func scanAlias(sc scanner) (*fn.Alias, error) {
	var (
		fid, name string
		revision  int
		data      []byte
	)
	if err := sc.Scan(&fid, &name, &revision, &data); err != nil {
		return nil, err
	}
	var a fn.Alias
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decode alias %q of %s: %w", name, fid, err)
	}
	if a.FunctionID != fid || a.Name != name || a.Revision != revision {
		return nil, fmt.Errorf("alias %q of %s at revision %d: stored data is alias %q of %q at revision %d",
			name, fid, revision, a.Name, a.FunctionID, a.Revision)
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	for i := range a.History {
		a.History[i].At = a.History[i].At.UTC()
	}
	return &a, nil
}
