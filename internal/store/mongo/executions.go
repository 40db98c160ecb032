package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// execDoc is an execution record as stored. Event and result are JSON text:
// turned into BSON documents, keys such as "$oid" or numbers past int64
// would not come back as they went in.
type execDoc struct {
	ID            string    `bson:"_id"`
	FunctionID    string    `bson:"functionId"`
	Version       int       `bson:"version"`
	Status        string    `bson:"status"`
	Event         *string   `bson:"event,omitempty"`
	Result        *string   `bson:"result,omitempty"`
	Error         *errorDoc `bson:"error,omitempty"`
	Logs          string    `bson:"logs"`
	LogTimes      []int     `bson:"logTimes,omitempty"`
	StartedAt     time.Time `bson:"startedAt"`
	DurationMs    float64   `bson:"durationMs"`
	ColdStart     bool      `bson:"coldStart"`
	InitMs        float64   `bson:"initMs"`
	QueueMs       float64   `bson:"queueMs"`
	PeakMemoryKiB int64     `bson:"peakMemoryKiB"`
	Trigger       string    `bson:"trigger,omitempty"`
	// Attempt is absent from documents older than the field: 0.
	Attempt int `bson:"attempt"`
}

type errorDoc struct {
	Type    string `bson:"type"`
	Message string `bson:"message"`
	Stack   string `bson:"stack,omitempty"`
}

// withoutEvent is the projection of history pages.
var withoutEvent = bson.D{{Key: "event", Value: 0}}

func toExecDoc(e *fn.Execution) *execDoc {
	d := &execDoc{
		ID: e.ID, FunctionID: e.FunctionID, Version: e.Version, Status: string(e.Status),
		Event: jsonText(e.Event), Result: jsonText(e.Result), Logs: e.Logs, LogTimes: e.LogTimes,
		StartedAt: e.StartedAt, DurationMs: e.DurationMs, ColdStart: e.ColdStart,
		InitMs: e.InitMs, QueueMs: e.QueueMs, PeakMemoryKiB: e.PeakMemoryKiB, Trigger: e.Trigger,
		Attempt: e.Attempt,
	}
	if e.Error != nil {
		d.Error = &errorDoc{Type: e.Error.Type, Message: e.Error.Message, Stack: e.Error.Stack}
	}
	return d
}

// execution is the record d stores. Nothing stored is trusted: bad data
// is an error, the store's failure rather than the caller's.
func (d *execDoc) execution() (*fn.Execution, error) {
	if d.Attempt < 0 {
		return nil, fmt.Errorf("execution %s: stored attempt %d is negative", d.ID, d.Attempt)
	}
	e := &fn.Execution{
		ID: d.ID, FunctionID: d.FunctionID, Version: d.Version, Status: fn.Status(d.Status),
		Event: rawJSON(d.Event), Result: rawJSON(d.Result), Logs: d.Logs, LogTimes: d.LogTimes,
		StartedAt: d.StartedAt.UTC(), DurationMs: d.DurationMs, ColdStart: d.ColdStart,
		InitMs: d.InitMs, QueueMs: d.QueueMs, PeakMemoryKiB: d.PeakMemoryKiB, Trigger: d.Trigger,
		Attempt: d.Attempt,
	}
	if d.Error != nil {
		e.Error = &fn.ErrorInfo{Type: d.Error.Type, Message: d.Error.Message, Stack: d.Error.Stack}
	}
	return e, nil
}

// jsonText keeps raw JSON as a string; an empty message is absent.
func jsonText(m json.RawMessage) *string {
	if len(m) == 0 {
		return nil
	}
	s := string(m)
	return &s
}

func rawJSON(s *string) json.RawMessage {
	if s == nil || *s == "" {
		return nil
	}
	return json.RawMessage(*s)
}

// stage is the stage of an execution's status: 0 queued, 1 running, 2
// final (fn.Status.Final).
func stage(s fn.Status) int {
	switch s {
	case fn.StatusQueued:
		return 0
	case fn.StatusRunning:
		return 1
	}
	return 2
}

// newer reports whether a record of attempt a and status s comes after
// one of attempt b and status t: a greater (attempt, stage).
func newer(a int, s fn.Status, b int, t fn.Status) bool {
	return a > b || (a == b && stage(s) > stage(t))
}

