package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// Secrets keeps the secrets functions reference from their environment.
// Values are sealed before they reach the store and opened only for the
// engine, as an instance starts (Reveal).
type Secrets struct {
	store store.AuthStore
	ring  *Keyring
	audit *Audit
	// UsedBy names the functions that reference a secret; a secret in
	// use is not deleted. Nil: none are.
	UsedBy func(ctx context.Context, name string) ([]string, error)
	now    func() time.Time
}

// NewSecrets makes Secrets.
func NewSecrets(st store.AuthStore, ring *Keyring, audit *Audit) *Secrets {
	return &Secrets{store: st, ring: ring, audit: audit, now: time.Now}
}

// SecretInfo is a secret as the API shows it: never its value.
type SecretInfo struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	UsedBy      []string  `json:"usedBy"`
}

// SecretView is what the API shows of r.
func SecretView(r *store.SecretRecord) *SecretInfo {
	return &SecretInfo{Name: r.Name, Description: r.Description, Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, UsedBy: []string{}}
}

func checkValue(v string) error {
	if len(v) > fn.MaxSecretValueBytes {
		return fn.Invalid("value", fmt.Sprintf("a secret's value has at most %d bytes", fn.MaxSecretValueBytes))
	}
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return fn.Invalid("value", "a secret's value is UTF-8 text without NUL (it becomes an environment variable)")
	}
	return nil
}

func checkDescription(d string) error {
	if len(d) > 256 || !utf8.ValidString(d) {
		return fn.Invalid("description", "at most 256 bytes of UTF-8")
	}
	return nil
}

