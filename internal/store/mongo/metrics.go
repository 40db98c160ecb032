package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/store"
)

var _ store.MetricsStore = (*Store)(nil)

// minuteDoc is one minute of one function's metric aggregates.
type minuteDoc struct {
	ID         string    `bson:"_id"` // functionId/unixMillis
	FunctionID string    `bson:"functionId"`
	Start      time.Time `bson:"start"`
	Data       []byte    `bson:"data"`
}

func minuteID(functionID string, start time.Time) string {
	return fmt.Sprintf("%s/%d", functionID, start.UnixMilli())
}

// SaveMinutes implements store.MetricsStore: one upsert per minute, sent
// as one ordered bulk write. Without a transaction a failure may leave some
// minutes saved; saving them again replaces them.
func (s *Store) SaveMinutes(ctx context.Context, minutes []store.MetricMinute) error {
	if len(minutes) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(minutes))
	for i, m := range minutes {
		data := m.Data
		if data == nil {
			data = []byte{}
		}
		id := minuteID(m.FunctionID, m.Start)
		models[i] = mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: id}}).
			SetReplacement(minuteDoc{ID: id, FunctionID: m.FunctionID, Start: m.Start, Data: data}).
			SetUpsert(true)
	}
	_, err := s.minutes.BulkWrite(ctx, models)
	return s.wrapErr("save metric minutes", err)
}

// LoadMinutes implements store.MetricsStore.
func (s *Store) LoadMinutes(ctx context.Context, since time.Time) ([]store.MetricMinute, error) {
	cur, err := s.minutes.Find(ctx, bson.D{{Key: "start", Value: bson.D{{Key: "$gte", Value: since}}}},
		options.Find().SetSort(bson.D{{Key: "start", Value: 1}, {Key: "functionId", Value: 1}}))
	if err != nil {
		return nil, s.wrapErr("load metric minutes", err)
	}
	var docs []minuteDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.wrapErr("load metric minutes", err)
	}
	out := make([]store.MetricMinute, len(docs))
	for i, d := range docs {
		out[i] = store.MetricMinute{FunctionID: d.FunctionID, Start: d.Start.UTC(), Data: d.Data}
	}
	return out, nil
}

// PruneMinutes implements store.MetricsStore.
func (s *Store) PruneMinutes(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.minutes.DeleteMany(ctx, bson.D{{Key: "start", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	if err != nil {
		return 0, s.wrapErr("prune metric minutes", err)
	}
	return res.DeletedCount, nil
}

// DeleteMinutes implements store.MetricsStore.
func (s *Store) DeleteMinutes(ctx context.Context, functionID string) error {
	_, err := s.minutes.DeleteMany(ctx, bson.D{{Key: "functionId", Value: functionID}})
	return s.wrapErr("delete metric minutes", err)
}
