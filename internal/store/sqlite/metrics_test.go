package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

// TestUpgradeKeepsExecutions opens a database made by the build before
// per-execution memory: its records read back whole, with no peak memory.
func TestUpgradeKeepsExecutions(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	db := rawDB(t, path)
	db.SetMaxOpenConns(1)
	if err := sqlite.Migrate(ctx, db, sqlite.Migrations[:2]); err != nil {
		t.Fatalf("Migrate to version 2: %v", err)
	}
	id := fn.NewID()
	if _, err := db.ExecContext(ctx, `INSERT INTO executions (id, function_id, version, status,
		event, result, error, logs, started_at, duration_ms, cold_start, init_ms, queue_ms)
		VALUES (?, 'f1', 1, 'success', '{}', '1', NULL, 'hi', 1, 2.5, 1, 1.5, 0.5)`, id); err != nil {
		t.Fatalf("insert a version-2 record: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openClosing(t, path)
	got, err := s.GetExecution(ctx, "f1", id)
	if err != nil {
		t.Fatalf("GetExecution after upgrade: %v", err)
	}
	if got.PeakMemoryKiB != 0 || got.DurationMs != 2.5 || !got.ColdStart || got.Logs != "hi" {
		t.Errorf("upgraded record %+v", got)
	}
}
