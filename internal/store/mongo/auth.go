package mongo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

var _ store.AuthStore = (*Store)(nil)

// defaultAuditLimit is the page size of a store.AuditQuery without one.
const defaultAuditLimit = 100

// keyDoc is an API key as stored; _id is its ID. Hash and Sealed are
// BSON binary, kept as given.
type keyDoc struct {
	ID        string    `bson:"_id"`
	Name      string    `bson:"name"`
	Scopes    []string  `bson:"scopes"`
	Functions []string  `bson:"functions"`
	RateLimit float64   `bson:"rateLimit"`
	Hash      []byte    `bson:"hash"`
	Sealed    []byte    `bson:"sealed"`
	KEKID     string    `bson:"kekId"`
	CreatedBy string    `bson:"createdBy"`
	CreatedAt time.Time `bson:"createdAt"`
	// ExpiresAt is absent for a key that never expires.
	ExpiresAt *time.Time `bson:"expiresAt,omitempty"`
}

// secretDoc is a secret as stored; _id is its name.
type secretDoc struct {
	Name        string    `bson:"_id"`
	Description string    `bson:"description"`
	Sealed      []byte    `bson:"sealed"`
	KEKID       string    `bson:"kekId"`
	Version     int       `bson:"version"`
	CreatedAt   time.Time `bson:"createdAt"`
	UpdatedAt   time.Time `bson:"updatedAt"`
}

// auditDoc is an entry of the audit log; _id is its ID, which sorts by
// time.
type auditDoc struct {
	ID     string    `bson:"_id"`
	Time   time.Time `bson:"time"`
	KeyID  string    `bson:"keyId"`
	Source string    `bson:"source"`
	Action string    `bson:"action"`
	Target string    `bson:"target"`
	Before string    `bson:"before"`
	After  string    `bson:"after"`
}

func toKeyDoc(k *store.KeyRecord) *keyDoc {
	d := &keyDoc{
		ID: k.ID, Name: k.Name, Scopes: nonNil(k.Scopes), Functions: nonNil(k.Functions),
		RateLimit: k.RateLimit, Hash: nonNil(k.Hash), Sealed: nonNil(k.Sealed), KEKID: k.KEKID,
		CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC(),
	}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		d.ExpiresAt = &t
	}
	return d
}

// key is the record d stores. Nothing stored is trusted.
func (d *keyDoc) key() (*store.KeyRecord, error) {
	if math.IsNaN(d.RateLimit) || d.RateLimit < 0 {
		return nil, fmt.Errorf("key %q: stored rate limit %v is not 0 or more", d.ID, d.RateLimit)
	}
	k := &store.KeyRecord{
		ID: d.ID, Name: d.Name, Scopes: nonNil(d.Scopes), Functions: nonNil(d.Functions),
		RateLimit: d.RateLimit, Hash: d.Hash, Sealed: d.Sealed, KEKID: d.KEKID,
		CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt.UTC(),
	}
	if d.ExpiresAt != nil && !d.ExpiresAt.IsZero() {
		k.ExpiresAt = d.ExpiresAt.UTC()
	}
	return k, nil
}

func toSecretDoc(s *store.SecretRecord) *secretDoc {
	return &secretDoc{Name: s.Name, Description: s.Description, Sealed: nonNil(s.Sealed), KEKID: s.KEKID,
		Version: s.Version, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()}
}

func (d *secretDoc) secret() (*store.SecretRecord, error) {
	if d.Version < 1 {
		return nil, fmt.Errorf("secret %q: stored version %d is not 1 or more", d.Name, d.Version)
	}
	return &store.SecretRecord{Name: d.Name, Description: d.Description, Sealed: d.Sealed, KEKID: d.KEKID,
		Version: d.Version, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}, nil
}

func toAuditDoc(e *store.AuditEntry) *auditDoc {
	return &auditDoc{ID: e.ID, Time: e.Time.UTC(), KeyID: e.KeyID, Source: e.Source, Action: e.Action,
		Target: e.Target, Before: e.Before, After: e.After}
}

func (d *auditDoc) entry() (*store.AuditEntry, error) {
	return &store.AuditEntry{ID: d.ID, Time: d.Time.UTC(), KeyID: d.KeyID, Source: d.Source, Action: d.Action,
		Target: d.Target, Before: d.Before, After: d.After}, nil
}

// CreateKey inserts a key; a taken ID is fn.ErrConflict.
func (s *Store) CreateKey(ctx context.Context, k *store.KeyRecord) error {
	if err := checkKey(k); err != nil {
		return fmt.Errorf("mongo: create key: %w", err)
	}
	_, err := s.keys.InsertOne(ctx, toKeyDoc(k))
	return s.wrapErr("create key "+k.ID, err)
}

