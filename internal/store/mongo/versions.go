package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Versions and aliases are stored as one JSON string each (data), the
// JSON of fn.Version or fn.Alias, next to their keys: a snapshot is
// written once and read whole, never queried by its fields, and one
// encoding (the one the API and exports use) keeps every field of the
// function, present and future, without a document type to keep in step
// with fn.Function. Reads check that the keys and the JSON agree.

// versionDoc is a published version as stored; _id is
// "functionId/number".
type versionDoc struct {
	ID          string    `bson:"_id"`
	FunctionID  string    `bson:"functionId"`
	Number      int       `bson:"number"`
	PublishedAt time.Time `bson:"publishedAt"`
	Data        string    `bson:"data"`
}

// aliasDoc is an alias as stored; _id is "functionId/name".
type aliasDoc struct {
	ID         string `bson:"_id"`
	FunctionID string `bson:"functionId"`
	Name       string `bson:"name"`
	Revision   int    `bson:"revision"`
	Data       string `bson:"data"`
}

// The _ids are unambiguous: what follows the last "/" (a number, an
// alias name) holds none.
func versionID(functionID string, number int) string {
	return functionID + "/" + strconv.Itoa(number)
}

func aliasID(functionID, name string) string { return functionID + "/" + name }

// CreateVersion stores a published version of a function.
func (s *Store) CreateVersion(ctx context.Context, v *fn.Version) error {
	if v == nil || v.Function == nil || v.ID == "" {
		return fmt.Errorf("mongo: create version: %w", fn.Invalid("id", "is required"))
	}
	if v.Version < 1 {
		return fmt.Errorf("mongo: create version: %w", fn.Invalid("version", "must be 1 or more"))
	}
	data, err := json.Marshal(versionToStore(v))
	if err != nil {
		return fmt.Errorf("mongo: create version: encode: %w", err)
	}
	doc := versionDoc{ID: versionID(v.ID, v.Version), FunctionID: v.ID, Number: v.Version,
		PublishedAt: v.PublishedAt.UTC(), Data: string(data)}
	return s.insertOfFunction(ctx, "create version", v.ID, s.versions, doc.ID, doc)
}

