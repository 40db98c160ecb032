package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// staleLockAge is how old an update lock must be before another update may
// take it over: its owner has surely finished, or died.
const staleLockAge = 30 * time.Second

// lockDoc locks the update that writes one version of a function: its _id,
// "functionId/version", is unique, and inserting a document is atomic on
// every MongoDB-compatible server, where a conditional replace may not be.
type lockDoc struct {
	ID      string    `bson:"_id"`
	Base    int       `bson:"base"` // the version the update replaces
	Created time.Time `bson:"created"`
}

// lockVersion takes the lock of the update of function id from version
// base to version v. Another update of the same version holding it is
// fn.ErrConflict. The returned unlock releases it; a lock its owner never
// released (it died) is taken over once it is staleLockAge old.
func (s *Store) lockVersion(ctx context.Context, id string, v, base int) (unlock func(), err error) {
	return s.lock(ctx, "update function", fmt.Sprintf("%s/%d", id, v), base, func() error {
		return fmt.Errorf("mongo: update function %q: another update to version %d is under way: %w", id, v, fn.ErrConflict)
	})
}

// lockAliasRevision takes the lock of the update of an alias from
// revision base to revision v, as lockVersion does for functions. Its
// _id starts with "alias:", which no function id does.
func (s *Store) lockAliasRevision(ctx context.Context, functionID, name string, v, base int) (unlock func(), err error) {
	return s.lock(ctx, "update alias", fmt.Sprintf("alias:%s/%s/%d", functionID, name, v), base, func() error {
		return fmt.Errorf("mongo: update alias %q of %s: another update to revision %d is under way: %w", name, functionID, v, fn.ErrConflict)
	})
}

// lock takes the update lock with _id id for op; held by another update,
// it is the error busy makes.
func (s *Store) lock(ctx context.Context, op, id string, base int, busy func() error) (unlock func(), err error) {
	lock := lockDoc{ID: id, Base: base, Created: time.Now().UTC().Truncate(time.Millisecond)}
	for try := 0; ; try++ {
		_, err := s.locks.InsertOne(ctx, lock)
		if err == nil {
			break
		}
		if !duplicateKey(err) {
			return nil, s.wrapErr(op+": lock", err)
		}
		if try > 0 || !s.takeOverStale(ctx, lock.ID) {
			return nil, busy()
		}
	}
	return func() {
		// Released even when ctx has ended; a lock left behind goes stale.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = s.locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: lock.ID}, {Key: "created", Value: lock.Created}})
	}, nil
}

// takeOverStale removes the lock with _id id if it is stale, and reports
// whether the lock is gone.
func (s *Store) takeOverStale(ctx context.Context, id string) bool {
	var held lockDoc
	err := s.locks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&held)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return true // released meanwhile
	case err != nil || time.Since(held.Created) < staleLockAge:
		return false
	}
	_, err = s.locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "created", Value: held.Created}})
	return err == nil
}
