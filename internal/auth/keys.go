package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// KeyPrefix starts every key: its id is the prefix and 12 hex digits, the
// whole key that id, "_", and 43 characters of secret.
const KeyPrefix = "nmb_"

const (
	idHexLen = 12
	idLen    = len(KeyPrefix) + idHexLen
	// ReloadEvery is how often each server reads the keys again, and so
	// how soon a key revoked on another server sharing the store stops
	// working here.
	ReloadEvery = time.Second
	// missReloadEvery bounds the reloads a key not (yet) known here
	// causes: a key created on another server works here at once, a
	// flood of made-up ids costs one read per interval.
	missReloadEvery = 250 * time.Millisecond
)

// Errors of Authenticate: all are 401s.
var (
	ErrBadKey  = errors.New("unknown or wrong API key")
	ErrExpired = errors.New("API key expired")
)

// Keys creates, revokes and checks API keys. Checks are answered from a
// cache of every key, read again each ReloadEvery (Run).
type Keys struct {
	store     store.AuthStore
	ring      *Keyring
	audit     *Audit
	log       *slog.Logger
	bootstrap string // NIMBUS_API_KEY; "" for none
	now       func() time.Time

	mu       sync.RWMutex
	keys     map[string]*cachedKey
	limiters map[string]*limiter // by key id, kept across reloads
	lastMiss time.Time
	loaded   bool
}

type cachedKey struct {
	rec *store.KeyRecord
	p   *Principal
}

// KeysConfig wires Keys.
type KeysConfig struct {
	Store     store.AuthStore
	Keyring   *Keyring
	Audit     *Audit
	Bootstrap string
	Logger    *slog.Logger
	Now       func() time.Time // time.Now when nil
}

// NewKeys makes Keys; call Load (or Run) before serving.
func NewKeys(c KeysConfig) *Keys {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Keys{store: c.Store, ring: c.Keyring, audit: c.Audit, log: c.Logger.With("component", "auth"),
		bootstrap: c.Bootstrap, now: c.Now, keys: map[string]*cachedKey{}, limiters: map[string]*limiter{}}
}

// Load reads every key into the cache.
func (k *Keys) Load(ctx context.Context) error {
	recs, err := k.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("read API keys: %w", err)
	}
	m := make(map[string]*cachedKey, len(recs))
	k.mu.Lock()
	defer k.mu.Unlock()
	lims := make(map[string]*limiter, len(recs))
	for _, r := range recs {
		if !validID(r.ID) {
			k.log.Warn("ignoring a stored API key with a malformed id", "id", fmt.Sprintf("%.40q", r.ID))
			continue
		}
		p, err := principalOf(r)
		if err != nil {
			k.log.Warn("ignoring a malformed stored API key", "id", r.ID, "err", err)
			continue
		}
		lim := k.limiters[r.ID]
		if lim == nil || float64(lim.l.Limit()) != r.RateLimit {
			lim = newLimiter(r.RateLimit)
		}
		if lim != nil {
			lims[r.ID] = lim
		}
		p.limit = lim
		m[r.ID] = &cachedKey{rec: r, p: p}
	}
	k.keys, k.limiters, k.loaded = m, lims, true
	return nil
}

// Run reloads the keys every ReloadEvery until ctx ends.
func (k *Keys) Run(ctx context.Context) {
	t := time.NewTicker(ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Load(ctx); err != nil && ctx.Err() == nil {
				k.log.Warn("reloading API keys failed; serving the last ones read", "err", err)
			}
		}
	}
}

// Required reports whether requests must authenticate: there is a
// bootstrap key or at least one key.
func (k *Keys) Required() bool {
	if k.bootstrap != "" {
		return true
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys) > 0
}

// Authenticate finds who token is.
func (k *Keys) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if k.bootstrap != "" && subtle.ConstantTimeCompare([]byte(token), []byte(k.bootstrap)) == 1 {
		return Admin(BootstrapID), nil
	}
	id, ok := parseToken(token)
	if !ok {
		return nil, ErrBadKey
	}
	c := k.cached(ctx, id)
	if c == nil || subtle.ConstantTimeCompare(k.ring.Hash(token), c.rec.Hash) != 1 {
		return nil, ErrBadKey
	}
	if err := k.live(c.rec); err != nil {
		return nil, err
	}
	return c.p, nil
}

