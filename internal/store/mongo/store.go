package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/nimbusfaas/nimbus/internal/store"
)

// DefaultDatabase is the database used when the URI names none.
const DefaultDatabase = "nimbus"

// Timeouts applied unless the URI sets its own (serverSelectionTimeoutMS,
// connectTimeoutMS, timeoutMS): short, so that an unreachable database
// fails API calls fast instead of holding them.
const (
	DefaultServerSelectionTimeout = 2 * time.Second
	DefaultConnectTimeout         = 2 * time.Second
	DefaultOperationTimeout       = 10 * time.Second
)

// Collection names.
const (
	functionsColl  = "functions"
	executionsColl = "executions"
	minutesColl    = "metricMinutes"
	locksColl      = "updateLocks"
	versionsColl   = "versions"
	aliasesColl    = "aliases"
	keysColl       = "keys"
	secretsColl    = "secrets"
	auditColl      = "audit"
)

func init() {
	open := func(ctx context.Context, uri string) (store.Store, error) {
		s, err := Open(ctx, uri)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	store.Register("mongodb", open)
	store.Register("mongodb+srv", open)
}

// Store is a store.Store kept in a MongoDB database. It is safe for
// concurrent use, also by several processes sharing the database.
type Store struct {
	client     *mongo.Client
	db         *mongo.Database
	functions  *mongo.Collection
	executions *mongo.Collection
	minutes    *mongo.Collection
	locks      *mongo.Collection
	versions   *mongo.Collection
	aliases    *mongo.Collection
	keys       *mongo.Collection
	secrets    *mongo.Collection
	audit      *mongo.Collection
	where      string // hosts and database, for messages (never the password)

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.MetricsStore = (*Store)(nil)
)

// Open connects to the MongoDB deployment at uri ("mongodb://…" or
// "mongodb+srv://…"), checks that it answers and creates the indexes Nimbus
// needs. An unreachable deployment is fn.ErrUnavailable.
func Open(ctx context.Context, uri string) (*Store, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, fmt.Errorf("mongo: open %s: bad connection string: %w", store.Redact(uri), err)
	}
	dbName := cs.Database
	if dbName == "" {
		dbName = DefaultDatabase
	}
	where := strings.Join(cs.Hosts, ",") + "/" + dbName
	if cs.Scheme == connstring.SchemeMongoDBSRV {
		where = "mongodb+srv://" + where
	}

	// Defaults first: whatever the URI sets wins.
	opts := options.Client().
		SetServerSelectionTimeout(DefaultServerSelectionTimeout).
		SetConnectTimeout(DefaultConnectTimeout).
		SetTimeout(DefaultOperationTimeout).
		SetAppName("nimbus").
		ApplyURI(uri)
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: open %s: %w", where, err)
	}
	db := client.Database(dbName)
	s := &Store{
		client:     client,
		db:         db,
		functions:  db.Collection(functionsColl),
		executions: db.Collection(executionsColl),
		minutes:    db.Collection(minutesColl),
		locks:      db.Collection(locksColl),
		versions:   db.Collection(versionsColl),
		aliases:    db.Collection(aliasesColl),
		keys:       db.Collection(keysColl),
		secrets:    db.Collection(secretsColl),
		audit:      db.Collection(auditColl),
		where:      where,
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		s.Close()
		return nil, s.wrapErr("open", err)
	}
	if err := s.ensureIndexes(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// index is one index of a collection.
type index struct {
	name   string
	keys   bson.D
	unique bool
}

func (ix index) model() mongo.IndexModel {
	opts := options.Index().SetName(ix.name)
	if ix.unique {
		opts.SetUnique(true)
	}
	return mongo.IndexModel{Keys: ix.keys, Options: opts}
}

// indexes are the indexes of each collection.
var indexes = map[string][]index{
	functionsColl: {
		{"name_unique", bson.D{{Key: "name", Value: 1}}, true},
	},
	executionsColl: {
		{"function_history", bson.D{{Key: "functionId", Value: 1}, {Key: "_id", Value: -1}}, false},
		{"function_status_history", bson.D{{Key: "functionId", Value: 1}, {Key: "status", Value: 1}, {Key: "_id", Value: -1}}, false},
	},
	minutesColl: {
		{"start", bson.D{{Key: "start", Value: 1}}, false},
		{"function", bson.D{{Key: "functionId", Value: 1}}, false},
	},
	// A function's versions and aliases, listed in order and deleted
	// with it; each is read by _id otherwise.
	versionsColl: {
		{"function_versions", bson.D{{Key: "functionId", Value: 1}, {Key: "number", Value: 1}}, false},
	},
	aliasesColl: {
		{"function_aliases", bson.D{{Key: "functionId", Value: 1}, {Key: "name", Value: 1}}, false},
	},
	// Keys are listed oldest first; secrets are read and listed by _id
	// (their name) alone. The audit log is listed and paged by _id, which
	// sorts by time; "time" serves the time filters and pruning.
	keysColl: {
		{"created", bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}, false},
	},
	auditColl: {
		{"time", bson.D{{Key: "time", Value: 1}}, false},
	},
}

// ensureIndexes creates the indexes that are missing. Several servers may
// start at once on one database: an index another one created meanwhile is
// no error. (Asking to create an index that exists would do nothing on
// MongoDB, but FerretDB v1 fails on it, so only missing ones are asked for.)
func (s *Store) ensureIndexes(ctx context.Context) error {
	for coll, want := range indexes {
		missing, err := s.missingIndexes(ctx, coll, want)
		if err != nil || len(missing) == 0 {
			if err != nil {
				return s.wrapErr("list indexes of "+coll, err)
			}
			continue
		}
		models := make([]mongo.IndexModel, len(missing))
		for i, ix := range missing {
			models[i] = ix.model()
		}
		if _, err := s.db.Collection(coll).Indexes().CreateMany(ctx, models); err != nil {
			if still, lerr := s.missingIndexes(ctx, coll, want); lerr == nil && len(still) == 0 {
				continue
			}
			return s.wrapErr("create indexes of "+coll, err)
		}
	}
	return nil
}

// missingIndexes returns the indexes of want that coll lacks, by name.
func (s *Store) missingIndexes(ctx context.Context, coll string, want []index) ([]index, error) {
	have := map[string]bool{}
	cur, err := s.db.Collection(coll).Indexes().List(ctx)
	var se mongo.ServerError
	switch {
	case errors.As(err, &se) && se.HasErrorCode(26): // NamespaceNotFound: no collection yet
	case err != nil:
		return nil, err
	default:
		var specs []struct {
			Name string `bson:"name"`
		}
		if err := cur.All(ctx, &specs); err != nil {
			return nil, err
		}
		for _, spec := range specs {
			have[spec.Name] = true
		}
	}
	var missing []index
	for _, ix := range want {
		if !have[ix.name] {
			missing = append(missing, ix)
		}
	}
	return missing, nil
}

// Database is the name of the database the Store uses.
func (s *Store) Database() string { return s.db.Name() }

// Close disconnects. Later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
			s.closeErr = fmt.Errorf("mongo: close: %w", err)
		}
	})
	return s.closeErr
}
