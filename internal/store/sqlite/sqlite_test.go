package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
	"github.com/nimbusfaas/nimbus/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "nimbus.db")
		return open(t, path), func(t *testing.T) store.Store { return open(t, path) }
	})
}

// open opens the database at path; the caller closes it.
func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

// openClosing opens the database at path and closes it when t ends.
func openClosing(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s := open(t, path)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawDB opens path with the bare driver, beside any Store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatalf("read user_version: %v", err)
	}
	return v
}

func testFunction(name string) *fn.Function {
	now := time.Now()
	return &fn.Function{
		ID: fn.NewID(), Name: name, Runtime: runtime.Python, Handler: "main.handler",
		Files: map[string]string{"main.py": "def handler(e, c):\n    return e\n"}, Env: map[string]string{},
		Timeout: 1000, Memory: 128, Driver: fn.DefaultDriver, MaxInstances: 1, Revision: 1,
		CreatedAt: now, UpdatedAt: now,
	}
}

func TestReopenMigratesIdempotently(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	f := testFunction("alpha")

	s := open(t, path)
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := len(sqlite.Migrations)
	if got := userVersion(t, rawDB(t, path)); got != want {
		t.Fatalf("user_version after first Open = %d, want %d", got, want)
	}

	for i := range 3 {
		s := open(t, path)
		if _, err := s.GetFunction(ctx, "alpha"); err != nil {
			t.Errorf("reopen %d: GetFunction: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("reopen %d: Close: %v", i, err)
		}
		if got := userVersion(t, rawDB(t, path)); got != want {
			t.Errorf("reopen %d: user_version = %d, want %d", i, got, want)
		}
	}
}

func TestMigrateAppliesOnlyMissingSteps(t *testing.T) {
	if len(sqlite.Migrations) < 2 {
		t.Skip("one migration step only")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	db := rawDB(t, path)
	db.SetMaxOpenConns(1)

	tests := []struct {
		name  string
		steps []string
		want  int
	}{
		{"first step of a fresh database", sqlite.Migrations[:1], 1},
		{"the rest", sqlite.Migrations, len(sqlite.Migrations)},
		// Steps create without IF NOT EXISTS: re-running any would fail.
		{"nothing left", sqlite.Migrations, len(sqlite.Migrations)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sqlite.Migrate(ctx, db, tc.steps); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if got := userVersion(t, db); got != tc.want {
				t.Errorf("user_version = %d, want %d", got, tc.want)
			}
		})
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s := openClosing(t, path)
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if err := s.InsertExecutions(ctx, []*fn.Execution{{ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusSuccess}}); err != nil {
		t.Fatalf("InsertExecutions: %v", err)
	}
}

func TestConcurrentOpensOfANewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nimbus.db")
	const n = 4
	stores := make([]*sqlite.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = sqlite.Open(t.Context(), path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		if err := stores[i].Close(); err != nil {
			t.Errorf("Close %d: %v", i, err)
		}
	}
}

func TestReadsDoNotWaitForAWriter(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	s := openClosing(t, path)
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}

	// Another writer (as from another process) holds the write lock.
	conn, err := rawDB(t, path).Conn(ctx)
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		t.Fatalf("BEGIN EXCLUSIVE: %v", err)
	}
	if _, err := conn.ExecContext(ctx, `DELETE FROM functions`); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)

	// The writer holds its lock to the end of the test: a read that waited
	// for it would fail, after the store's 5 s busy timeout or this 10 s.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.GetFunction(rctx, "alpha"); err != nil {
		t.Errorf("GetFunction while another writer holds the lock: %v", err)
	}
	if _, err := s.ListExecutions(rctx, f.ID, store.ExecQuery{}); err != nil {
		t.Errorf("ListExecutions while another writer holds the lock: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nimbus.db")
	openClosing(t, path).Close()
	db := rawDB(t, path)
	if _, err := db.ExecContext(t.Context(), `PRAGMA user_version = 999`); err != nil {
		t.Fatalf("set user_version: %v", err)
	}
	db.Close()

	s, err := sqlite.Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer build succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want it to say the schema is newer", err)
	}
}

func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nimbus.db")
	openClosing(t, path)
	var mode string
	if err := rawDB(t, path).QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatalf("journal_mode: %v", err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestTimesKeepNanosecondsInUTC(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, filepath.Join(t.TempDir(), "nimbus.db"))
	f := testFunction("alpha")
	f.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	f.UpdatedAt = time.Time{}
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	got, err := s.GetFunction(ctx, f.ID)
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if !got.CreatedAt.Equal(f.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", got.CreatedAt, f.CreatedAt)
	}
	if !got.UpdatedAt.IsZero() {
		t.Errorf("UpdatedAt = %v, want the zero time", got.UpdatedAt)
	}
}