// GetKey returns a key by ID.
func (s *Store) GetKey(ctx context.Context, id string) (*store.KeyRecord, error) {
	var d keyDoc
	if err := s.findOne(ctx, s.keys, "get key", "key", id, &d); err != nil {
		return nil, err
	}
	k, err := d.key()
	if err != nil {
		return nil, fmt.Errorf("mongo: get key: %w", err)
	}
	return k, nil
}

// ListKeys returns every key, oldest first (ties by ID).
func (s *Store) ListKeys(ctx context.Context) ([]*store.KeyRecord, error) {
	cur, err := s.keys.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	return decodeAll(ctx, s, cur, err, "list keys", "key", (*keyDoc).key)
}

// UpdateKeySeal replaces a key's hash, sealed secret and KEK id.
func (s *Store) UpdateKeySeal(ctx context.Context, id string, hash, sealed []byte, kekID string) error {
	res, err := s.keys.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "hash", Value: nonNil(hash)}, {Key: "sealed", Value: nonNil(sealed)}, {Key: "kekId", Value: kekID},
	}}})
	if err != nil {
		return s.wrapErr("update key seal", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: update key seal: key %q: %w", id, fn.ErrNotFound)
	}
	return nil
}

// DeleteKey removes a key.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	return s.deleteOne(ctx, s.keys, "delete key", "key", id)
}

// CreateSecret inserts a secret; a taken name is fn.ErrConflict.
func (s *Store) CreateSecret(ctx context.Context, sec *store.SecretRecord) error {
	if err := checkSecret(sec); err != nil {
		return fmt.Errorf("mongo: create secret: %w", err)
	}
	_, err := s.secrets.InsertOne(ctx, toSecretDoc(sec))
	return s.wrapErr(fmt.Sprintf("create secret %q", sec.Name), err)
}

// GetSecret returns a secret by name.
func (s *Store) GetSecret(ctx context.Context, name string) (*store.SecretRecord, error) {
	var d secretDoc
	if err := s.findOne(ctx, s.secrets, "get secret", "secret", name, &d); err != nil {
		return nil, err
	}
	sec, err := d.secret()
	if err != nil {
		return nil, fmt.Errorf("mongo: get secret: %w", err)
	}
	return sec, nil
}

// ListSecrets returns every secret, ordered by name (bytewise).
func (s *Store) ListSecrets(ctx context.Context) ([]*store.SecretRecord, error) {
	cur, err := s.secrets.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	return decodeAll(ctx, s, cur, err, "list secrets", "secret", (*secretDoc).secret)
}

// UpdateSecret replaces the secret named sec.Name if its stored version is
// still prevVersion. As UpdateFunction does, it takes an update lock first,
// for servers whose conditional replace is not atomic (FerretDB v1).
func (s *Store) UpdateSecret(ctx context.Context, sec *store.SecretRecord, prevVersion int) error {
	if err := checkSecret(sec); err != nil {
		return fmt.Errorf("mongo: update secret: %w", err)
	}
	if sec.Version != prevVersion {
		// "secret:" starts no function id nor "alias:".
		unlock, err := s.lock(ctx, "update secret", fmt.Sprintf("secret:%s/%d", sec.Name, sec.Version), prevVersion, func() error {
			return fmt.Errorf("mongo: update secret %q: another update to version %d is under way: %w", sec.Name, sec.Version, fn.ErrConflict)
		})
		if err != nil {
			return err
		}
		defer unlock()
	}
	res, err := s.secrets.ReplaceOne(ctx, bson.D{{Key: "_id", Value: sec.Name}, {Key: "version", Value: prevVersion}}, toSecretDoc(sec))
	if err != nil {
		return s.wrapErr("update secret", err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	err = s.secrets.FindOne(ctx, bson.D{{Key: "_id", Value: sec.Name}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: update secret %q: %w", sec.Name, fn.ErrNotFound)
	case err != nil:
		return s.wrapErr("update secret", err)
	}
	return fmt.Errorf("mongo: update secret %q: version is no longer %d: %w", sec.Name, prevVersion, fn.ErrConflict)
}

// DeleteSecret removes a secret.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	return s.deleteOne(ctx, s.secrets, "delete secret", "secret", name)
}

// AppendAudit appends entries to the audit log as one ordered insert.
// Every entry is checked before any is written; without a transaction, a
// failure may leave the entries before it written. A taken ID is
// fn.ErrConflict.
func (s *Store) AppendAudit(ctx context.Context, entries []*store.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	docs := make([]any, len(entries))
	for i, e := range entries {
		if e == nil || e.ID == "" {
			return fmt.Errorf("mongo: append audit: entry %d: %w", i, fn.Invalid("id", "is required"))
		}
		docs[i] = toAuditDoc(e)
	}
	_, err := s.audit.InsertMany(ctx, docs)
	return s.wrapErr("append audit", err)
}

// ListAudit returns the entries matching q, newest (greatest ID) first.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) ([]*store.AuditEntry, error) {
	filter := bson.D{}
	if q.KeyID != "" {
		filter = append(filter, bson.E{Key: "keyId", Value: q.KeyID})
	}
	if q.Action != "" {
		// The action itself, or one of its kind: those that begin with
		// q.Action and a dot, which are the strings from q.Action+"." up
		// to (not including) q.Action+"/" ('/' follows '.'), bytewise.
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "action", Value: q.Action}},
			bson.D{{Key: "action", Value: bson.D{{Key: "$gte", Value: q.Action + "."}, {Key: "$lt", Value: q.Action + "/"}}}},
		}})
	}
	if q.Target != "" {
		filter = append(filter, bson.E{Key: "target", Value: q.Target})
	}
	if !q.Since.IsZero() || !q.Until.IsZero() {
		var at bson.D
		if !q.Since.IsZero() {
			at = append(at, bson.E{Key: "$gte", Value: q.Since.UTC()})
		}
		if !q.Until.IsZero() {
			at = append(at, bson.E{Key: "$lt", Value: q.Until.UTC()})
		}
		filter = append(filter, bson.E{Key: "time", Value: at})
	}
	if q.Before != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	cur, err := s.audit.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)))
	return decodeAll(ctx, s, cur, err, "list audit", "audit entry", (*auditDoc).entry)
}

