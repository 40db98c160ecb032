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

// TestUpgradeKeepsFunctionEnv opens a database made by the build before
// secret references: its functions and versions read back with their
// plain variables and none of the other kind, and take references after.
func TestUpgradeKeepsFunctionEnv(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	db := rawDB(t, path)
	db.SetMaxOpenConns(1)
	if err := sqlite.Migrate(ctx, db, sqlite.Migrations[:12]); err != nil {
		t.Fatalf("Migrate to version 12: %v", err)
	}
	id := fn.NewID()
	if _, err := db.ExecContext(ctx, `INSERT INTO functions (id, name, runtime, handler, files, env,
		timeout_ms, memory_mb, driver, max_instances, version, created_at, updated_at)
		VALUES (?, 'old', 'python', 'main.handler', '{"main.py":"x = 1"}', '{"MODE":"prod"}', 1000, 128, 'sandbox', 1, 1, 1, 1)`, id); err != nil {
		t.Fatalf("insert a version-12 function: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO function_versions (function_id, number, data, published_at)
		VALUES (?, 1, ?, 1)`, id, `{"id":"`+id+`","name":"old","runtime":"python","handler":"main.handler","env":{"MODE":"prod"},"version":1}`); err != nil {
		t.Fatalf("insert a version-12 version: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openClosing(t, path)
	f, err := s.GetFunction(ctx, id)
	if err != nil {
		t.Fatalf("GetFunction after upgrade: %v", err)
	}
	v, err := s.GetVersion(ctx, id, 1)
	if err != nil {
		t.Fatalf("GetVersion after upgrade: %v", err)
	}
	for _, got := range []*fn.Function{f, v.Function} {
		if got.Env["MODE"] != "prod" || len(got.Env) != 1 || got.SecretEnv != nil {
			t.Errorf("upgraded env %q, secret env %q", got.Env, got.SecretEnv)
		}
	}
	g := *f
	g.SecretEnv, g.Revision = map[string]string{"DB_PASSWORD": "db-password"}, 2
	if err := s.UpdateFunction(ctx, &g, 1); err != nil {
		t.Fatal(err)
	}
	if f, err = s.GetFunction(ctx, id); err != nil || f.SecretEnv["DB_PASSWORD"] != "db-password" {
		t.Fatalf("after update: secret env %q, %v", f.SecretEnv, err)
	}
}
