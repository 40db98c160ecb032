package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// IndexNames lists the indexes of each collection the Store keeps, for the
// black-box tests.
func IndexNames(ctx context.Context, s *Store) (map[string][]string, error) {
	out := map[string][]string{}
	for coll := range indexes {
		cur, err := s.db.Collection(coll).Indexes().List(ctx)
		if err != nil {
			return nil, err
		}
		var specs []bson.M
		if err := cur.All(ctx, &specs); err != nil {
			return nil, err
		}
		for _, spec := range specs {
			if name, ok := spec["name"].(string); ok {
				out[coll] = append(out[coll], name)
			}
		}
	}
	return out, nil
}

// PutLock leaves an update lock as an update that died would.
func PutLock(ctx context.Context, s *Store, functionID string, version int, created time.Time) error {
	_, err := s.locks.InsertOne(ctx, lockDoc{ID: fmt.Sprintf("%s/%d", functionID, version), Base: version - 1, Created: created.UTC().Truncate(time.Millisecond)})
	return err
}

// SetExecutionField sets a field of a stored execution as something else
// writing to the database might.
func SetExecutionField(ctx context.Context, s *Store, id, field string, value any) error {
	_, err := s.executions.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: value}}}})
	return err
}

// SetField sets a field of a stored document of collection coll as
// something else writing to the database might.
func SetField(ctx context.Context, s *Store, coll, id, field string, value any) error {
	_, err := s.db.Collection(coll).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: value}}}})
	return err
}