// PruneAudit deletes the entries older than cutoff.
func (s *Store) PruneAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	if cutoff.IsZero() {
		return 0, nil // nothing is older than the zero time
	}
	res, err := s.audit.DeleteMany(ctx, bson.D{{Key: "time", Value: bson.D{{Key: "$lt", Value: cutoff.UTC()}}}})
	if err != nil {
		return 0, s.wrapErr("prune audit", err)
	}
	return res.DeletedCount, nil
}

// findOne decodes the document of coll with _id id into d: fn.ErrNotFound
// if there is none, and an error naming the record (a what) if it does
// not decode.
func (s *Store) findOne(ctx context.Context, coll *mongo.Collection, op, what, id string, d any) error {
	raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("mongo: %s: %s %q: %w", op, what, id, fn.ErrNotFound)
	}
	if err != nil {
		return s.wrapErr(op, err)
	}
	if err := bson.Unmarshal(raw, d); err != nil {
		return fmt.Errorf("mongo: %s: %s %q: decode: %w", op, what, id, err)
	}
	return nil
}

// deleteOne removes the document of coll with _id id: fn.ErrNotFound if
// there is none.
func (s *Store) deleteOne(ctx context.Context, coll *mongo.Collection, op, what, id string) error {
	res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return s.wrapErr(op, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongo: %s: %s %q: %w", op, what, id, fn.ErrNotFound)
	}
	return nil
}

// decodeAll reads the documents of the cursor a Find returned (cur, err),
// each as a D on its own so that one that does not decode is named by its
// _id, and turns each into a T.
func decodeAll[D, T any](ctx context.Context, s *Store, cur *mongo.Cursor, err error, op, what string, conv func(*D) (T, error)) ([]T, error) {
	if err != nil {
		return nil, s.wrapErr(op, err)
	}
	defer cur.Close(ctx)
	out := []T{}
	for cur.Next(ctx) {
		var d D
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("mongo: %s: %s %s: decode: %w", op, what, rawID(cur.Current), err)
		}
		v, err := conv(&d)
		if err != nil {
			return nil, fmt.Errorf("mongo: %s: %w", op, err)
		}
		out = append(out, v)
	}
	if err := cur.Err(); err != nil {
		return nil, s.wrapErr(op, err)
	}
	return out, nil
}

// rawID is the _id of a document, for messages.
func rawID(raw bson.Raw) string {
	v, err := raw.LookupErr("_id")
	if err != nil {
		return "without an _id"
	}
	if id, ok := v.StringValueOK(); ok {
		return strconv.Quote(id)
	}
	return v.String()
}

func checkKey(k *store.KeyRecord) error {
	switch {
	case k == nil || k.ID == "":
		return fn.Invalid("id", "is required")
	case math.IsNaN(k.RateLimit) || math.IsInf(k.RateLimit, 0) || k.RateLimit < 0:
		return fn.Invalid("rateLimit", "must be a number, 0 or more")
	}
	return nil
}

func checkSecret(sec *store.SecretRecord) error {
	switch {
	case sec == nil || sec.Name == "":
		return fn.Invalid("name", "is required")
	case sec.Version < 1:
		return fn.Invalid("version", "must be 1 or more")
	}
	return nil
}

// nonNil is s, or an empty slice for nil: stored as an empty array or
// binary, never null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
