package sqlite_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

// TestStoredAuthRecordsAreChecked: a key or secret row that something
// else wrote wrong is an error that names it, from Get and List alike,
// and the other rows still read.
func TestStoredAuthRecordsAreChecked(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	s := openClosing(t, path)
	now := time.Now()
	for _, id := range []string{"nmb_00000000000a", "nmb_00000000000b", "nmb_00000000000c", "nmb_00000000000d"} {
		if err := s.CreateKey(ctx, &store.KeyRecord{ID: id, Scopes: []string{"invoke"}, Hash: []byte{1}, CreatedAt: now}); err != nil {
			t.Fatalf("CreateKey(%s): %v", id, err)
		}
	}
	for _, name := range []string{"good", "bad"} {
		if err := s.CreateSecret(ctx, &store.SecretRecord{Name: name, Sealed: []byte{1}, Version: 1, CreatedAt: now}); err != nil {
			t.Fatalf("CreateSecret(%s): %v", name, err)
		}
	}
	db := rawDB(t, path)
	for _, q := range []string{
		`UPDATE api_keys SET scopes = '["invoke"' WHERE id = 'nmb_00000000000a'`,
		`UPDATE api_keys SET functions = '{"a": 1}' WHERE id = 'nmb_00000000000b'`,
		`UPDATE api_keys SET rate_limit = -1 WHERE id = 'nmb_00000000000c'`,
		`UPDATE secrets SET version = 0 WHERE name = 'bad'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, id := range []string{"nmb_00000000000a", "nmb_00000000000b", "nmb_00000000000c"} {
		if k, err := s.GetKey(ctx, id); err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("GetKey(%s) of a malformed row = %+v, %v; want an error naming it", id, k, err)
		}
	}
	if _, err := s.ListKeys(ctx); err == nil || !strings.Contains(err.Error(), "nmb_00000000000a") {
		t.Errorf("ListKeys with malformed rows = %v, want an error naming the first", err)
	}
	if k, err := s.GetKey(ctx, "nmb_00000000000d"); err != nil || len(k.Scopes) != 1 {
		t.Errorf("GetKey of a sound row = %+v, %v", k, err)
	}
	if sec, err := s.GetSecret(ctx, "bad"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("GetSecret of a row at version 0 = %+v, %v; want an error naming it", sec, err)
	}
	if _, err := s.ListSecrets(ctx); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("ListSecrets with a malformed row = %v, want an error naming it", err)
	}
	if _, err := s.GetSecret(ctx, "good"); err != nil {
		t.Errorf("GetSecret of a sound row: %v", err)
	}
}

// TestAuthTimesOutOfRange: times the nanosecond columns cannot hold are
// refused, not stored wrong; filters by them act as the nearest bound.
func TestAuthTimesOutOfRange(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, filepath.Join(t.TempDir(), "nimbus.db"))
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.CreateKey(ctx, &store.KeyRecord{ID: "nmb_00000000000a", CreatedAt: time.Now(), ExpiresAt: far}); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("CreateKey expiring in the year 3000 = %v, want fn.ErrInvalid", err)
	}
	if err := s.CreateSecret(ctx, &store.SecretRecord{Name: "s", Version: 1, CreatedAt: far}); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("CreateSecret made in the year 3000 = %v, want fn.ErrInvalid", err)
	}
	old := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.AppendAudit(ctx, []*store.AuditEntry{{ID: "a1", Time: old}}); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("AppendAudit of an entry from the year 1000 = %v, want fn.ErrInvalid", err)
	}
	now := time.Now().UTC()
	if err := s.AppendAudit(ctx, []*store.AuditEntry{{ID: "a2", Time: now}}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if got, err := s.ListAudit(ctx, store.AuditQuery{Since: old, Until: far}); err != nil || len(got) != 1 {
		t.Errorf("ListAudit from the year 1000 to 3000 = %d entries, %v; want 1", len(got), err)
	}
	if got, err := s.ListAudit(ctx, store.AuditQuery{Since: far}); err != nil || len(got) != 0 {
		t.Errorf("ListAudit since the year 3000 = %d entries, %v; want none", len(got), err)
	}
	if n, err := s.PruneAudit(ctx, far); err != nil || n != 1 {
		t.Errorf("PruneAudit(year 3000) = %d, %v; want 1", n, err)
	}
}

// TestAuthTablesComeWithTheirMigration: a database of the build before
// them gains the tables on open and keeps what it had.
func TestAuthTablesComeWithTheirMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	db := rawDB(t, path)
	db.SetMaxOpenConns(1)
	before := slices.IndexFunc(sqlite.Migrations, func(m string) bool { return strings.Contains(m, "CREATE TABLE api_keys") })
	if before < 0 {
		t.Fatal("no migration creates api_keys")
	}
	if err := sqlite.Migrate(ctx, db, sqlite.Migrations[:before]); err != nil {
		t.Fatalf("Migrate to version %d: %v", before, err)
	}
	if _, err := db.ExecContext(ctx, `SELECT 1 FROM api_keys`); err == nil {
		t.Fatalf("api_keys exists at version %d, before its migration", before)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openClosing(t, path)
	if err := s.CreateKey(ctx, &store.KeyRecord{ID: "nmb_00000000000a", CreatedAt: time.Now()}); err != nil {
		t.Errorf("CreateKey after the upgrade: %v", err)
	}
}