// GetVersion returns a function's version by number.
func (s *Store) GetVersion(ctx context.Context, functionID string, number int) (*fn.Version, error) {
	var d versionDoc
	err := s.versions.FindOne(ctx, bson.D{{Key: "_id", Value: versionID(functionID, number)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongo: get version %d of %s: %w", number, functionID, fn.ErrNotFound)
	}
	if err != nil {
		return nil, s.wrapErr("get version", err)
	}
	v, err := d.version(functionID)
	if err != nil {
		return nil, fmt.Errorf("mongo: get version: %w", err)
	}
	if v.Version != number {
		return nil, fmt.Errorf("mongo: get version %d of %s: stored as version %d", number, functionID, v.Version)
	}
	return v, nil
}

// ListVersions returns a function's versions, oldest first.
func (s *Store) ListVersions(ctx context.Context, functionID string) ([]*fn.Version, error) {
	cur, err := s.versions.Find(ctx, bson.D{{Key: "functionId", Value: functionID}},
		options.Find().SetSort(bson.D{{Key: "number", Value: 1}}))
	if err != nil {
		return nil, s.wrapErr("list versions", err)
	}
	var docs []versionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.wrapErr("list versions", err)
	}
	vs := make([]*fn.Version, len(docs))
	for i := range docs {
		if vs[i], err = docs[i].version(functionID); err != nil {
			return nil, fmt.Errorf("mongo: list versions: %w", err)
		}
	}
	return vs, nil
}

// DeleteVersion removes a version.
func (s *Store) DeleteVersion(ctx context.Context, functionID string, number int) error {
	res, err := s.versions.DeleteOne(ctx, bson.D{{Key: "_id", Value: versionID(functionID, number)}})
	if err != nil {
		return s.wrapErr("delete version", err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongo: delete version %d of %s: %w", number, functionID, fn.ErrNotFound)
	}
	return nil
}

// CreateAlias stores a new alias.
func (s *Store) CreateAlias(ctx context.Context, a *fn.Alias) error {
	if err := checkAliasKey(a); err != nil {
		return fmt.Errorf("mongo: create alias: %w", err)
	}
	doc, err := toAliasDoc(a)
	if err != nil {
		return fmt.Errorf("mongo: create alias: %w", err)
	}
	return s.insertOfFunction(ctx, "create alias", a.FunctionID, s.aliases, doc.ID, doc)
}

// GetAlias returns a function's alias by name.
func (s *Store) GetAlias(ctx context.Context, functionID, name string) (*fn.Alias, error) {
	var d aliasDoc
	err := s.aliases.FindOne(ctx, bson.D{{Key: "_id", Value: aliasID(functionID, name)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongo: get alias %q of %s: %w", name, functionID, fn.ErrNotFound)
	}
	if err != nil {
		return nil, s.wrapErr("get alias", err)
	}
	a, err := d.alias(functionID)
	if err != nil {
		return nil, fmt.Errorf("mongo: get alias: %w", err)
	}
	if a.Name != name {
		return nil, fmt.Errorf("mongo: get alias %q of %s: stored as alias %q", name, functionID, a.Name)
	}
	return a, nil
}

// ListAliases returns a function's aliases, ordered by name (bytewise).
func (s *Store) ListAliases(ctx context.Context, functionID string) ([]*fn.Alias, error) {
	cur, err := s.aliases.Find(ctx, bson.D{{Key: "functionId", Value: functionID}},
		options.Find().SetSort(bson.D{{Key: "name", Value: 1}}))
	if err != nil {
		return nil, s.wrapErr("list aliases", err)
	}
	var docs []aliasDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.wrapErr("list aliases", err)
	}
	as := make([]*fn.Alias, len(docs))
	for i := range docs {
		if as[i], err = docs[i].alias(functionID); err != nil {
			return nil, fmt.Errorf("mongo: list aliases: %w", err)
		}
	}
	return as, nil
}

// UpdateAlias replaces the alias if its stored revision is still
// prevRevision. As UpdateFunction does, it takes an update lock first,
// for servers whose conditional replace is not atomic (FerretDB v1).
func (s *Store) UpdateAlias(ctx context.Context, a *fn.Alias, prevRevision int) error {
	if err := checkAliasKey(a); err != nil {
		return fmt.Errorf("mongo: update alias: %w", err)
	}
	doc, err := toAliasDoc(a)
	if err != nil {
		return fmt.Errorf("mongo: update alias: %w", err)
	}
	if a.Revision != prevRevision {
		unlock, err := s.lockAliasRevision(ctx, a.FunctionID, a.Name, a.Revision, prevRevision)
		if err != nil {
			return err
		}
		defer unlock()
	}
	res, err := s.aliases.ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "revision", Value: prevRevision}}, doc)
	if err != nil {
		return s.wrapErr("update alias", err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	err = s.aliases.FindOne(ctx, bson.D{{Key: "_id", Value: doc.ID}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: update alias %q of %s: %w", a.Name, a.FunctionID, fn.ErrNotFound)
	case err != nil:
		return s.wrapErr("update alias", err)
	}
	return fmt.Errorf("mongo: update alias %q of %s: revision is no longer %d: %w", a.Name, a.FunctionID, prevRevision, fn.ErrConflict)
}

// DeleteAlias removes an alias.
func (s *Store) DeleteAlias(ctx context.Context, functionID, name string) error {
	res, err := s.aliases.DeleteOne(ctx, bson.D{{Key: "_id", Value: aliasID(functionID, name)}})
	if err != nil {
		return s.wrapErr("delete alias", err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongo: delete alias %q of %s: %w", name, functionID, fn.ErrNotFound)
	}
	return nil
}

// insertOfFunction inserts doc (whose _id is id) into coll if function
// functionID exists: fn.ErrNotFound if it does not, fn.ErrConflict for a
// taken _id. There is no transaction: should the function be deleted
// between the check and the insert, a second check after the insert
// sees it gone and takes the document back, so that none outlives its
// function (DeleteFunction deletes the function first).
func (s *Store) insertOfFunction(ctx context.Context, op, functionID string, coll *mongo.Collection, id string, doc any) error {
	if err := s.functionExists(ctx, op, functionID); err != nil {
		return err
	}
	if _, err := coll.InsertOne(ctx, doc); err != nil {
		return s.wrapErr(fmt.Sprintf("%s %s", op, id), err)
	}
	// Any other error of the second check leaves the insert, which
	// succeeded, standing.
	if err := s.functionExists(ctx, op, functionID); errors.Is(err, fn.ErrNotFound) {
		_, _ = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	}
	return nil
}

// functionExists is nil if function id exists, else fn.ErrNotFound.
func (s *Store) functionExists(ctx context.Context, op, id string) error {
	err := s.functions.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: %s: function %q: %w", op, id, fn.ErrNotFound)
	case err != nil:
		return s.wrapErr(op, err)
	}
	return nil
}

// checkAliasKey checks what makes an alias's _id: its function and a
// name with no "/" (any alias name the API accepts).
func checkAliasKey(a *fn.Alias) error {
	if a == nil || a.FunctionID == "" {
		return fn.Invalid("functionId", "is required")
	}
	return fn.CheckAliasName(a.Name)
}

func toAliasDoc(a *fn.Alias) (*aliasDoc, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return &aliasDoc{ID: aliasID(a.FunctionID, a.Name), FunctionID: a.FunctionID, Name: a.Name,
		Revision: a.Revision, Data: string(data)}, nil
}

// versionToStore is the snapshot as stored: what a function's document
// never keeps (inline code and archives as they came in, the next run of
// a schedule) is left out, as CreateFunction leaves it out.
func versionToStore(v *fn.Version) *fn.Version {
	f := *v.Function
	f.Code, f.ZipFile, f.Archive = "", nil, nil
	if f.Schedules != nil {
		ss := make([]fn.Schedule, len(f.Schedules))
		for i, sc := range f.Schedules {
			sc.NextRun = nil
			ss[i] = sc
		}
		f.Schedules = ss
	}
	out := *v
	out.Function = &f
	return &out
}

// version decodes d, read as one of function functionID's, and checks
// it: nothing stored is trusted, and a document whose keys and data
// disagree is an error rather than another version's answer.
func (d *versionDoc) version(functionID string) (*fn.Version, error) {
	var v fn.Version
	if err := json.Unmarshal([]byte(d.Data), &v); err != nil {
		return nil, fmt.Errorf("version %s: decode: %w", d.ID, err)
	}
	switch {
	case v.Function == nil:
		return nil, fmt.Errorf("version %s: stored without its function", d.ID)
	case d.Number < 1 || v.Version != d.Number:
		return nil, fmt.Errorf("version %s: number %d holds version %d", d.ID, d.Number, v.Version)
	case d.FunctionID != functionID || v.ID != functionID || d.ID != versionID(functionID, d.Number):
		return nil, fmt.Errorf("version %s: of function %q (data %q), read as one of %q", d.ID, d.FunctionID, v.ID, functionID)
	}
	v.PublishedAt = v.PublishedAt.UTC()
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return &v, nil
}

// alias decodes and checks d as version does.
func (d *aliasDoc) alias(functionID string) (*fn.Alias, error) {
	var a fn.Alias
	if err := json.Unmarshal([]byte(d.Data), &a); err != nil {
		return nil, fmt.Errorf("alias %s: decode: %w", d.ID, err)
	}
	switch {
	case a.Name != d.Name || a.Revision != d.Revision || strings.Contains(d.Name, "/"):
		return nil, fmt.Errorf("alias %s: name %q at revision %d holds alias %q at revision %d", d.ID, d.Name, d.Revision, a.Name, a.Revision)
	case d.FunctionID != functionID || a.FunctionID != functionID || d.ID != aliasID(functionID, d.Name):
		return nil, fmt.Errorf("alias %s: of function %q (data %q), read as one of %q", d.ID, d.FunctionID, a.FunctionID, functionID)
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	for i := range a.History {
		a.History[i].At = a.History[i].At.UTC()
	}
	return &a, nil
}