// olderFilter matches the stored record of e's id if e is newer than it.
func olderFilter(e *fn.Execution) bson.D {
	older := bson.A{bson.D{{Key: "attempt", Value: bson.D{{Key: "$lt", Value: e.Attempt}}}}}
	if st := stage(e.Status); st > 0 {
		earlier := bson.A{string(fn.StatusQueued)}
		if st == 2 {
			earlier = append(earlier, string(fn.StatusRunning))
		}
		older = append(older, bson.D{
			{Key: "attempt", Value: e.Attempt},
			{Key: "status", Value: bson.D{{Key: "$in", Value: earlier}}},
		})
	}
	return bson.D{{Key: "_id", Value: e.ID}, {Key: "$or", Value: older}}
}

// InsertExecutions writes a batch of records. A record whose id is
// already stored (an async call's stages share one id) replaces the stored
// one if and only if its (attempt, stage) is greater, stage being 0 for
// queued, 1 for running and 2 for a final status; otherwise it is
// skipped, silently. So a final record is never overwritten by a late
// queued or running one, a retry's records replace the previous
// attempt's, and a batch written again after a failure (some of it may
// have been written) changes nothing: the write is idempotent rather than
// atomic.
//
// The records go in with one unordered insert, which stores those of new
// ids, nearly all of them. Those that meet a taken id are compared with
// the stored records (one find), and each that is newer replaces its
// stored record on condition that that is still older (a conditional
// replace, so a concurrent write of a newer stage wins). This rather than
// an upsert per record: FerretDB v1 stops an update command at its first
// error, ordered or not (a duplicate key from one upsert loses the rest),
// and finds a document quickly only by a filter of its _id alone, so
// that a conditional upsert of each record would scan the collection.
func (s *Store) InsertExecutions(ctx context.Context, execs []*fn.Execution) error {
	if len(execs) == 0 {
		return nil
	}
	docs := make([]any, len(execs))
	for i, e := range execs {
		if e == nil || e.ID == "" || e.FunctionID == "" {
			return fmt.Errorf("mongo: insert executions: %w", fn.Invalid("executionId", "record without id or function id"))
		}
		if e.Attempt < 0 {
			return fmt.Errorf("mongo: insert executions: %s: %w", e.ID, fn.Invalid("attempt", "must not be negative"))
		}
		docs[i] = toExecDoc(e)
	}
	_, err := s.executions.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	dups, ok := duplicateIDs(err)
	if !ok {
		return s.wrapErr("insert executions", err)
	}
	if len(dups) == 0 {
		return nil
	}
	return s.replaceOlder(ctx, execs, dups)
}

// replaceOlder writes the records execs[i] for i in dups, whose ids were
// taken, where they are newer than the stored ones.
func (s *Store) replaceOlder(ctx context.Context, execs []*fn.Execution, dups []int) error {
	// The newest record of each id, in the order they came.
	newest := make(map[string]*fn.Execution, len(dups))
	var ids bson.A
	for _, i := range dups {
		e := execs[i]
		if prev, ok := newest[e.ID]; !ok {
			ids = append(ids, e.ID)
			newest[e.ID] = e
		} else if newer(e.Attempt, e.Status, prev.Attempt, prev.Status) {
			newest[e.ID] = e
		}
	}
	cur, err := s.executions.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "attempt", Value: 1}, {Key: "status", Value: 1}}))
	if err != nil {
		return s.wrapErr("insert executions", err)
	}
	var stored []struct {
		ID      string `bson:"_id"`
		Attempt int    `bson:"attempt"`
		Status  string `bson:"status"`
	}
	if err := cur.All(ctx, &stored); err != nil {
		return s.wrapErr("insert executions", err)
	}
	var models []mongo.WriteModel
	for _, d := range stored {
		// A record deleted since (pruned, or its function deleted) stays so.
		if e := newest[d.ID]; e != nil && newer(e.Attempt, e.Status, d.Attempt, fn.Status(d.Status)) {
			models = append(models, mongo.NewReplaceOneModel().SetFilter(olderFilter(e)).SetReplacement(toExecDoc(e)))
		}
	}
	if len(models) == 0 {
		return nil
	}
	_, err = s.executions.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return s.wrapErr("insert executions", err)
}

