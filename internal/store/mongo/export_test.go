package mongo

import (
	"context"

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