func TestMemory(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, sqlite.Memory)
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if err := s.InsertExecutions(ctx, []*fn.Execution{{ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusSuccess}}); err != nil {
		t.Fatalf("InsertExecutions: %v", err)
	}
	got, err := s.ListExecutions(ctx, f.ID, store.ExecQuery{})
	if err != nil || len(got) != 1 {
		t.Fatalf("ListExecutions = %d rows, %v; want 1", len(got), err)
	}
}

func TestInvalidInput(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, filepath.Join(t.TempDir(), "nimbus.db"))
	tests := []struct {
		name string
		call func() error
	}{
		{"function without id", func() error { return s.CreateFunction(ctx, &fn.Function{Name: "x"}) }},
		{"execution without id", func() error {
			return s.InsertExecutions(ctx, []*fn.Execution{{FunctionID: fn.NewID()}})
		}},
		{"negative keep", func() error { _, err := s.PruneExecutions(ctx, fn.NewID(), -1); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, fn.ErrInvalid) {
				t.Errorf("got %v, want fn.ErrInvalid", err)
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	s := openClosing(t, filepath.Join(t.TempDir(), "nimbus.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.ListFunctions(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ListFunctions(canceled) = %v, want context.Canceled", err)
	}
}

func TestCloseTwice(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "nimbus.db"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestNegativeStoredAttempt: a negative attempt in the database (written
// by something else) is refused on read, not passed on.
func TestNegativeStoredAttempt(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	s := openClosing(t, path)
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	e := &fn.Execution{ID: fn.NewID(), FunctionID: f.ID, Status: fn.StatusQueued, Attempt: 0}
	if err := s.InsertExecutions(ctx, []*fn.Execution{e}); err != nil {
		t.Fatalf("InsertExecutions: %v", err)
	}
	if _, err := rawDB(t, path).ExecContext(ctx, `UPDATE executions SET attempt = -1 WHERE id = ?`, e.ID); err != nil {
		t.Fatalf("corrupt attempt: %v", err)
	}
	if got, err := s.GetExecution(ctx, f.ID, e.ID); err == nil || !strings.Contains(err.Error(), "attempt") {
		t.Errorf("GetExecution = %+v, %v; want an error about the attempt", got, err)
	}
	if got, err := s.ListExecutions(ctx, f.ID, store.ExecQuery{Status: fn.StatusQueued}); err == nil {
		t.Errorf("ListExecutions = %d records, nil error; want an error about the attempt", len(got))
	}
}

// TestStoredVersionsAndAliasesAreChecked: a row whose data names another
// function, number or name than its key (a database edited by hand, a
// copy gone wrong) is an error on read, never another version's answer.
func TestStoredVersionsAndAliasesAreChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nimbus.db")
	s := openClosing(t, path)
	ctx := t.Context()
	f := testFunction("alpha")
	if err := s.CreateFunction(ctx, f); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		snap := *f
		snap.Version = n
		if err := s.CreateVersion(ctx, &fn.Version{Function: &snap, PublishedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"prod", "beta"} {
		a := &fn.Alias{FunctionID: f.ID, Name: name, Version: 1, Revision: 1}
		if err := s.CreateAlias(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	db := rawDB(t, path)
	for _, q := range []string{
		`UPDATE function_versions SET data = (SELECT data FROM function_versions WHERE number = 1) WHERE number = 2`,
		`UPDATE aliases SET data = (SELECT data FROM aliases WHERE name = 'prod') WHERE name = 'beta'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if v, err := s.GetVersion(ctx, f.ID, 2); err == nil {
		t.Errorf("GetVersion(2) of a row holding version 1 = version %d, want an error", v.Version)
	}
	if _, err := s.ListVersions(ctx, f.ID); err == nil {
		t.Error("ListVersions with a mismatched row succeeded")
	}
	if a, err := s.GetAlias(ctx, f.ID, "beta"); err == nil {
		t.Errorf("GetAlias(beta) of a row holding prod = %q, want an error", a.Name)
	}
	if _, err := s.ListAliases(ctx, f.ID); err == nil {
		t.Error("ListAliases with a mismatched row succeeded")
	}
	if _, err := s.GetVersion(ctx, f.ID, 1); err != nil {
		t.Errorf("GetVersion(1): %v", err)
	}
}
