package async

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbusfaas/nimbus/internal/bus"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Names in JetStream.
const (
	StreamName     = "NIMBUS_ASYNC"
	DeadStreamName = "NIMBUS_DEAD_LETTERS"
	queuePrefix    = "nimbus.async."
	deadPrefix     = "nimbus.dlq."
	idemBucket     = "nimbus_idempotency"
	consumerPrefix = "fn-"
)

// DedupWindow is how long an idempotency key (and a schedule's tick)
// keeps a second call with the same key from being queued.
const DedupWindow = 10 * time.Minute

// DeadLetterAge is how long a dead letter is kept.
const DeadLetterAge = 14 * 24 * time.Hour

// maxDeliver bounds the deliveries of one message, a safety net: a call
// goes to the dead letters after its last attempt (at most
// fn.MaxAsyncRetries+1), well before.
const maxDeliver = 20

// Headers of a queued call.
const (
	hExecution = "Nimbus-Execution-Id"
	hAccepted  = "Nimbus-Accepted-At"
	hTrigger   = "Nimbus-Trigger"
	hQualifier = "Nimbus-Qualifier"
	// Dead letters also carry:
	hAttempts = "Nimbus-Attempts"
	hReason   = "Nimbus-Reason"
	hErrType  = "Nimbus-Error-Type"
	hErrMsg   = "Nimbus-Error-Message"
	hDeadAt   = "Nimbus-Dead-At"
)

// Why a call went to the dead letters (Lambda's destination conditions).
const (
	ReasonRetriesExhausted = "RetriesExhausted"
	ReasonEventAgeExceeded = "EventAgeExceeded"
	// ReasonQualifierGone: the version or alias the call named was
	// deleted before it ran.
	ReasonQualifierGone = "QualifierNotFound"
)

// Functions resolves the functions calls are for (functions.Service).
type Functions interface {
	Resolve(ctx context.Context, idOrName string) (*fn.Function, error)
	// ResolveQualified finds what a call with a qualifier (a version, an
	// alias, $LATEST or "") runs.
	ResolveQualified(ctx context.Context, idOrName, qualifier string) (*fn.Function, error)
}

// Engine runs calls and records them (engine.Engine).
type Engine interface {
	InvokeCall(ctx context.Context, f *fn.Function, c engine.Call) (*fn.Execution, error)
	Stage(f *fn.Function, ex *fn.Execution)
	Flush(ctx context.Context) error
}

// Config wires a Queue.
type Config struct {
	Bus       *bus.Bus
	Functions Functions
	Engine    Engine
	// AckWait is how long a server may hold a call without word before
	// JetStream gives it to another (30 s): a running call sends word
	// every third of it, so it bounds how soon a call of a dead server
	// runs again, not how long a call may run.
	AckWait time.Duration
	// MaxBytes bounds what the queue holds (1 GiB); past it, calls are
	// refused with fn.ErrUnavailable.
	MaxBytes int64
	// Rescan is how often the server looks for functions whose calls
	// were queued by another server, or before a restart (5 s).
	Rescan time.Duration
	// Client posts to URL destinations.
	Client *http.Client
	Logger *slog.Logger
}

// Queue accepts async calls and runs them.
type Queue struct {
	cfg   Config
	log   *slog.Logger
	js    jetstream.JetStream
	queue jetstream.Stream
	dead  jetstream.Stream
	idem  jetstream.KeyValue
	max   int // the largest event a message can carry

	ctx    context.Context // ends at Close: waits for capacity stop
	cancel context.CancelFunc

	mu        sync.Mutex
	consumers map[string]*consumer // by function id
	closed    bool

	acks     chan jetstream.Msg
	stopAcks chan struct{} // closed at Close: the ack loop acknowledges what it has, and ends
	acked    chan struct{} // closed when the ack loop has ended
	// ackCtx bounds the ack loop's writes of records; Close cancels it
	// when its own context ends first.
	ackCtx    context.Context
	ackCancel context.CancelFunc
	closeOnce sync.Once
	// The calls in hand (delivered, not yet acknowledged or put back),
	// kept alive by inHandLoop.
	handMu   sync.Mutex
	inHand   map[jetstream.Msg]struct{}
	attempts sync.WaitGroup
	stopped  atomic.Bool // Close has ended
	loops    sync.WaitGroup
	stats    Stats
}

// Stats count what the queue did, for metrics.
type Stats struct {
	Accepted, Duplicates, Retried, DeadLettered, DestinationFailures atomic.Int64
}

