package mongo_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/mongo"
	"github.com/nimbusfaas/nimbus/internal/store/mongo/mongotest"
)

// TestStoredAuthRecordsAreChecked: a key, secret or audit document that
// something else wrote wrong is an error that names it, from Get and List
// alike, and the other documents still read.
func TestStoredAuthRecordsAreChecked(t *testing.T) {
	ctx := t.Context()
	s := openClosing(t, mongotest.Shared(t).NewDatabase(t))
	now := time.Now().UTC().Truncate(time.Millisecond)
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
	if err := s.AppendAudit(ctx, []*store.AuditEntry{{ID: "a1", Time: now}, {ID: "a2", Time: now}}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	for _, c := range []struct {
		coll, id, field string
		value           any
	}{
		{"keys", "nmb_00000000000a", "hash", 42},
		{"keys", "nmb_00000000000b", "scopes", "invoke"},
		{"keys", "nmb_00000000000c", "rateLimit", -1.0},
		{"secrets", "bad", "version", 0},
		{"audit", "a1", "time", "yesterday"},
	} {
		if err := mongo.SetField(ctx, s, c.coll, c.id, c.field, c.value); err != nil {
			t.Fatalf("set %s of %s: %v", c.field, c.id, err)
		}
	}
	for _, id := range []string{"nmb_00000000000a", "nmb_00000000000b", "nmb_00000000000c"} {
		if k, err := s.GetKey(ctx, id); err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("GetKey(%s) of a malformed document = %+v, %v; want an error naming it", id, k, err)
		}
	}
	if _, err := s.ListKeys(ctx); err == nil || !strings.Contains(err.Error(), "nmb_00000000000a") {
		t.Errorf("ListKeys with malformed documents = %v, want an error naming the first", err)
	}
	if k, err := s.GetKey(ctx, "nmb_00000000000d"); err != nil || len(k.Scopes) != 1 {
		t.Errorf("GetKey of a sound document = %+v, %v", k, err)
	}
	if sec, err := s.GetSecret(ctx, "bad"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("GetSecret of a document at version 0 = %+v, %v; want an error naming it", sec, err)
	}
	if _, err := s.ListSecrets(ctx); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("ListSecrets with a malformed document = %v, want an error naming it", err)
	}
	if _, err := s.GetSecret(ctx, "good"); err != nil {
		t.Errorf("GetSecret of a sound document: %v", err)
	}
	if _, err := s.ListAudit(ctx, store.AuditQuery{}); err == nil || !strings.Contains(err.Error(), `"a1"`) {
		t.Errorf("ListAudit with a malformed entry = %v, want an error naming it", err)
	}
	if got, err := s.ListAudit(ctx, store.AuditQuery{Before: "a1"}); err != nil || len(got) != 0 {
		t.Errorf("ListAudit before the malformed entry = %d entries, %v; want none", len(got), err)
	}
}