// Create stores a new secret.
func (s *Secrets) Create(ctx context.Context, name, value, description string) (*store.SecretRecord, error) {
	if err := fn.ValidSecretName(name); err != nil {
		return nil, err
	}
	if err := checkValue(value); err != nil {
		return nil, err
	}
	if err := checkDescription(description); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	sealed, kekID := s.ring.Seal("secret:"+name, []byte(value))
	r := &store.SecretRecord{Name: name, Description: description, Sealed: sealed, KEKID: kekID, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateSecret(ctx, r); err != nil {
		if errors.Is(err, fn.ErrConflict) {
			return nil, fmt.Errorf("secret %q exists (PUT /api/secrets/%s changes its value): %w", name, name, fn.ErrConflict)
		}
		return nil, err
	}
	s.audit.Record(ctx, "secret.create", name, nil, auditState(r))
	return r, nil
}

// Update gives a secret a new value and, when description is not nil, a
// new description.
func (s *Secrets) Update(ctx context.Context, name, value string, description *string) (*store.SecretRecord, error) {
	if err := checkValue(value); err != nil {
		return nil, err
	}
	if description != nil {
		if err := checkDescription(*description); err != nil {
			return nil, err
		}
	}
	for range 5 {
		old, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		r := *old
		r.Sealed, r.KEKID = s.ring.Seal("secret:"+name, []byte(value))
		r.Version++
		r.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
		if description != nil {
			r.Description = *description
		}
		err = s.store.UpdateSecret(ctx, &r, old.Version)
		if errors.Is(err, fn.ErrConflict) {
			continue // another update won: do ours after it
		}
		if err != nil {
			return nil, err
		}
		s.audit.Record(ctx, "secret.update", name, auditState(old), auditState(&r))
		return &r, nil
	}
	return nil, fmt.Errorf("secret %q: too many concurrent updates: %w", name, fn.ErrConflict)
}

// auditState is what the audit log hashes of a secret: its metadata and
// version, never its value (a hash of a short value could be guessed).
func auditState(r *store.SecretRecord) any {
	return struct {
		Name, Description string
		Version           int
	}{r.Name, r.Description, r.Version}
}

// Get returns a secret's record (sealed).
func (s *Secrets) Get(ctx context.Context, name string) (*store.SecretRecord, error) {
	if fn.ValidSecretName(name) != nil {
		return nil, fmt.Errorf("secret %q: %w", name, fn.ErrNotFound)
	}
	r, err := s.store.GetSecret(ctx, name)
	if errors.Is(err, fn.ErrNotFound) {
		return nil, fmt.Errorf("secret %q does not exist: %w", name, fn.ErrNotFound)
	}
	return r, err
}

// List returns every secret's record.
func (s *Secrets) List(ctx context.Context) ([]*store.SecretRecord, error) {
	return s.store.ListSecrets(ctx)
}

// Info is r's view with the functions that use it.
func (s *Secrets) Info(ctx context.Context, r *store.SecretRecord) *SecretInfo {
	v := SecretView(r)
	if s.UsedBy != nil {
		if used, err := s.UsedBy(ctx, r.Name); err == nil && used != nil {
			v.UsedBy = used
		}
	}
	return v
}

// Delete removes a secret no function uses.
func (s *Secrets) Delete(ctx context.Context, name string) error {
	old, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	if s.UsedBy != nil {
		used, err := s.UsedBy(ctx, name)
		if err != nil {
			return err
		}
		if len(used) > 0 {
			return fmt.Errorf("secret %q is used by %s: remove it from their environment first: %w", name, strings.Join(used, ", "), fn.ErrConflict)
		}
	}
	if err := s.store.DeleteSecret(ctx, name); err != nil {
		return err
	}
	s.audit.Record(ctx, "secret.delete", name, auditState(old), nil)
	return nil
}

// Reveal opens a secret's value, for the engine only.
func (s *Secrets) Reveal(ctx context.Context, name string) (string, error) {
	r, err := s.Get(ctx, name)
	if err != nil {
		return "", err
	}
	b, err := s.ring.Open("secret:"+r.Name, r.Sealed, r.KEKID)
	if err != nil {
		return "", fmt.Errorf("secret %q: %w", name, err)
	}
	return string(b), nil
}

// SecretExists reports whether a secret named name exists.
func (s *Secrets) SecretExists(ctx context.Context, name string) (bool, error) {
	_, err := s.Get(ctx, name)
	if errors.Is(err, fn.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Rotate seals again, under the current key-encryption key, every secret
// sealed under a previous one.
func (s *Secrets) Rotate(ctx context.Context) (int, error) {
	recs, err := s.store.ListSecrets(ctx)
	if err != nil {
		return 0, err
	}
	n, errs := 0, []error(nil)
	for _, r := range recs {
		if r.KEKID == s.ring.ID() {
			continue
		}
		v, err := s.ring.Open("secret:"+r.Name, r.Sealed, r.KEKID)
		if err == nil {
			nr := *r
			nr.Sealed, nr.KEKID = s.ring.Seal("secret:"+r.Name, v)
			if err = s.store.UpdateSecret(ctx, &nr, r.Version); errors.Is(err, fn.ErrConflict) {
				err = nil // changed meanwhile, and so sealed under the current key
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %q: %w", r.Name, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Reseal opens a secret sealed under from's keys and seals it under to's
// current key, for an export read by a server whose key-encryption key is
// to's.
func Reseal(from, to *Keyring) func(*store.SecretRecord) (*store.SecretRecord, error) {
	return func(r *store.SecretRecord) (*store.SecretRecord, error) {
		v, err := from.Open("secret:"+r.Name, r.Sealed, r.KEKID)
		if err != nil {
			return nil, err
		}
		out := *r
		out.Sealed, out.KEKID = to.Seal("secret:"+r.Name, v)
		return &out, nil
	}
}

// ReadKeyring is LoadKeyring for tools that must not make a key: without
// NIMBUS_SECRETS_KEY and without the key file, it fails.
func ReadKeyring(value, previous, dataDir string) (*Keyring, error) {
	if value == "" {
		if _, err := os.Stat(filepath.Join(dataDir, KeyFile)); err != nil {
			return nil, fmt.Errorf("no key-encryption key: set NIMBUS_SECRETS_KEY, or use the data dir whose %s sealed the secrets (%v)", KeyFile, err)
		}
	}
	k, _, err := LoadKeyring(value, previous, dataDir)
	return k, err
}
