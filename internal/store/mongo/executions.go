package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	StartedAt     time.Time `bson:"startedAt"`
	DurationMs    float64   `bson:"durationMs"`
	ColdStart     bool      `bson:"coldStart"`
	InitMs        float64   `bson:"initMs"`
	QueueMs       float64   `bson:"queueMs"`
	PeakMemoryKiB int64     `bson:"peakMemoryKiB"`
	Trigger       string    `bson:"trigger,omitempty"`
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
		Event: jsonText(e.Event), Result: jsonText(e.Result), Logs: e.Logs,
		StartedAt: e.StartedAt, DurationMs: e.DurationMs, ColdStart: e.ColdStart,
		InitMs: e.InitMs, QueueMs: e.QueueMs, PeakMemoryKiB: e.PeakMemoryKiB, Trigger: e.Trigger,
	}
	if e.Error != nil {
		d.Error = &errorDoc{Type: e.Error.Type, Message: e.Error.Message, Stack: e.Error.Stack}
	}
	return d
}

func (d *execDoc) execution() *fn.Execution {
	e := &fn.Execution{
		ID: d.ID, FunctionID: d.FunctionID, Version: d.Version, Status: fn.Status(d.Status),
		Event: rawJSON(d.Event), Result: rawJSON(d.Result), Logs: d.Logs,
		StartedAt: d.StartedAt.UTC(), DurationMs: d.DurationMs, ColdStart: d.ColdStart,
		InitMs: d.InitMs, QueueMs: d.QueueMs, PeakMemoryKiB: d.PeakMemoryKiB, Trigger: d.Trigger,
	}
	if d.Error != nil {
		e.Error = &fn.ErrorInfo{Type: d.Error.Type, Message: d.Error.Message, Stack: d.Error.Stack}
	}
	return e
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

// InsertExecutions writes a batch of records in one unordered insert. It
// is idempotent rather than atomic: records whose id is already stored are
// skipped, so a batch retried after a failure (some of it may have been
// written) completes without duplicates.
func (s *Store) InsertExecutions(ctx context.Context, execs []*fn.Execution) error {
	if len(execs) == 0 {
		return nil
	}
	docs := make([]any, len(execs))
	for i, e := range execs {
		if e == nil || e.ID == "" || e.FunctionID == "" {
			return fmt.Errorf("mongo: insert executions: %w", fn.Invalid("executionId", "record without id or function id"))
		}
		docs[i] = toExecDoc(e)
	}
	_, err := s.executions.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && onlyDuplicateIDs(err) {
		return nil
	}
	return s.wrapErr("insert executions", err)
}

// ListExecutions returns a page of a function's executions, newest first,
// without their events; q.PageSize says how many at most.
func (s *Store) ListExecutions(ctx context.Context, functionID string, q store.ExecQuery) ([]*fn.Execution, error) {
	filter := bson.D{{Key: "functionId", Value: functionID}}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: string(q.Status)})
	}
	if q.Before != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	limit := q.PageSize()
	cur, err := s.executions.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "_id", Value: -1}}).
		SetLimit(int64(limit)).
		SetBatchSize(int32(limit)).
		SetProjection(withoutEvent))
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
		execs = append(execs, d.execution())
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
	return d.execution(), nil
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
