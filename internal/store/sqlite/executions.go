package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// execCols are the columns ListExecutions reads: all but event.
const execCols = `id, function_id, version, status, result, error, logs,
	started_at, duration_ms, cold_start, init_ms, queue_ms, peak_memory_kib, trigger, attempt, log_times`

// insertChunk is how many records one multi-row INSERT carries. Binding 32
// rows per call rather than one cuts the per-call cost of database/sql and
// the driver, about a quarter of the total; the remainder of a batch goes
// row by row.
const insertChunk = 32

// insertCols is the number of columns InsertExecutions binds per record.
const insertCols = 17

// stageSQL is the stage of the status of a row of t (an execution on its
// way, as ordered by fn.Status.Final): 0 queued, 1 running, 2 final.
func stageSQL(t string) string {
	return `CASE ` + t + `.status WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END`
}

// upsertSQL is what insertSQL does with a taken id: the new record
// replaces the stored one if its (attempt, stage) is greater, and is
// otherwise dropped. SQLite applies the rows of one INSERT in order, each
// seeing the ones before it, so records of one id within one statement
// are compared with each other the same way.
var upsertSQL = ` ON CONFLICT (id) DO UPDATE SET
	function_id = excluded.function_id, version = excluded.version, status = excluded.status,
	result = excluded.result, error = excluded.error, logs = excluded.logs,
	started_at = excluded.started_at, duration_ms = excluded.duration_ms,
	cold_start = excluded.cold_start, init_ms = excluded.init_ms, queue_ms = excluded.queue_ms,
	peak_memory_kib = excluded.peak_memory_kib, trigger = excluded.trigger,
	attempt = excluded.attempt, log_times = excluded.log_times, event = excluded.event
	WHERE (excluded.attempt, ` + stageSQL("excluded") + `) > (executions.attempt, ` + stageSQL("executions") + `)`

// insertSQL is the INSERT of rows records.
func insertSQL(rows int) string {
	row := "(" + strings.Repeat("?, ", insertCols-1) + "?)"
	return `INSERT INTO executions (` + execCols + `, event) VALUES ` +
		strings.Repeat(row+", ", rows-1) + row + upsertSQL
}

// InsertExecutions writes a batch of records in one transaction, through
// statements prepared once at Open. A record whose id is already stored
// (an async call's stages share one id) replaces the stored one if and
// only if its (attempt, stage) is greater, stage being 0 for queued, 1 for
// running and 2 for a final status; otherwise it is skipped, silently. So
// a final record is never overwritten by a late queued or running one, a
// retry's records replace the previous attempt's, and writing a batch
// again changes nothing.
func (s *Store) InsertExecutions(ctx context.Context, execs []*fn.Execution) error {
	if len(execs) == 0 {
		return nil
	}
	// Encode before taking the write lock.
	args := make([]any, 0, len(execs)*insertCols)
	for _, e := range execs {
		if e == nil || e.ID == "" || e.FunctionID == "" {
			return fmt.Errorf("sqlite: insert executions: %w", fn.Invalid("executionId", "record without id or function id"))
		}
		if e.Attempt < 0 {
			return fmt.Errorf("sqlite: insert executions: %s: %w", e.ID, fn.Invalid("attempt", "must not be negative"))
		}
		var errText any
		if e.Error != nil {
			b, err := json.Marshal(e.Error)
			if err != nil {
				return fmt.Errorf("sqlite: insert executions: encode error of %s: %w", e.ID, err)
			}
			errText = string(b)
		}
		args = append(args, e.ID, e.FunctionID, e.Version, string(e.Status),
			rawText(e.Result), errText, e.Logs, nanos(e.StartedAt), e.DurationMs,
			boolInt(e.ColdStart), e.InitMs, e.QueueMs, e.PeakMemoryKiB, e.Trigger, e.Attempt, logTimesText(e.LogTimes), rawText(e.Event))
	}

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("insert executions", err)
	}
	defer tx.Rollback()
	many := tx.StmtContext(ctx, s.insertMany)
	one := tx.StmtContext(ctx, s.insertOne)
	// A statement takes microseconds: watching ctx for each (a goroutine per
	// call in the driver) would cost more than the insert, so they run
	// detached and ctx is checked between them; the transaction itself
	// still rolls back when ctx ends.
	stmtCtx := context.WithoutCancel(ctx)
	for i := 0; i < len(execs); {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlite: insert executions: %w", err)
		}
		stmt, n := many, insertChunk
		if len(execs)-i < insertChunk {
			stmt, n = one, 1
		}
		if _, err := stmt.ExecContext(stmtCtx, args[i*insertCols:(i+n)*insertCols]...); err != nil {
			return wrapErr("insert executions", err)
		}
		i += n
	}
	return wrapErr("insert executions", tx.Commit())
}