// ListExecutions returns a page of a function's executions, newest first,
// without their events; q.PageSize says how many at most.
func (s *Store) ListExecutions(ctx context.Context, functionID string, q store.ExecQuery) ([]*fn.Execution, error) {
	filter := bson.D{{Key: "functionId", Value: functionID}}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: string(q.Status)})
	}
	if q.VersionSet {
		filter = append(filter, bson.E{Key: "version", Value: q.Version})
	}
	if q.Before != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	if !q.Since.IsZero() || !q.Until.IsZero() {
		at := bson.D{}
		if !q.Since.IsZero() {
			at = append(at, bson.E{Key: "$gte", Value: q.Since})
		}
		if !q.Until.IsZero() {
			at = append(at, bson.E{Key: "$lt", Value: q.Until})
		}
		filter = append(filter, bson.E{Key: "startedAt", Value: at})
	}
	limit := q.PageSize()
	var (
		cur *mongo.Cursor
		err error
	)
	if q.Text != "" {
		// The newest MaxTextScan executions that pass the other filters,
		// then those of them that contain the text: a bounded scan.
		re := bson.D{{Key: "$regex", Value: regexp.QuoteMeta(q.Text)}, {Key: "$options", Value: "i"}}
		cur, err = s.executions.Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: filter}},
			{{Key: "$sort", Value: bson.D{{Key: "_id", Value: -1}}}},
			{{Key: "$limit", Value: store.MaxTextScan}},
			{{Key: "$match", Value: bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "logs", Value: re}}, bson.D{{Key: "error.type", Value: re}}, bson.D{{Key: "error.message", Value: re}},
			}}}}},
			{{Key: "$limit", Value: limit}},
			{{Key: "$project", Value: withoutEvent}},
		}, options.Aggregate().SetBatchSize(int32(limit)))
	} else {
		cur, err = s.executions.Find(ctx, filter, options.Find().
			SetSort(bson.D{{Key: "_id", Value: -1}}).
			SetLimit(int64(limit)).
			SetBatchSize(int32(limit)).
			SetProjection(withoutEvent))
	}
	if err != nil {
		return nil, s.wrapErr("list executions", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	execs := make([]*fn.Execution, 0, min(limit, 64))
	for cur.Next(ctx) {
		var d execDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("mongo: list executions: decode: %w", err)
		}
		e, err := d.execution()
		if err != nil {
			return nil, fmt.Errorf("mongo: list executions: %w", err)
		}
		execs = append(execs, e)
	}
	if err := cur.Err(); err != nil {
		return nil, s.wrapErr("list executions", err)
	}
	return execs, nil
}

// GetExecution returns one execution of a function in full.
func (s *Store) GetExecution(ctx context.Context, functionID, executionID string) (*fn.Execution, error) {
	// By _id alone, the function checked here: FerretDB finds a document by
	// its _id quickly but scans the collection for the pair.
	var d execDoc
	err := s.executions.FindOne(ctx, bson.D{{Key: "_id", Value: executionID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && d.FunctionID != functionID) {
		return nil, fmt.Errorf("mongo: get execution %q of %q: %w", executionID, functionID, fn.ErrNotFound)
	}
	if err != nil {
		return nil, s.wrapErr("get execution", err)
	}
	e, err := d.execution()
	if err != nil {
		return nil, fmt.Errorf("mongo: get execution: %w", err)
	}
	return e, nil
}

// PruneExecutions deletes all but the newest keep executions of a
// function: it finds the newest record to delete through the history index,
// then deletes it and everything older. A negative keep is fn.ErrInvalid.
func (s *Store) PruneExecutions(ctx context.Context, functionID string, keep int) (int64, error) {
	if keep < 0 {
		return 0, fmt.Errorf("mongo: prune executions: %w", fn.Invalid("keep", "must not be negative"))
	}
	var newest struct {
		ID string `bson:"_id"`
	}
	err := s.executions.FindOne(ctx, bson.D{{Key: "functionId", Value: functionID}}, options.FindOne().
		SetSort(bson.D{{Key: "_id", Value: -1}}).
		SetSkip(int64(keep)).
		SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&newest)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, s.wrapErr("prune executions", err)
	}
	res, err := s.executions.DeleteMany(ctx, bson.D{
		{Key: "functionId", Value: functionID},
		{Key: "_id", Value: bson.D{{Key: "$lte", Value: newest.ID}}},
	})
	if err != nil {
		return 0, s.wrapErr("prune executions", err)
	}
	return res.DeletedCount, nil
}