// Accepted is the answer to an async call.
type Accepted struct {
	ExecutionID string `json:"executionId"`
	// Duplicate says that a call with the same idempotency key was
	// already queued; ExecutionID is its id ("" in the rare case that
	// it cannot be told).
	Duplicate bool `json:"duplicate,omitempty"`
}

// Call is an async call to queue.
type Call struct {
	Trigger string // fn.TriggerAsync by default
	Event   json.RawMessage
	// Qualifier says which version runs (a number, an alias, $LATEST or
	// ""), resolved when the call runs: an alias moved meanwhile sends it
	// to its new version.
	Qualifier string
	// IdempotencyKey, when set, makes a second call with the same key to
	// the same function within DedupWindow a duplicate, not queued again.
	IdempotencyKey string
}

// Open creates (or updates) the streams and buckets the queue needs.
// Start runs it.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = 5 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	q := &Queue{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "async"),
		js:        cfg.Bus.JetStream(),
		consumers: map[string]*consumer{},
		acks:      make(chan jetstream.Msg, 4096),
		stopAcks:  make(chan struct{}),
		acked:     make(chan struct{}),
		inHand:    map[jetstream.Msg]struct{}{},
	}
	q.ackCtx, q.ackCancel = context.WithCancel(context.Background())
	var err error
	q.queue, err = cfg.Bus.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Nimbus async calls, one subject per function",
		Subjects:    []string{queuePrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    cfg.MaxBytes,
		Duplicates:  DedupWindow,
	})
	if err != nil {
		return nil, err
	}
	q.dead, err = cfg.Bus.EnsureStream(ctx, jetstream.StreamConfig{
		Name:              DeadStreamName,
		Description:       "Nimbus async calls that failed for the last time or waited too long",
		Subjects:          []string{deadPrefix + "*.*"},
		Storage:           jetstream.FileStorage,
		MaxAge:            DeadLetterAge,
		MaxMsgsPerSubject: 1,
		MaxBytes:          cfg.MaxBytes,
		Discard:           jetstream.DiscardOld,
		Duplicates:        DedupWindow,
	})
	if err != nil {
		return nil, err
	}
	q.idem, err = cfg.Bus.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      idemBucket,
		Description: "Nimbus idempotency keys of async calls: the execution id each was given",
		TTL:         DedupWindow,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	// Room for the headers next to the event.
	q.max = int(cfg.Bus.MaxPayload()) - 4<<10
	return q, nil
}

// Start runs the calls queued for every function that has a consumer,
// and looks for new ones every Config.Rescan, until Close.
func (q *Queue) Start(ctx context.Context) {
	q.ctx, q.cancel = context.WithCancel(context.WithoutCancel(ctx))
	q.loops.Add(3)
	go q.ackLoop()
	go q.inHandLoop()
	go q.rescanLoop()
}

func (q *Queue) subject(functionID string) string { return queuePrefix + functionID }