// ListExecutions returns a page of a function's executions, newest first,
// without their events; q.PageSize says how many at most.
func (s *Store) ListExecutions(ctx context.Context, functionID string, q store.ExecQuery) ([]*fn.Execution, error) {
	limit := q.PageSize()

	var b strings.Builder
	b.WriteString(`SELECT ` + execCols + ` FROM executions WHERE function_id = ?`)
	args := []any{functionID}
	if q.Status != "" {
		b.WriteString(` AND status = ?`)
		args = append(args, string(q.Status))
	}
	if q.VersionSet {
		b.WriteString(` AND version = ?`)
		args = append(args, q.Version)
	}
	if q.Before != "" {
		b.WriteString(` AND id < ?`)
		args = append(args, q.Before)
	}
	if !q.Since.IsZero() {
		b.WriteString(` AND started_at >= ?`)
		args = append(args, nanos(q.Since))
	}
	if !q.Until.IsZero() {
		b.WriteString(` AND started_at < ?`)
		args = append(args, nanos(q.Until))
	}
	b.WriteString(` ORDER BY id DESC LIMIT ?`)
	if q.Text != "" {
		// The newest MaxTextScan executions that pass the other filters,
		// then those of them that contain the text: a bounded scan.
		args = append(args, store.MaxTextScan)
		inner := b.String()
		b.Reset()
		b.WriteString(`SELECT ` + execCols + ` FROM (` + inner + `)
			WHERE instr(lower(logs), lower(?)) > 0
			OR instr(lower(coalesce(json_extract(error, '$.type'), '') || char(10) || coalesce(json_extract(error, '$.message'), '')), lower(?)) > 0
			ORDER BY id DESC LIMIT ?`)
		args = append(args, q.Text, q.Text)
	}
	args = append(args, limit)

	rows, err := s.r.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, wrapErr("list executions", err)
	}
	defer rows.Close()
	execs := make([]*fn.Execution, 0, min(limit, 64))
	for rows.Next() {
		e, err := scanExecution(rows, false)
		if err != nil {
			return nil, wrapErr("list executions", err)
		}
		execs = append(execs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("list executions", err)
	}
	return execs, nil
}

// GetExecution returns one execution of a function in full.
func (s *Store) GetExecution(ctx context.Context, functionID, executionID string) (*fn.Execution, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+execCols+`, event FROM executions
		WHERE id = ? AND function_id = ?`, executionID, functionID)
	e, err := scanExecution(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get execution %q of %q: %w", executionID, functionID, fn.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("get execution", err)
	}
	return e, nil
}

// PruneExecutions deletes all but the newest keep executions of a function.
// A negative keep is fn.ErrInvalid.
func (s *Store) PruneExecutions(ctx context.Context, functionID string, keep int) (int64, error) {
	if keep < 0 {
		return 0, fmt.Errorf("sqlite: prune executions: %w", fn.Invalid("keep", "must not be negative"))
	}
	// The subquery walks the (function_id, id) index down to the oldest
	// row to keep; the delete then takes the index range below it. With
	// fewer than keep+1 rows the subquery is NULL and nothing matches.
	res, err := s.w.ExecContext(ctx, `DELETE FROM executions WHERE function_id = ? AND id <= (
		SELECT id FROM executions WHERE function_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
		functionID, functionID, keep)
	if err != nil {
		return 0, wrapErr("prune executions", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapErr("prune executions", err)
	}
	return n, nil
}

// scanExecution reads the execCols, then event when withEvent.
func scanExecution(sc scanner, withEvent bool) (*fn.Execution, error) {
	var (
		e                      fn.Execution
		status                 string
		result, errJSON, event []byte
		times                  []byte
		started, cold          int64
	)
	dest := []any{&e.ID, &e.FunctionID, &e.Version, &status, &result, &errJSON, &e.Logs,
		&started, &e.DurationMs, &cold, &e.InitMs, &e.QueueMs, &e.PeakMemoryKiB, &e.Trigger, &e.Attempt, &times}
	if withEvent {
		dest = append(dest, &event)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	// Nothing stored is trusted. Bad data is the store's failure, not
	// the caller's: a plain error, as for undecodable JSON.
	if e.Attempt < 0 {
		return nil, fmt.Errorf("execution %s: stored attempt %d is negative", e.ID, e.Attempt)
	}
	e.Status = fn.Status(status)
	e.Result = rawJSON(result)
	e.Event = rawJSON(event)
	if len(errJSON) > 0 {
		e.Error = new(fn.ErrorInfo)
		if err := json.Unmarshal(errJSON, e.Error); err != nil {
			return nil, fmt.Errorf("decode error of %s: %w", e.ID, err)
		}
	}
	e.StartedAt = fromNanos(started)
	e.ColdStart = cold != 0
	e.LogTimes = decodeLogTimes(times)
	return &e, nil
}

// logTimesText is an execution's log times as stored: JSON, NULL for none.
func logTimesText(times []int) any {
	if len(times) == 0 {
		return nil
	}
	b, _ := json.Marshal(times)
	return string(b)
}

// decodeLogTimes reads stored log times. Times that do not decode are
// dropped rather than failing the record: they only decorate its logs.
func decodeLogTimes(b []byte) []int {
	if len(b) == 0 {
		return nil
	}
	var times []int
	if json.Unmarshal(b, &times) != nil {
		return nil
	}
	return times
}