// live says why a key found may not be used now, or nil.
func (k *Keys) live(r *store.KeyRecord) error {
	if !r.ExpiresAt.IsZero() && !k.now().Before(r.ExpiresAt) {
		return fmt.Errorf("%w: %s expired at %s", ErrExpired, r.ID, r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// cached finds a key by id, reading the store again (at most once per
// missReloadEvery) when it is not in the cache: it may have been created
// on another server.
func (k *Keys) cached(ctx context.Context, id string) *cachedKey {
	k.mu.RLock()
	c, last := k.keys[id], k.lastMiss
	k.mu.RUnlock()
	if c != nil || k.now().Sub(last) < missReloadEvery {
		return c
	}
	k.mu.Lock()
	if k.now().Sub(k.lastMiss) < missReloadEvery {
		c = k.keys[id]
		k.mu.Unlock()
		return c
	}
	k.lastMiss = k.now()
	k.mu.Unlock()
	if err := k.Load(ctx); err != nil {
		k.log.Warn("reading API keys failed", "err", err)
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[id]
}

// Principal is the principal of a key id that exists and has not expired
// (for SigV4 and sessions, which verify their own secret).
func (k *Keys) Principal(ctx context.Context, id string) (*Principal, *store.KeyRecord, error) {
	if id == BootstrapID && k.bootstrap != "" {
		return Admin(BootstrapID), &store.KeyRecord{ID: BootstrapID, Hash: k.ring.Hash(k.bootstrap)}, nil
	}
	c := k.cached(ctx, id)
	if c == nil {
		return nil, nil, ErrBadKey
	}
	if err := k.live(c.rec); err != nil {
		return nil, nil, err
	}
	return c.p, c.rec, nil
}

// Secret is a key's whole secret (the SigV4 secret access key of the
// access key id id), opened from its sealed copy.
func (k *Keys) Secret(ctx context.Context, id string) (string, bool) {
	_, rec, err := k.Principal(ctx, id)
	if err != nil || id == BootstrapID {
		return "", false
	}
	b, err := k.ring.Open("key:"+rec.ID, rec.Sealed, rec.KEKID)
	if err != nil {
		k.log.Warn("a stored API key's secret does not open", "id", id, "err", err)
		return "", false
	}
	return string(b), true
}

// KeyRequest is what a new key is to be.
type KeyRequest struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Functions []string   `json:"functions,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	RateLimit float64    `json:"rateLimit,omitempty"`
}

// MaxRateLimit bounds a key's rate limit (calls per second).
const MaxRateLimit = 1e6

// Create makes a key and returns it with its secret, which is not kept
// and cannot be shown again. The first key of a server without a
// bootstrap key must have the admin scope: it turns authentication on.
func (k *Keys) Create(ctx context.Context, req KeyRequest) (*store.KeyRecord, string, error) {
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 64 || !utf8.ValidString(req.Name) || strings.ContainsFunc(req.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, "", fn.Invalid("name", "a key's name is 1 to 64 printable characters")
	}
	scopes, err := ParseScopes(req.Scopes)
	if err != nil {
		return nil, "", fn.Invalid("scopes", err.Error())
	}
	if len(req.Functions) > 32 {
		return nil, "", fn.Invalid("functions", "at most 32 globs")
	}
	if err := CheckGlobs(req.Functions); err != nil {
		return nil, "", fn.Invalid("functions", err.Error())
	}
	if req.RateLimit < 0 || req.RateLimit > MaxRateLimit || req.RateLimit != req.RateLimit {
		return nil, "", fn.Invalid("rateLimit", fmt.Sprintf("calls per second, 0 (no limit) to %g", float64(MaxRateLimit)))
	}
	now := k.now().UTC().Truncate(time.Millisecond)
	var expires time.Time
	if req.ExpiresAt != nil && !req.ExpiresAt.IsZero() {
		if expires = req.ExpiresAt.UTC().Truncate(time.Millisecond); !expires.After(now) {
			return nil, "", fn.Invalid("expiresAt", "must be in the future")
		}
	}
	if !k.Required() && (len(scopes) != 1 || scopes[0] != ScopeAdmin || len(req.Functions) > 0) {
		return nil, "", fn.Invalid("scopes", "the first key must be an admin key for every function: creating it turns authentication on, and you need it to manage the others")
	}
	idb := make([]byte, idHexLen/2)
	rand.Read(idb)
	sec := make([]byte, 32)
	rand.Read(sec)
	id := KeyPrefix + hex.EncodeToString(idb)
	token := id + "_" + base64.RawURLEncoding.EncodeToString(sec)
	sealed, kekID := k.ring.Seal("key:"+id, []byte(token))
	rec := &store.KeyRecord{ID: id, Name: req.Name, Functions: req.Functions, RateLimit: req.RateLimit,
		Hash: k.ring.Hash(token), Sealed: sealed, KEKID: kekID, CreatedAt: now, ExpiresAt: expires}
	for _, s := range scopes {
		rec.Scopes = append(rec.Scopes, string(s))
	}
	if p := FromContext(ctx); p != nil {
		rec.CreatedBy = p.KeyID
	}
	if err := k.store.CreateKey(ctx, rec); err != nil {
		return nil, "", err
	}
	k.put(rec)
	k.audit.Record(ctx, "key.create", id, nil, KeyView(rec))
	return rec, token, nil
}

// put adds a key to the cache at once (Load would within a second).
func (k *Keys) put(r *store.KeyRecord) {
	p, err := principalOf(r)
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if lim := newLimiter(r.RateLimit); lim != nil {
		k.limiters[r.ID], p.limit = lim, lim
	}
	k.keys[r.ID] = &cachedKey{rec: r, p: p}
}

// List returns every key, read from the store.
func (k *Keys) List(ctx context.Context) ([]*store.KeyRecord, error) {
	return k.store.ListKeys(ctx)
}

// Get returns a key, read from the store.
func (k *Keys) Get(ctx context.Context, id string) (*store.KeyRecord, error) {
	return k.store.GetKey(ctx, id)
}

// Delete revokes a key: here at once, on other servers sharing the store
// within ReloadEvery.
func (k *Keys) Delete(ctx context.Context, id string) error {
	before, err := k.store.GetKey(ctx, id)
	if err != nil {
		return err
	}
	if err := k.keepsAnAdmin(ctx, before); err != nil {
		return err
	}
	if err := k.store.DeleteKey(ctx, id); err != nil {
		return err
	}
	k.mu.Lock()
	delete(k.keys, id)
	delete(k.limiters, id)
	k.mu.Unlock()
	k.audit.Record(ctx, "key.delete", id, KeyView(before), nil)
	return nil
}

// keepsAnAdmin refuses to revoke the last admin key for every function of
// a server without a bootstrap key: with no key left authentication would
// turn off, and with only lesser keys left no one could manage them.
func (k *Keys) keepsAnAdmin(ctx context.Context, gone *store.KeyRecord) error {
	if k.bootstrap != "" || !isAdmin(gone) {
		return nil
	}
	recs, err := k.store.ListKeys(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.ID != gone.ID && isAdmin(r) && k.live(r) == nil {
			return nil
		}
	}
	return fmt.Errorf("%s is the last admin key: revoking it would leave no one to manage keys (and, with no key left, turn authentication off); make another admin key first, or set NIMBUS_API_KEY: %w", gone.ID, fn.ErrConflict)
}

func isAdmin(r *store.KeyRecord) bool {
	return len(r.Functions) == 0 && slices.Contains(r.Scopes, string(ScopeAdmin))
}

// Rotate seals again, under the current key-encryption key, every key
// sealed under a previous one, and hashes it with the current pepper.
func (k *Keys) Rotate(ctx context.Context) (int, error) {
	recs, err := k.store.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	n, errs := 0, []error(nil)
	for _, r := range recs {
		if r.KEKID == k.ring.ID() {
			continue
		}
		token, err := k.ring.Open("key:"+r.ID, r.Sealed, r.KEKID)
		if err == nil {
			sealed, kekID := k.ring.Seal("key:"+r.ID, token)
			err = k.store.UpdateKeySeal(ctx, r.ID, k.ring.Hash(string(token)), sealed, kekID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("API key %s: %w", r.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(append(errs, k.Load(ctx))...)
}

// KeyInfo is a key as the API shows it: never its hash or sealed secret.
type KeyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Functions []string   `json:"functions"`
	RateLimit float64    `json:"rateLimit,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Expired   bool       `json:"expired,omitempty"`
	Secret    string     `json:"secret,omitempty"` // only in the answer to its creation
}

// KeyView is what the API shows of r.
func KeyView(r *store.KeyRecord) *KeyInfo {
	v := &KeyInfo{ID: r.ID, Name: r.Name, Scopes: r.Scopes, Functions: r.Functions, RateLimit: r.RateLimit,
		CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if v.Functions == nil {
		v.Functions = []string{}
	}
	if !r.ExpiresAt.IsZero() {
		t := r.ExpiresAt
		v.ExpiresAt = &t
		v.Expired = !time.Now().Before(t)
	}
	return v
}

func principalOf(r *store.KeyRecord) (*Principal, error) {
	scopes, err := ParseScopes(r.Scopes)
	if err != nil {
		return nil, err
	}
	if err := CheckGlobs(r.Functions); err != nil {
		return nil, err
	}
	if len(r.Hash) != 32 {
		return nil, errors.New("its hash is not 32 bytes")
	}
	return &Principal{KeyID: r.ID, Name: r.Name, scopes: scopes, Functions: r.Functions}, nil
}

func validID(id string) bool {
	if len(id) != idLen || !strings.HasPrefix(id, KeyPrefix) {
		return false
	}
	return strings.Trim(id[len(KeyPrefix):], "0123456789abcdef") == ""
}

// parseToken finds the key id in a key, or false if it is not shaped like
// one of ours.
func parseToken(token string) (string, bool) {
	if len(token) < idLen+2 || token[idLen] != '_' || !validID(token[:idLen]) {
		return "", false
	}
	return token[:idLen], true
}

// IDOf is the key id in a key (for logs), or "".
func IDOf(token string) string {
	id, _ := parseToken(token)
	return id
}
