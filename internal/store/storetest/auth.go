package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// The AuthStore suite. Every Store keeps keys, secrets and the audit log,
// so a Store without store.AuthStore fails here rather than skips.
//
// Scopes and Functions read back as non-nil slices: a key stored with
// nil or empty ones reads back with empty ones, so that callers never
// tell the two apart. Hash and Sealed compare by bytes: empty may read
// back as nil.

// authStore returns the Store's AuthStore.
func (h *harness) authStore(t *testing.T) store.AuthStore {
	t.Helper()
	as, ok := h.s.(store.AuthStore)
	if !ok {
		t.Fatalf("%T does not implement store.AuthStore", h.s)
	}
	return as
}

// binaryBytes is a byte string that is not UTF-8, with zero bytes in it
// and at its ends.
var binaryBytes = []byte{0, 0xff, 0xfe, 0, '"', '\\', 0xc3, 0x28, 0x80, 0}

// newKey returns a key with every field set; i varies it.
func newKey(i int) *store.KeyRecord {
	return &store.KeyRecord{
		ID:        fmt.Sprintf("nmb_%012x", 0xabc000+i),
		Name:      fmt.Sprintf("deploy key %d ✓ <&>", i),
		Scopes:    []string{"functions:read", "functions:write", "invoke"},
		Functions: []string{"hello", "api-*", "team.*/x"},
		RateLimit: 12.5 + float64(i),
		Hash:      append([]byte{byte(i)}, binaryBytes...),
		Sealed:    append(slices.Clone(binaryBytes), bytes.Repeat([]byte{0xaa, byte(i)}, 40)...),
		KEKID:     "kek-1",
		CreatedBy: "bootstrap",
		// Created out of ID order, to tell the two orders apart.
		CreatedAt: epoch.Add(time.Duration(10-i) * time.Hour),
		ExpiresAt: epoch.Add(90 * 24 * time.Hour).Add(time.Duration(i) * time.Millisecond),
	}
}

