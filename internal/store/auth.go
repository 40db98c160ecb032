package store

import (
	"context"
	"time"
)

// KeyRecord is an API key as stored: its hash and its sealed secret,
// never the secret itself. Package auth makes and checks them.
type KeyRecord struct {
	// ID is the key's visible prefix, "nmb_" and 12 lower-case hex
	// digits: it names the key in lists, logs and the audit trail, and
	// is the access key id of SigV4 requests.
	ID        string
	Name      string
	Scopes    []string
	Functions []string // name globs the key is limited to; empty: every function
	// RateLimit is the calls per second the key may make (0: no limit).
	RateLimit float64
	// Hash is the HMAC-SHA256 of the secret under the server's pepper;
	// Sealed is the secret encrypted (AES-256-GCM) under the
	// key-encryption key named KEKID, for SigV4, which needs it.
	Hash      []byte
	Sealed    []byte
	KEKID     string
	CreatedBy string // the id of the key that created it
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// SecretRecord is a secret as stored: its value only sealed.
type SecretRecord struct {
	Name        string
	Description string
	// Sealed is the value encrypted with AES-256-GCM under the
	// key-encryption key named KEKID; stores keep it as given.
	Sealed []byte
	KEKID  string
	// Version counts the secret's values: 1 when created, one more per
	// update.
	Version   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// AuditEntry is one change, appended to the audit log.
type AuditEntry struct {
	// ID is unique and sorts by time (package auth makes it).
	ID     string
	Time   time.Time
	KeyID  string // who: a key id, "bootstrap" for NIMBUS_API_KEY, "anonymous" without keys
	Source string // from where: the client's address
	// Action is what was done, "function.create", "alias.update",
	// "key.delete"…; Target what it was done to ("hello", "hello:live",
	// "nmb_0123456789ab", a secret's name).
	Action string
	Target string
	// Before and After are hex SHA-256 hashes of the target's state
	// before and after the change ("" where there was none).
	Before string
	After  string
}

// AuditQuery filters the audit log; zero fields do not filter.
type AuditQuery struct {
	KeyID  string
	Action string // an action ("function.update") or a kind ("function")
	Target string
	Since  time.Time // inclusive
	Until  time.Time // exclusive
	// Before continues a listing: entries whose ID sorts before it.
	Before string
	Limit  int // 0: 100
}

// AuthStore is the capability of a Store that keeps API keys, secrets and
// the audit log; both stores have it.
type AuthStore interface {
	// CreateKey inserts a key; a taken ID is fn.ErrConflict.
	CreateKey(ctx context.Context, k *KeyRecord) error
	// GetKey returns a key by ID (fn.ErrNotFound if none).
	GetKey(ctx context.Context, id string) (*KeyRecord, error)
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]*KeyRecord, error)
	// UpdateKeySeal replaces a key's Hash, Sealed and KEKID (a rotation
	// of the key-encryption key); fn.ErrNotFound if there is no such key.
	UpdateKeySeal(ctx context.Context, id string, hash, sealed []byte, kekID string) error
	// DeleteKey removes a key (fn.ErrNotFound if none).
	DeleteKey(ctx context.Context, id string) error

	// CreateSecret inserts a secret; a taken name is fn.ErrConflict.
	CreateSecret(ctx context.Context, s *SecretRecord) error
	// GetSecret returns a secret by name (fn.ErrNotFound if none).
	GetSecret(ctx context.Context, name string) (*SecretRecord, error)
	// ListSecrets returns every secret, ordered by name.
	ListSecrets(ctx context.Context) ([]*SecretRecord, error)
	// UpdateSecret replaces the secret named s.Name if its stored Version
	// is still prevVersion; otherwise fn.ErrConflict (or fn.ErrNotFound).
	UpdateSecret(ctx context.Context, s *SecretRecord, prevVersion int) error
	// DeleteSecret removes a secret (fn.ErrNotFound if none).
	DeleteSecret(ctx context.Context, name string) error

	// AppendAudit appends entries to the audit log.
	AppendAudit(ctx context.Context, entries []*AuditEntry) error
	// ListAudit returns entries matching q, newest (greatest ID) first.
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)
	// PruneAudit deletes the entries older than cutoff and reports how
	// many it deleted.
	PruneAudit(ctx context.Context, cutoff time.Time) (int64, error)
}
