package sqlite

import (
	"context"
	"time"

	"github.com/nimbusfaas/nimbus/internal/store"
)

var _ store.MetricsStore = (*Store)(nil)

// SaveMinutes implements store.MetricsStore: an upsert per minute, all in
// one transaction.
func (s *Store) SaveMinutes(ctx context.Context, minutes []store.MetricMinute) error {
	if len(minutes) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("save metric minutes", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO metric_minutes (function_id, start, data) VALUES (?, ?, ?)
		ON CONFLICT (function_id, start) DO UPDATE SET data = excluded.data`)
	if err != nil {
		return wrapErr("save metric minutes", err)
	}
	defer stmt.Close()
	for _, m := range minutes {
		data := m.Data
		if data == nil {
			data = []byte{} // NOT NULL: an empty aggregate is still a row
		}
		if _, err := stmt.ExecContext(ctx, m.FunctionID, nanos(m.Start), data); err != nil {
			return wrapErr("save metric minutes", err)
		}
	}
	return wrapErr("save metric minutes", tx.Commit())
}

// LoadMinutes implements store.MetricsStore.
func (s *Store) LoadMinutes(ctx context.Context, since time.Time) ([]store.MetricMinute, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT function_id, start, data FROM metric_minutes
		WHERE start >= ? ORDER BY start, function_id`, nanos(since))
	if err != nil {
		return nil, wrapErr("load metric minutes", err)
	}
	defer rows.Close()
	var out []store.MetricMinute
	for rows.Next() {
		var (
			m     store.MetricMinute
			start int64
		)
		if err := rows.Scan(&m.FunctionID, &start, &m.Data); err != nil {
			return nil, wrapErr("load metric minutes", err)
		}
		m.Start = fromNanos(start)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("load metric minutes", err)
	}
	return out, nil
}

// PruneMinutes implements store.MetricsStore.
func (s *Store) PruneMinutes(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM metric_minutes WHERE start < ?`, nanos(cutoff))
	if err != nil {
		return 0, wrapErr("prune metric minutes", err)
	}
	n, err := res.RowsAffected()
	return n, wrapErr("prune metric minutes", err)
}

// DeleteMinutes implements store.MetricsStore.
func (s *Store) DeleteMinutes(ctx context.Context, functionID string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM metric_minutes WHERE function_id = ?`, functionID)
	return wrapErr("delete metric minutes", err)
}