func assertKey(t *testing.T, got, want *store.KeyRecord) {
	t.Helper()
	if got == nil {
		t.Fatalf("key %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.Name != want.Name || got.RateLimit != want.RateLimit ||
		got.KEKID != want.KEKID || got.CreatedBy != want.CreatedBy {
		t.Errorf("key scalars:\n got %+v\nwant %+v", got, want)
	}
	assertStrings(t, "key "+want.ID+": Scopes", got.Scopes, want.Scopes)
	assertStrings(t, "key "+want.ID+": Functions", got.Functions, want.Functions)
	if !bytes.Equal(got.Hash, want.Hash) {
		t.Errorf("key %s: Hash = %x, want %x", want.ID, got.Hash, want.Hash)
	}
	if !bytes.Equal(got.Sealed, want.Sealed) {
		t.Errorf("key %s: Sealed = %x, want %x", want.ID, got.Sealed, want.Sealed)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("key %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) || got.ExpiresAt.IsZero() != want.ExpiresAt.IsZero() {
		t.Errorf("key %s: ExpiresAt = %v, want %v", want.ID, got.ExpiresAt, want.ExpiresAt)
	}
}

// assertStrings compares string slices; got must not be nil, whatever
// want is (see the package's note on Scopes and Functions).
func assertStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %q (empty, not nil, for none)", what, want)
	} else if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func keyIDs(ks []*store.KeyRecord) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

func testKeys(t *testing.T, h *harness) {
	as := h.authStore(t)
	if ks, err := as.ListKeys(h.ctx); err != nil || len(ks) != 0 {
		t.Fatalf("ListKeys of an empty store = %d keys, %v; want none", len(ks), err)
	}
	keys := []*store.KeyRecord{newKey(0), newKey(1), newKey(2), newKey(3)}
	keys[1].ExpiresAt = time.Time{}              // never
	keys[2].Scopes, keys[2].Functions = nil, nil // none given
	keys[3].Scopes, keys[3].Functions = []string{}, []string{}
	keys[3].Hash, keys[3].Sealed = []byte{}, []byte{0}
	keys[3].CreatedAt = keys[2].CreatedAt // a tie: broken by ID
	for _, k := range keys {
		if err := as.CreateKey(h.ctx, k); err != nil {
			t.Fatalf("CreateKey(%s): %v", k.ID, err)
		}
	}
	// What is stored is a copy: changing the caller's record after the
	// fact changes nothing.
	keys[0].Hash[0]++
	keys[0].Scopes[0] = "changed"
	keys[0] = newKey(0)
	for _, k := range keys {
		if len(k.Scopes) == 0 {
			k.Scopes, k.Functions = []string{}, []string{}
		}
	}

	taken := newKey(1)
	taken.Name = "another"
	if err := as.CreateKey(h.ctx, taken); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("CreateKey of a taken id = %v, want fn.ErrConflict", err)
	}
	if got, err := as.GetKey(h.ctx, taken.ID); err != nil || got.Name != keys[1].Name {
		t.Errorf("GetKey after a conflicting create = %+v, %v; want the first key", got, err)
	}

	for _, want := range keys {
		got, err := as.GetKey(h.ctx, want.ID)
		if err != nil {
			t.Fatalf("GetKey(%s): %v", want.ID, err)
		}
		assertKey(t, got, want)
	}
	if _, err := as.GetKey(h.ctx, "nmb_000000000000"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetKey of a missing id = %v, want fn.ErrNotFound", err)
	}

	// Oldest first: by CreatedAt, which here runs against the IDs.
	wantOrder := []*store.KeyRecord{keys[2], keys[3], keys[1], keys[0]}
	list, err := as.ListKeys(h.ctx)
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if got, want := keyIDs(list), keyIDs(wantOrder); !slices.Equal(got, want) {
		t.Fatalf("ListKeys = %v, want %v (oldest first)", got, want)
	}
	for i, want := range wantOrder {
		assertKey(t, list[i], want)
	}

	t.Run("update seal", func(t *testing.T) {
		k := keys[0]
		k.Hash, k.Sealed, k.KEKID = []byte{0, 0, 0xff}, slices.Concat(binaryBytes, binaryBytes), "kek-2"
		if err := as.UpdateKeySeal(h.ctx, k.ID, k.Hash, k.Sealed, k.KEKID); err != nil {
			t.Fatalf("UpdateKeySeal: %v", err)
		}
		got, err := as.GetKey(h.ctx, k.ID)
		if err != nil {
			t.Fatalf("GetKey: %v", err)
		}
		assertKey(t, got, k) // the rest as it was
		if got, err := as.GetKey(h.ctx, keys[1].ID); err != nil {
			t.Fatalf("GetKey: %v", err)
		} else {
			assertKey(t, got, keys[1]) // other keys untouched
		}
		if err := as.UpdateKeySeal(h.ctx, "nmb_000000000000", k.Hash, k.Sealed, k.KEKID); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("UpdateKeySeal of a missing key = %v, want fn.ErrNotFound", err)
		}
		if _, err := as.GetKey(h.ctx, "nmb_000000000000"); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("GetKey after UpdateKeySeal of a missing key = %v, want it still missing", err)
		}
	})

	t.Run("survive a restart", func(t *testing.T) {
		h.restart(t)
		as = h.authStore(t)
		list, err := as.ListKeys(h.ctx)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if got, want := keyIDs(list), keyIDs(wantOrder); !slices.Equal(got, want) {
			t.Fatalf("ListKeys = %v, want %v", got, want)
		}
		for i, want := range wantOrder {
			assertKey(t, list[i], want)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := as.DeleteKey(h.ctx, keys[1].ID); err != nil {
			t.Fatalf("DeleteKey: %v", err)
		}
		if _, err := as.GetKey(h.ctx, keys[1].ID); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("GetKey after delete = %v, want fn.ErrNotFound", err)
		}
		if err := as.DeleteKey(h.ctx, keys[1].ID); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("DeleteKey again = %v, want fn.ErrNotFound", err)
		}
		if err := as.UpdateKeySeal(h.ctx, keys[1].ID, []byte{1}, []byte{2}, "kek-3"); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("UpdateKeySeal of a deleted key = %v, want fn.ErrNotFound", err)
		}
		list, err := as.ListKeys(h.ctx)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if got, want := keyIDs(list), []string{keys[2].ID, keys[3].ID, keys[0].ID}; !slices.Equal(got, want) {
			t.Errorf("ListKeys after delete = %v, want %v", got, want)
		}
		// The ID is free again.
		if err := as.CreateKey(h.ctx, newKey(1)); err != nil {
			t.Errorf("CreateKey of a deleted key's id: %v", err)
		}
	})
}