// idRE is what an execution id or a function id looks like: what may go
// in a subject.
var idRE = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,64}$`)

// keyRE is an idempotency key.
var keyRE = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)

// CheckKey validates an idempotency key.
func CheckKey(key string) error {
	if !keyRE.MatchString(key) {
		return fn.Invalid("idempotencyKey", "must be 1 to 256 printable ASCII characters without spaces")
	}
	return nil
}

// Enqueue stores an async call to f, returning once JetStream has it.
func (q *Queue) Enqueue(ctx context.Context, f *fn.Function, c Call) (Accepted, error) {
	// While Close waits for the calls running, their destinations are
	// still queued here; nothing else comes in then (the API and the
	// scheduler stopped first).
	if q.ctx == nil || q.stopped.Load() {
		return Accepted{}, fmt.Errorf("async calls: the queue is not running: %w", fn.ErrUnavailable)
	}
	if !idRE.MatchString(f.ID) {
		return Accepted{}, fn.Invalid("functionId", "not an id")
	}
	if c.IdempotencyKey != "" {
		if err := CheckKey(c.IdempotencyKey); err != nil {
			return Accepted{}, err
		}
	}
	if len(c.Event) > q.max {
		return Accepted{}, fmt.Errorf("an async event may hold %d bytes, this one %d: %w", q.max, len(c.Event), fn.ErrTooLarge)
	}
	if c.Trigger == "" {
		c.Trigger = fn.TriggerAsync
	}
	if err := q.ensure(ctx, f); err != nil {
		return Accepted{}, err
	}
	now := time.Now()
	ex := &fn.Execution{
		ID: fn.NewID(), FunctionID: f.ID, Version: f.Version, Status: fn.StatusQueued,
		Event: c.Event, Trigger: c.Trigger, StartedAt: now,
	}
	msg := nats.NewMsg(q.subject(f.ID))
	msg.Data = c.Event
	msg.Header.Set(hExecution, ex.ID)
	msg.Header.Set(hAccepted, now.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(hTrigger, c.Trigger)
	if c.Qualifier != "" {
		msg.Header.Set(hQualifier, c.Qualifier)
	}
	var idemKey string
	if c.IdempotencyKey != "" {
		sum := sha256.Sum256([]byte(f.ID + "\x00" + c.IdempotencyKey))
		idemKey = hex.EncodeToString(sum[:])
		msg.Header.Set(jetstream.MsgIDHeader, idemKey)
	}
	// The queued stage is told before the publish, so that the running
	// stage (a consumer may start the call at once) never comes before
	// it; a call refused is then recorded as rejected. A call with an
	// idempotency key may be a duplicate, which has no record of its own:
	// its stage is told after.
	if idemKey == "" {
		q.cfg.Engine.Stage(f, ex)
	}
	ack, err := q.js.PublishMsg(ctx, msg)
	if err != nil {
		if isFull(err) {
			err = fmt.Errorf("the async queue is full: %w", fn.ErrUnavailable)
		} else {
			err = fmt.Errorf("queue the call: %v: %w", err, fn.ErrUnavailable)
		}
		if idemKey == "" {
			rejected := *ex
			rejected.Status = fn.StatusRejected // replaces the queued stage
			rejected.Error = &fn.ErrorInfo{Type: "Nimbus.Rejected", Message: err.Error()}
			q.cfg.Engine.Stage(f, &rejected)
		}
		return Accepted{}, err
	}
	if ack.Duplicate {
		q.stats.Duplicates.Add(1)
		return Accepted{ExecutionID: q.original(ctx, idemKey), Duplicate: true}, nil
	}
	if idemKey != "" {
		// After the publish, so that a crash between the two loses no
		// call: a repeat then only cannot tell the first one's id.
		if _, err := q.idem.Put(ctx, idemKey, []byte(ex.ID)); err != nil {
			q.log.Warn("remember an idempotency key", "function", f.Name, "execution", ex.ID, "error", err)
		}
	}
	q.stats.Accepted.Add(1)
	if idemKey != "" {
		q.cfg.Engine.Stage(f, ex)
	}
	return Accepted{ExecutionID: ex.ID}, nil
}

// original is the id of the call first queued with an idempotency key,
// "" when it cannot be told. The first call writes it just after its
// publish: a repeat racing it waits a moment.
func (q *Queue) original(ctx context.Context, idemKey string) string {
	for i := 0; i < 20; i++ {
		e, err := q.idem.Get(ctx, idemKey)
		if err == nil {
			return string(e.Value())
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ""
		}
	}
	return ""
}

// jsErrStoreFailed is the code of a publish the stream could not store:
// with DiscardNew, because it is full (nats-server's JSStreamStoreFailedF).
const jsErrStoreFailed jetstream.ErrorCode = 10077

// isFull reports whether a publish was refused because the stream is full.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStoreFailed
}

// Close stops taking calls from the queue, lets the attempts running
// finish until ctx ends (those that do not are left to run again), and
// acknowledges what finished. Calls after the first do nothing.
func (q *Queue) Close(ctx context.Context) (err error) {
	q.closeOnce.Do(func() { err = q.close(ctx) })
	return err
}

func (q *Queue) close(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	cs := make([]*consumer, 0, len(q.consumers))
	for _, c := range q.consumers {
		cs = append(cs, c)
	}
	q.mu.Unlock()
	for _, c := range cs {
		c.stop()
	}
	if q.cancel == nil {
		return nil
	}
	// Calls waiting for an instance give up (they run again later);
	// those running go on to their end. The rescan loop ends.
	q.cancel()
	done := make(chan struct{})
	go func() { q.attempts.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("async: attempts still running at shutdown: %w", ctx.Err())
	}
	close(q.stopAcks)
	select {
	case <-q.acked:
	case <-ctx.Done():
		// The store is slow or down: what is not acknowledged runs
		// again, here after a restart or on another server.
		q.ackCancel()
		<-q.acked
	}
	q.ackCancel()
	q.stopped.Store(true)
	q.loops.Wait()
	return err
}
