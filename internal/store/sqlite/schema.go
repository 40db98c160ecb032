package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema's steps, in order; step i (from 0) brings the
// database to version i+1, recorded in PRAGMA user_version. Steps are never
// edited once released, only appended. They create without IF NOT EXISTS so
// that running a step twice fails loudly.
var migrations = []string{
	// 1: functions. files and env are JSON objects; times are Unix
	// nanoseconds (0 for the zero time).
	`CREATE TABLE functions (
		id            TEXT    PRIMARY KEY,
		name          TEXT    NOT NULL UNIQUE,
		runtime       TEXT    NOT NULL,
		handler       TEXT    NOT NULL,
		files         TEXT    NOT NULL,
		env           TEXT    NOT NULL,
		timeout_ms    INTEGER NOT NULL,
		memory_mb     INTEGER NOT NULL,
		driver        TEXT    NOT NULL,
		max_instances INTEGER NOT NULL,
		version       INTEGER NOT NULL,
		created_at    INTEGER NOT NULL,
		updated_at    INTEGER NOT NULL
	) STRICT`,

	// 2: executions. ids sort in creation order, so (function_id, id) is
	// a function's history and (function_id, status, id) the same by status.
	// There is no foreign key to functions: a record that arrives for a
	// function deleted meanwhile must not fail the rest of its batch.
	`CREATE TABLE executions (
		id          TEXT    PRIMARY KEY,
		function_id TEXT    NOT NULL,
		version     INTEGER NOT NULL,
		status      TEXT    NOT NULL,
		event       TEXT,
		result      TEXT,
		error       TEXT,
		logs        TEXT    NOT NULL,
		started_at  INTEGER NOT NULL,
		duration_ms REAL    NOT NULL,
		cold_start  INTEGER NOT NULL,
		init_ms     REAL    NOT NULL,
		queue_ms    REAL    NOT NULL
	) STRICT;
	CREATE INDEX executions_by_function ON executions (function_id, id);
	CREATE INDEX executions_by_function_status ON executions (function_id, status, id);`,

	// 3: metrics. Each execution's peak memory in KiB (0: unknown), and
	// per-minute metric aggregates (store.MetricMinute): one row per
	// function and minute, function_id '' for the whole system, start in
	// Unix nanoseconds, data encoded by package metrics and opaque here.
	`ALTER TABLE executions ADD COLUMN peak_memory_kib INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE metric_minutes (
		function_id TEXT    NOT NULL,
		start       INTEGER NOT NULL,
		data        BLOB    NOT NULL,
		PRIMARY KEY (function_id, start)
	) STRICT, WITHOUT ROWID;
	CREATE INDEX metric_minutes_by_start ON metric_minutes (start);`,

	// 4: a function's network access (fn.Function.Network), 0 or 1.
	`ALTER TABLE functions ADD COLUMN network INTEGER NOT NULL DEFAULT 0;`,

	// 5: scaling (fn.Function.MinInstances, Concurrency, KeepAlive in ms).
	`ALTER TABLE functions ADD COLUMN min_instances INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE functions ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 1;
	ALTER TABLE functions ADD COLUMN keep_alive_ms INTEGER NOT NULL DEFAULT 0;`,

	// 6: code as a blob. A function's code is one canonical zip in blobs,
	// by its SHA-256; code is a JSON object describing it, its layers and
	// its build (codeDoc), '' for functions whose files are inline.
	`ALTER TABLE functions ADD COLUMN code TEXT NOT NULL DEFAULT '';
	CREATE TABLE blobs (
		sha256     TEXT    PRIMARY KEY,
		data       BLOB    NOT NULL,
		created_at INTEGER NOT NULL
	) STRICT;`,

	// 7: blobs in pieces of store.BlobChunk bytes, read and written a piece
	// at a time. A blob's row in blobs is written after its pieces, with
	// their count (chunks) and its size; blobs.data keeps the bytes of
	// blobs written whole by step 6 (chunks 0) and is empty otherwise.
	`ALTER TABLE blobs ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE blobs ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
	UPDATE blobs SET size = length(data);
	CREATE TABLE blob_chunks (
		sha256 TEXT    NOT NULL,
		n      INTEGER NOT NULL,
		data   BLOB    NOT NULL,
		PRIMARY KEY (sha256, n)
	) STRICT, WITHOUT ROWID;`,

	// 8: function URLs. url is a function's URL settings as JSON
	// (fn.URLConfig), '' for none; trigger is the way an execution came in
	// (fn.Execution.Trigger), '' for the API.
	`ALTER TABLE functions ADD COLUMN url TEXT NOT NULL DEFAULT '';
	ALTER TABLE executions ADD COLUMN trigger TEXT NOT NULL DEFAULT '';`,

	// 9: async calls and schedules. attempt is an execution's try of an
	// async call (fn.Execution.Attempt, 0 for other calls); async and
	// schedules are a function's async settings (fn.AsyncConfig) and its
	// schedules (fn.Schedule, without NextRun) as JSON, NULL for none.
	`ALTER TABLE executions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE functions ADD COLUMN async TEXT;
	ALTER TABLE functions ADD COLUMN schedules TEXT;`,

	// 10: published versions and aliases. data is the JSON of an
	// fn.Version (the whole snapshot) or of an fn.Alias; the key columns
	// repeat what data says, and reads check that they agree. Both go
	// with their function (foreign keys are on in every connection, and
	// DeleteFunction deletes them too).
	`CREATE TABLE function_versions (
		function_id  TEXT    NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
		number       INTEGER NOT NULL CHECK (number >= 1),
		data         TEXT    NOT NULL,
		published_at INTEGER NOT NULL,
		PRIMARY KEY (function_id, number)
	) STRICT, WITHOUT ROWID;
	CREATE TABLE aliases (
		function_id TEXT    NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
		name        TEXT    NOT NULL,
		revision    INTEGER NOT NULL,
		data        TEXT    NOT NULL,
		PRIMARY KEY (function_id, name)
	) STRICT, WITHOUT ROWID;`,

	// 11: saved test events. test_events is a function's test events
	// ([]fn.TestEvent) as JSON, NULL for none.
	`ALTER TABLE functions ADD COLUMN test_events TEXT;`,

	// 12: when each line of an execution's logs began (fn.Execution's
	// LogTimes) as JSON, NULL for none.
	`ALTER TABLE executions ADD COLUMN log_times TEXT;`,

	// 13: API keys, secrets and the audit log (store.AuthStore). scopes
	// and functions are JSON arrays of strings; hash and sealed are kept
	// as given; expires_at is 0 for a key that never expires. Audit ids
	// sort by time: the primary key is the log's order and its paging
	// cursor, and audit_by_time serves the time filters and pruning.
	`CREATE TABLE api_keys (
		id         TEXT    PRIMARY KEY,
		name       TEXT    NOT NULL,
		scopes     TEXT    NOT NULL,
		functions  TEXT    NOT NULL,
		rate_limit REAL    NOT NULL,
		hash       BLOB    NOT NULL,
		sealed     BLOB    NOT NULL,
		kek_id     TEXT    NOT NULL,
		created_by TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	) STRICT, WITHOUT ROWID;
	CREATE INDEX api_keys_by_created ON api_keys (created_at, id);
	CREATE TABLE secrets (
		name        TEXT    PRIMARY KEY,
		description TEXT    NOT NULL,
		sealed      BLOB    NOT NULL,
		kek_id      TEXT    NOT NULL,
		version     INTEGER NOT NULL,
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL
	) STRICT, WITHOUT ROWID;
	CREATE TABLE audit (
		id     TEXT    PRIMARY KEY,
		time   INTEGER NOT NULL,
		key_id TEXT    NOT NULL,
		source TEXT    NOT NULL,
		action TEXT    NOT NULL,
		target TEXT    NOT NULL,
		before TEXT    NOT NULL,
		after  TEXT    NOT NULL
	) STRICT, WITHOUT ROWID;
	CREATE INDEX audit_by_time ON audit (time);`,
}

// migrate applies the steps db has not yet had, all in one transaction.
func migrate(ctx context.Context, db *sql.DB, steps []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()

	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if version > len(steps) {
		return fmt.Errorf("migrate: database schema version %d is newer than this build's %d", version, len(steps))
	}
	if version == len(steps) {
		return nil
	}
	for i := version; i < len(steps); i++ {
		if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
			return fmt.Errorf("migrate: step %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no bound parameters; len(steps) is an int we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(steps))); err != nil {
		return fmt.Errorf("migrate: set version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