func newSecret(name string) *store.SecretRecord {
	return &store.SecretRecord{
		Name:        name,
		Description: "the " + name + " password ✓ <&>",
		Sealed:      slices.Concat([]byte(name), binaryBytes),
		KEKID:       "kek-1",
		Version:     1,
		CreatedAt:   epoch,
		UpdatedAt:   epoch,
	}
}

func assertSecret(t *testing.T, got, want *store.SecretRecord) {
	t.Helper()
	if got == nil {
		t.Fatalf("secret %s: got nil", want.Name)
	}
	if got.Name != want.Name || got.Description != want.Description || got.KEKID != want.KEKID || got.Version != want.Version {
		t.Errorf("secret scalars:\n got %+v\nwant %+v", got, want)
	}
	if !bytes.Equal(got.Sealed, want.Sealed) {
		t.Errorf("secret %s: Sealed = %x, want %x", want.Name, got.Sealed, want.Sealed)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("secret %s: times %v, %v; want %v, %v", want.Name, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
}

func secretNames(ss []*store.SecretRecord) []string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Name
	}
	return names
}

func testSecrets(t *testing.T, h *harness) {
	as := h.authStore(t)
	if ss, err := as.ListSecrets(h.ctx); err != nil || len(ss) != 0 {
		t.Fatalf("ListSecrets of an empty store = %d secrets, %v; want none", len(ss), err)
	}
	// Created out of order: listed by name, bytewise.
	names := []string{"db_password", "API_TOKEN", "stripe.key", "aws-secret", "Zeta"}
	want := map[string]*store.SecretRecord{}
	for _, name := range names {
		s := newSecret(name)
		if err := as.CreateSecret(h.ctx, s); err != nil {
			t.Fatalf("CreateSecret(%s): %v", name, err)
		}
		want[name] = newSecret(name)
	}
	if err := as.CreateSecret(h.ctx, newSecret("db_password")); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("CreateSecret of a taken name = %v, want fn.ErrConflict", err)
	}

	for _, name := range names {
		got, err := as.GetSecret(h.ctx, name)
		if err != nil {
			t.Fatalf("GetSecret(%s): %v", name, err)
		}
		assertSecret(t, got, want[name])
	}
	if _, err := as.GetSecret(h.ctx, "nope"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetSecret of a missing name = %v, want fn.ErrNotFound", err)
	}
	if _, err := as.GetSecret(h.ctx, "DB_PASSWORD"); !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("GetSecret of another case = %v, want fn.ErrNotFound (names are exact)", err)
	}

	list, err := as.ListSecrets(h.ctx)
	if err != nil {
		t.Fatalf("ListSecrets: %v", err)
	}
	wantOrder := []string{"API_TOKEN", "Zeta", "aws-secret", "db_password", "stripe.key"}
	if got := secretNames(list); !slices.Equal(got, wantOrder) {
		t.Fatalf("ListSecrets = %v, want %v (by name, bytewise)", got, wantOrder)
	}
	for i, name := range wantOrder {
		assertSecret(t, list[i], want[name])
	}

	t.Run("update compares and sets the version", func(t *testing.T) {
		next := newSecret("db_password")
		next.Description, next.Sealed, next.KEKID = "rotated", []byte{0}, "kek-2"
		next.Version, next.UpdatedAt = 2, epoch.Add(time.Hour+time.Millisecond)
		if err := as.UpdateSecret(h.ctx, next, 1); err != nil {
			t.Fatalf("UpdateSecret(1 → 2): %v", err)
		}
		got, err := as.GetSecret(h.ctx, "db_password")
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		assertSecret(t, got, next)
		want["db_password"] = next

		stale := newSecret("db_password")
		stale.Version, stale.Description = 2, "stale"
		if err := as.UpdateSecret(h.ctx, stale, 1); !errors.Is(err, fn.ErrConflict) {
			t.Errorf("UpdateSecret from a stale version = %v, want fn.ErrConflict", err)
		}
		if got, err := as.GetSecret(h.ctx, "db_password"); err != nil {
			t.Fatalf("GetSecret: %v", err)
		} else {
			assertSecret(t, got, next) // the stale update changed nothing
		}
		ghost := newSecret("ghost")
		ghost.Version = 2
		if err := as.UpdateSecret(h.ctx, ghost, 1); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("UpdateSecret of a missing secret = %v, want fn.ErrNotFound", err)
		}
		if _, err := as.GetSecret(h.ctx, "ghost"); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("GetSecret after UpdateSecret of a missing secret = %v, want it still missing", err)
		}
		// Other secrets are untouched.
		if got, err := as.GetSecret(h.ctx, "Zeta"); err != nil {
			t.Fatalf("GetSecret: %v", err)
		} else {
			assertSecret(t, got, want["Zeta"])
		}
	})

	t.Run("survive a restart", func(t *testing.T) {
		h.restart(t)
		as = h.authStore(t)
		list, err := as.ListSecrets(h.ctx)
		if err != nil {
			t.Fatalf("ListSecrets: %v", err)
		}
		if got := secretNames(list); !slices.Equal(got, wantOrder) {
			t.Fatalf("ListSecrets = %v, want %v", got, wantOrder)
		}
		for i, name := range wantOrder {
			assertSecret(t, list[i], want[name])
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := as.DeleteSecret(h.ctx, "aws-secret"); err != nil {
			t.Fatalf("DeleteSecret: %v", err)
		}
		if _, err := as.GetSecret(h.ctx, "aws-secret"); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("GetSecret after delete = %v, want fn.ErrNotFound", err)
		}
		if err := as.DeleteSecret(h.ctx, "aws-secret"); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("DeleteSecret again = %v, want fn.ErrNotFound", err)
		}
		if err := as.UpdateSecret(h.ctx, newSecret("aws-secret"), 1); !errors.Is(err, fn.ErrNotFound) {
			t.Errorf("UpdateSecret of a deleted secret = %v, want fn.ErrNotFound", err)
		}
		list, err := as.ListSecrets(h.ctx)
		if err != nil {
			t.Fatalf("ListSecrets: %v", err)
		}
		if got, want := secretNames(list), []string{"API_TOKEN", "Zeta", "db_password", "stripe.key"}; !slices.Equal(got, want) {
			t.Errorf("ListSecrets after delete = %v, want %v", got, want)
		}
		if err := as.CreateSecret(h.ctx, newSecret("aws-secret")); err != nil {
			t.Errorf("CreateSecret of a deleted secret's name: %v", err)
		}
	})
}

