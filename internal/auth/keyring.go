package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// KeyFile is the name of the key-encryption key the server generates in
// its data dir when NIMBUS_SECRETS_KEY is not set.
const KeyFile = "secrets.key"

// Keyring holds the key-encryption key (KEK) that seals secrets and
// keys' secrets, and the previous ones, kept only to open what they
// sealed until it is sealed again (see Rotate).
type Keyring struct {
	current kek
	prev    []kek
	// pepper keys the HMAC keys' secrets are hashed with; derived from
	// the current KEK. hashes keeps HMACs under it for reuse: one per
	// request otherwise costs more than the rest of the check.
	pepper []byte
	hashes sync.Pool
}

type kek struct {
	id   string // the first 16 hex digits of the SHA-256 of the key
	aead cipher.AEAD
	raw  []byte
}

// ErrNoKey says a sealed value names a key-encryption key the server does
// not have.
var ErrNoKey = errors.New("sealed under a key-encryption key this server does not have")

// ParseKey reads a key-encryption key: 32 bytes as 64 hex digits or in
// base64 (standard or URL alphabet, padded or not).
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("a key-encryption key is 32 bytes, as 64 hex digits or base64 (try: openssl rand -base64 32)")
}

// NewKeyring makes a keyring from the current key and the previous ones.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	c, err := newKEK(current)
	if err != nil {
		return nil, err
	}
	k := &Keyring{current: c}
	for _, p := range previous {
		pk, err := newKEK(p)
		if err != nil {
			return nil, err
		}
		if pk.id != c.id {
			k.prev = append(k.prev, pk)
		}
	}
	m := hmac.New(sha256.New, c.raw)
	m.Write([]byte("nimbus key hash v1"))
	k.pepper = m.Sum(nil)
	k.hashes.New = func() any { return hmac.New(sha256.New, k.pepper) }
	return k, nil
}

func newKEK(raw []byte) (kek, error) {
	if len(raw) != 32 {
		return kek{}, fmt.Errorf("a key-encryption key is 32 bytes, not %d", len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return kek{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return kek{}, err
	}
	sum := sha256.Sum256(raw)
	return kek{id: hex.EncodeToString(sum[:8]), aead: aead, raw: append([]byte(nil), raw...)}, nil
}

// LoadKeyring finds the key-encryption key: value (NIMBUS_SECRETS_KEY)
// when set, else the key file in dataDir, which is created (0600) when
// missing; generated reports that it was, so that the server can warn that
// it must be backed up. previous (NIMBUS_SECRETS_KEY_PREVIOUS) are older
// keys, comma-separated.
func LoadKeyring(value, previous, dataDir string) (k *Keyring, generated bool, err error) {
	var cur []byte
	if value != "" {
		if cur, err = ParseKey(value); err != nil {
			return nil, false, fmt.Errorf("NIMBUS_SECRETS_KEY: %w", err)
		}
	} else {
		path := filepath.Join(dataDir, KeyFile)
		cur, generated, err = keyFile(path)
		if err != nil {
			return nil, false, fmt.Errorf("key-encryption key %s: %w", path, err)
		}
	}
	var prev [][]byte
	for _, p := range strings.Split(previous, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		b, err := ParseKey(p)
		if err != nil {
			return nil, false, fmt.Errorf("NIMBUS_SECRETS_KEY_PREVIOUS: %w", err)
		}
		prev = append(prev, b)
	}
	k, err = NewKeyring(cur, prev...)
	return k, generated, err
}

// keyFile reads the key in path, or writes a new one there.
func keyFile(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("readable by others (mode %v): chmod 600 it", fi.Mode().Perm())
		}
		k, err := ParseKey(string(b))
		return k, false, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another server on this data dir won
		return keyFile(path)
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	return raw, true, f.Close()
}

// ID names the current key-encryption key (what records' KEKID hold).
func (k *Keyring) ID() string { return k.current.id }

// Seal encrypts plaintext under the current key; what it seals is bound to
// context (a record's kind and name), so that a sealed value copied to
// another record does not open.
func (k *Keyring) Seal(context string, plaintext []byte) (sealed []byte, kekID string) {
	a := k.current.aead
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	rand.Read(nonce)
	return a.Seal(nonce, nonce, plaintext, []byte(context)), k.current.id
}

// Open decrypts what Seal sealed under the key named kekID with the same
// context.
func (k *Keyring) Open(context string, sealed []byte, kekID string) ([]byte, error) {
	var a cipher.AEAD
	for _, c := range append([]kek{k.current}, k.prev...) {
		if c.id == kekID {
			a = c.aead
		}
	}
	if a == nil {
		return nil, fmt.Errorf("%s: key %q: %w", context, kekID, ErrNoKey)
	}
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, fmt.Errorf("%s: sealed value too short", context)
	}
	out, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte(context))
	if err != nil {
		return nil, fmt.Errorf("%s: does not open (altered, or sealed for another record)", context)
	}
	return out, nil
}

// Hash is the HMAC-SHA256 of a key's secret under the pepper.
func (k *Keyring) Hash(secret string) []byte {
	m := k.hashes.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, secret)
	sum := m.Sum(make([]byte, 0, sha256.Size))
	k.hashes.Put(m)
	return sum
}

// mac is an HMAC-SHA256 under the pepper of parts, for session cookies.
func (k *Keyring) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, k.pepper)
	m.Write([]byte("session"))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}