// testConcurrentSecretUpdates: of several updates from one version at
// once, exactly one wins and the others are fn.ErrConflict.
func testConcurrentSecretUpdates(t *testing.T, h *harness) {
	as := h.authStore(t)
	if err := as.CreateSecret(h.ctx, newSecret("shared")); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for w := range writers {
		wg.Go(func() {
			s := newSecret("shared")
			s.Version, s.Description = 2, fmt.Sprintf("writer %d", w)
			err := as.UpdateSecret(h.ctx, s, 1)
			switch {
			case err == nil:
				mu.Lock()
				wins = append(wins, s.Description)
				mu.Unlock()
			case !errors.Is(err, fn.ErrConflict):
				t.Errorf("writer %d: UpdateSecret = %v, want nil or fn.ErrConflict", w, err)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d updates from version 1 won (%q), want exactly 1", len(wins), wins)
	}
	got, err := as.GetSecret(h.ctx, "shared")
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if got.Version != 2 || got.Description != wins[0] {
		t.Errorf("stored secret at version %d by %q, want version 2 by %q", got.Version, got.Description, wins[0])
	}
}

// auditAt is the time of audit entry i: one a second, in whole
// milliseconds, with a millisecond more that must not be lost.
func auditAt(i int) time.Time { return epoch.Add(time.Duration(i)*time.Second + time.Millisecond) }

// newAuditEntry returns entry i of a log: its ID sorts by i, as IDs
// sort by time.
func newAuditEntry(i int, keyID, action, target string) *store.AuditEntry {
	return &store.AuditEntry{
		ID:     fmt.Sprintf("audit-%06d", i),
		Time:   auditAt(i),
		KeyID:  keyID,
		Source: fmt.Sprintf("192.0.2.%d:5%04d", i%250, i),
		Action: action,
		Target: target,
		Before: fmt.Sprintf("%064x", i),
		After:  fmt.Sprintf("%064x", i+1),
	}
}

func assertAudit(t *testing.T, what string, got, want []*store.AuditEntry) {
	t.Helper()
	if g, w := auditIDs(got), auditIDs(want); !slices.Equal(g, w) {
		t.Fatalf("%s = %v, want %v", what, g, w)
	}
	for i, w := range want {
		g := *got[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("%s: entry %s: Time = %v, want %v", what, w.ID, g.Time, w.Time)
		}
		g.Time = w.Time
		if g != *w {
			t.Errorf("%s: entry %s:\n got %+v\nwant %+v", what, w.ID, g, *w)
		}
	}
}

func auditIDs(es []*store.AuditEntry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

// pick returns the entries of log with the given indexes, in that order.
func pick(log []*store.AuditEntry, is ...int) []*store.AuditEntry {
	out := make([]*store.AuditEntry, len(is))
	for j, i := range is {
		out[j] = log[i]
	}
	return out
}

// newestOf returns the entries of log that keep says to, newest first.
func newestOf(log []*store.AuditEntry, keep func(e *store.AuditEntry) bool) []*store.AuditEntry {
	var out []*store.AuditEntry
	for i := len(log) - 1; i >= 0; i-- {
		if keep(log[i]) {
			out = append(out, log[i])
		}
	}
	return out
}

func testAudit(t *testing.T, h *harness) {
	as := h.authStore(t)
	if got, err := as.ListAudit(h.ctx, store.AuditQuery{}); err != nil || len(got) != 0 {
		t.Fatalf("ListAudit of an empty log = %d entries, %v; want none", len(got), err)
	}
	if err := as.AppendAudit(h.ctx, nil); err != nil {
		t.Errorf("AppendAudit(none) = %v, want nil", err)
	}
	const (
		k1 = "nmb_0123456789ab"
		k2 = "bootstrap"
	)
	log := []*store.AuditEntry{
		0: newAuditEntry(0, k2, "key.create", k1),
		1: newAuditEntry(1, k1, "function.create", "hello"),
		2: newAuditEntry(2, k1, "function.update", "hello"),
		3: newAuditEntry(3, k1, "functions.export", ""),
		4: newAuditEntry(4, k2, "function.update", "world"),
		5: newAuditEntry(5, k1, "alias.update", "hello:live"),
		6: newAuditEntry(6, "anonymous", "function", "hello"),
		7: newAuditEntry(7, k1, "function.update.code", "hello"),
		8: newAuditEntry(8, k2, "secret.create", "db_password"),
		9: newAuditEntry(9, k1, "function.delete", "hello"),
	}
	log[0].Before = ""          // nothing before a create
	log[9].After = ""           // nothing after a delete
	log[3].Source = "[::1]:443" // and one from IPv6
	// Appended in batches, each in order of ID, as package auth does;
	// the second batch is appended before the first, so that the order
	// of the log is by ID and not by when entries came in.
	if err := as.AppendAudit(h.ctx, log[6:]); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := as.AppendAudit(h.ctx, log[:1]); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := as.AppendAudit(h.ctx, log[1:6]); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}

	all := newestOf(log, func(*store.AuditEntry) bool { return true })
	got, err := as.ListAudit(h.ctx, store.AuditQuery{})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	assertAudit(t, "ListAudit (everything)", got, all)

	cases := []struct {
		name string
		q    store.AuditQuery
		want []*store.AuditEntry
	}{
		{"by key", store.AuditQuery{KeyID: k2}, pick(log, 8, 4, 0)},
		{"by unknown key", store.AuditQuery{KeyID: "nmb_ffffffffffff"}, nil},
		{"by action", store.AuditQuery{Action: "function.update"}, pick(log, 7, 4, 2)},
		{"by kind", store.AuditQuery{Action: "function"}, pick(log, 9, 7, 6, 4, 2, 1)},
		{"by kind, another", store.AuditQuery{Action: "functions"}, pick(log, 3)},
		{"by a prefix that is no kind", store.AuditQuery{Action: "func"}, nil},
		{"by a kind with its dot", store.AuditQuery{Action: "function."}, nil},
		{"by target", store.AuditQuery{Target: "hello"}, pick(log, 9, 7, 6, 2, 1)},
		{"by target, exact", store.AuditQuery{Target: "hel"}, nil},
		{"since, inclusive", store.AuditQuery{Since: auditAt(7)}, pick(log, 9, 8, 7)},
		{"until, exclusive", store.AuditQuery{Until: auditAt(2)}, pick(log, 1, 0)},
		{"since and until", store.AuditQuery{Since: auditAt(3), Until: auditAt(5)}, pick(log, 4, 3)},
		{"since a millisecond later", store.AuditQuery{Since: auditAt(7).Add(time.Millisecond)}, pick(log, 9, 8)},
		{"until a millisecond later", store.AuditQuery{Until: auditAt(2).Add(time.Millisecond)}, pick(log, 2, 1, 0)},
		{"before", store.AuditQuery{Before: log[4].ID}, pick(log, 3, 2, 1, 0)},
		{"before between IDs", store.AuditQuery{Before: log[4].ID + "x"}, pick(log, 4, 3, 2, 1, 0)},
		{"before the first", store.AuditQuery{Before: log[0].ID}, nil},
		{"limit", store.AuditQuery{Limit: 3}, pick(log, 9, 8, 7)},
		{"every filter at once", store.AuditQuery{KeyID: k1, Action: "function", Target: "hello",
			Since: auditAt(1), Until: auditAt(9), Before: log[7].ID, Limit: 1}, pick(log, 2)},
		{"filters that exclude each other", store.AuditQuery{KeyID: k2, Target: "hello"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := as.ListAudit(h.ctx, c.q)
			if err != nil {
				t.Fatalf("ListAudit(%+v): %v", c.q, err)
			}
			assertAudit(t, fmt.Sprintf("ListAudit(%+v)", c.q), got, c.want)
		})
	}

	t.Run("paging with before", func(t *testing.T) {
		var pages []*store.AuditEntry
		q := store.AuditQuery{Action: "function", Limit: 2}
		for range 10 {
			got, err := as.ListAudit(h.ctx, q)
			if err != nil {
				t.Fatalf("ListAudit(%+v): %v", q, err)
			}
			if len(got) > q.Limit {
				t.Fatalf("ListAudit(%+v) = %d entries, more than the limit", q, len(got))
			}
			if len(got) == 0 {
				break
			}
			pages = append(pages, got...)
			q.Before = got[len(got)-1].ID
		}
		assertAudit(t, "pages", pages, pick(log, 9, 7, 6, 4, 2, 1))
	})

	t.Run("survive a restart", func(t *testing.T) {
		h.restart(t)
		as = h.authStore(t)
		got, err := as.ListAudit(h.ctx, store.AuditQuery{})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		assertAudit(t, "ListAudit after restart", got, all)
	})

	t.Run("prune", func(t *testing.T) {
		n, err := as.PruneAudit(h.ctx, auditAt(4))
		if err != nil || n != 4 {
			t.Fatalf("PruneAudit(before entry 4) = %d, %v; want 4 deleted", n, err)
		}
		got, err := as.ListAudit(h.ctx, store.AuditQuery{})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		assertAudit(t, "ListAudit after prune", got, pick(log, 9, 8, 7, 6, 5, 4))
		if n, err := as.PruneAudit(h.ctx, auditAt(4)); err != nil || n != 0 {
			t.Errorf("PruneAudit again = %d, %v; want 0 deleted", n, err)
		}
		if n, err := as.PruneAudit(h.ctx, time.Time{}); err != nil || n != 0 {
			t.Errorf("PruneAudit(zero time) = %d, %v; want 0 deleted", n, err)
		}
		// Entries appended after a prune are kept by it.
		late := newAuditEntry(10, k1, "key.delete", k1)
		if err := as.AppendAudit(h.ctx, []*store.AuditEntry{late}); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		if n, err := as.PruneAudit(h.ctx, auditAt(9).Add(time.Millisecond)); err != nil || n != 6 {
			t.Errorf("PruneAudit(after entry 9) = %d, %v; want 6 deleted", n, err)
		}
		got, err = as.ListAudit(h.ctx, store.AuditQuery{})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		assertAudit(t, "ListAudit after the second prune", got, []*store.AuditEntry{late})
	})
}

// testAuditLimit: a Limit of 0 lists 100 entries, the newest.
func testAuditLimit(t *testing.T, h *harness) {
	as := h.authStore(t)
	const n = 130
	log := make([]*store.AuditEntry, n)
	for i := range log {
		log[i] = newAuditEntry(i, "bootstrap", "function.invoke", fmt.Sprintf("f%d", i%7))
	}
	if err := as.AppendAudit(h.ctx, log); err != nil {
		t.Fatalf("AppendAudit(%d entries): %v", n, err)
	}
	want := newestOf(log, func(*store.AuditEntry) bool { return true })
	got, err := as.ListAudit(h.ctx, store.AuditQuery{})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	assertAudit(t, "ListAudit with no limit", got, want[:100])
	got, err = as.ListAudit(h.ctx, store.AuditQuery{Limit: n + 5})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	assertAudit(t, "ListAudit past the end", got, want)
	got, err = as.ListAudit(h.ctx, store.AuditQuery{Before: want[99].ID})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	assertAudit(t, "ListAudit of the rest", got, want[100:])
}

// testConcurrentAudit: entries appended from several goroutines at once
// are all kept.
func testConcurrentAudit(t *testing.T, h *harness) {
	as := h.authStore(t)
	const (
		writers = 8
		batches = 5
		batch   = 4
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				entries := make([]*store.AuditEntry, batch)
				for i := range entries {
					n := (w*batches+b)*batch + i
					entries[i] = newAuditEntry(n, fmt.Sprintf("nmb_%012d", w), "function.invoke", "hello")
				}
				if err := as.AppendAudit(h.ctx, entries); err != nil {
					t.Errorf("writer %d batch %d: AppendAudit: %v", w, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	const total = writers * batches * batch
	got, err := as.ListAudit(h.ctx, store.AuditQuery{Limit: total + 1})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(got) != total {
		t.Fatalf("%d entries kept, want %d", len(got), total)
	}
	for i, e := range got {
		if want := fmt.Sprintf("audit-%06d", total-1-i); e.ID != want {
			t.Fatalf("entry %d is %s, want %s", i, e.ID, want)
		}
	}
	for w := range writers {
		key := fmt.Sprintf("nmb_%012d", w)
		got, err := as.ListAudit(h.ctx, store.AuditQuery{KeyID: key})
		if err != nil {
			t.Fatalf("ListAudit(%s): %v", key, err)
		}
		if len(got) != batches*batch {
			t.Errorf("writer %d: %d entries kept, want %d", w, len(got), batches*batch)
		}
	}
}

// testAuthInvalid: records without their key are refused, and nothing
// is stored.
func testAuthInvalid(t *testing.T, h *harness) {
	as := h.authStore(t)
	noID := newKey(0)
	noID.ID = ""
	if err := as.CreateKey(h.ctx, noID); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("CreateKey without an id = %v, want fn.ErrInvalid", err)
	}
	if err := as.CreateKey(h.ctx, nil); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("CreateKey(nil) = %v, want fn.ErrInvalid", err)
	}
	for _, rate := range []float64{-1, math.NaN(), math.Inf(1)} {
		k := newKey(1)
		k.RateLimit = rate
		if err := as.CreateKey(h.ctx, k); !errors.Is(err, fn.ErrInvalid) {
			t.Errorf("CreateKey with rate limit %v = %v, want fn.ErrInvalid", rate, err)
		}
	}
	noVersion := newSecret("v0")
	noVersion.Version = 0
	if err := as.CreateSecret(h.ctx, noVersion); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("CreateSecret at version 0 = %v, want fn.ErrInvalid", err)
	}
	noName := newSecret("")
	if err := as.CreateSecret(h.ctx, noName); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("CreateSecret without a name = %v, want fn.ErrInvalid", err)
	}
	if err := as.UpdateSecret(h.ctx, nil, 1); !errors.Is(err, fn.ErrInvalid) {
		t.Errorf("UpdateSecret(nil) = %v, want fn.ErrInvalid", err)
	}
	good := newAuditEntry(1, "bootstrap", "key.create", "x")
	for _, bad := range [][]*store.AuditEntry{{good, nil}, {good, {Time: epoch, Action: "key.create"}}} {
		if err := as.AppendAudit(h.ctx, bad); !errors.Is(err, fn.ErrInvalid) {
			t.Errorf("AppendAudit of an entry without an id = %v, want fn.ErrInvalid", err)
		}
	}
	if ks, err := as.ListKeys(h.ctx); err != nil || len(ks) != 0 {
		t.Errorf("ListKeys = %d keys, %v; want none", len(ks), err)
	}
	if ss, err := as.ListSecrets(h.ctx); err != nil || len(ss) != 0 {
		t.Errorf("ListSecrets = %d secrets, %v; want none", len(ss), err)
	}
	if es, err := as.ListAudit(h.ctx, store.AuditQuery{}); err != nil || len(es) != 0 {
		t.Errorf("ListAudit = %d entries, %v; want none (a batch is checked before any is written)", len(es), err)
	}
}
