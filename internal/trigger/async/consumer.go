package async

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// consumer pulls one function's calls.
type consumer struct {
	functionID string
	capacity   atomic.Int32 // attempts that may run at once
	cc         jetstream.ConsumeContext
	running    atomic.Int32  // attempts this server runs now
	freed      chan struct{} // a slot freed (buffered 1)
}

// ackSlack is how many calls of a function a server may hold beyond its
// capacity: those done and waiting for their acknowledgement (which
// comes after their records are written, a few ms) and those delivered
// while others still run. Without it, a function's calls would run no
// faster than capacity per write of the records.
const ackSlack = 256

// slot waits until fewer than the consumer's capacity attempts run and
// takes one; false when ctx ends first.
func (c *consumer) slot(ctx context.Context) bool {
	for {
		n := c.running.Load()
		if n < c.capacity.Load() {
			if c.running.CompareAndSwap(n, n+1) {
				return true
			}
			continue
		}
		select {
		case <-c.freed:
		case <-time.After(100 * time.Millisecond): // a capacity raised, a wake-up missed
		case <-ctx.Done():
			return false
		}
	}
}

// release frees a slot taken by slot.
func (c *consumer) release() {
	c.running.Add(-1)
	select {
	case c.freed <- struct{}{}:
	default:
	}
}

func (c *consumer) stop() {
	if c.cc != nil {
		c.cc.Stop()
	}
}

// capacity is how many calls of f may run at once: what its consumer
// may hold unacknowledged.
func capacity(f *fn.Function) int { return max(1, f.MaxInstances*max(1, f.Concurrency)) }

// ensure makes f's consumer exist with f's capacity, and pulls from it.
func (q *Queue) ensure(ctx context.Context, f *fn.Function) error {
	want := capacity(f)
	q.mu.Lock()
	c := q.consumers[f.ID]
	q.mu.Unlock()
	if c != nil && int(c.capacity.Load()) == want {
		return nil
	}
	cons, err := q.queue.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerPrefix + f.ID,
		Description:   "async calls of function " + f.Name,
		FilterSubject: q.subject(f.ID),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: want + ackSlack,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return errors.Join(errors.New("async: consumer of "+f.Name), err, fn.ErrUnavailable)
	}
	return q.consume(f.ID, want, cons)
}

// consume pulls from cons unless this server already does (then only
// the capacity it knows changes).
func (q *Queue) consume(functionID string, capacity int, cons jetstream.Consumer) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.ctx == nil {
		return nil
	}
	if c := q.consumers[functionID]; c != nil {
		c.capacity.Store(int32(capacity)) // the pull keeps going: MaxAckPending bounds it
		return nil
	}
	c := &consumer{functionID: functionID, freed: make(chan struct{}, 1)}
	c.capacity.Store(int32(capacity))
	// Every call delivered is taken in hand at once (a message waiting in
	// a client buffer would use up its ack wait unseen); those beyond the
	// capacity wait for a slot, telling JetStream they are in hand.
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// Under q.mu, as Close sets closed: an attempt is either counted
		// before Close waits for attempts, or not started at all.
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			_ = m.NakWithDelay(time.Second) // for a server that runs on
			return
		}
		q.attempts.Add(1)
		q.mu.Unlock()
		go func() {
			defer q.attempts.Done()
			q.handle(c, m)
		}()
	}, jetstream.PullMaxMessages(min(capacity+ackSlack, 256)), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			q.log.Debug("pull async calls", "function", functionID, "error", err)
		}
	}))
	if err != nil {
		return errors.Join(errors.New("async: pull calls"), err, fn.ErrUnavailable)
	}
	c.cc = cc
	q.consumers[functionID] = c
	return nil
}

// rescanLoop picks up the consumers of functions whose calls this server
// has not pulled yet (queued by another server, or before a restart)
// and removes those of deleted functions.
func (q *Queue) rescanLoop() {
	defer q.loops.Done()
	t := time.NewTicker(q.cfg.Rescan)
	defer t.Stop()
	for {
		q.rescan()
		select {
		case <-t.C:
		case <-q.ctx.Done():
			return
		}
	}
}

func (q *Queue) rescan() {
	ctx, cancel := context.WithTimeout(q.ctx, 10*time.Second)
	defer cancel()
	names := q.queue.ConsumerNames(ctx)
	for name := range names.Name() {
		id, ok := strings.CutPrefix(name, consumerPrefix)
		if !ok || !idRE.MatchString(id) {
			continue
		}
		f, err := q.cfg.Functions.Resolve(ctx, id)
		if errors.Is(err, fn.ErrNotFound) {
			q.Forget(ctx, id) // deleted while nobody pulled its calls
			continue
		}
		if err == nil {
			err = q.ensure(ctx, f)
		}
		if err != nil && ctx.Err() == nil {
			q.log.Warn("pull a function's async calls", "function", id, "error", err)
		}
	}
	if err := names.Err(); err != nil && ctx.Err() == nil {
		q.log.Warn("list async consumers", "error", err)
	}
}

// Forget removes a deleted function's queue: its consumer, its queued
// calls and its dead letters.
func (q *Queue) Forget(ctx context.Context, functionID string) {
	q.mu.Lock()
	c := q.consumers[functionID]
	delete(q.consumers, functionID)
	q.mu.Unlock()
	if c != nil {
		c.stop()
	}
	if !idRE.MatchString(functionID) {
		return
	}
	err := q.queue.DeleteConsumer(ctx, consumerPrefix+functionID)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		err = nil
	}
	err = errors.Join(err,
		q.queue.Purge(ctx, jetstream.WithPurgeSubject(q.subject(functionID))),
		q.dead.Purge(ctx, jetstream.WithPurgeSubject(deadPrefix+functionID+".*")))
	if err != nil {
		q.log.Warn("remove a deleted function's async queue", "function", functionID, "error", err)
	}
}

// handle runs one delivery of a queued call when c has room for it.
func (q *Queue) handle(c *consumer, m jetstream.Msg) {
	functionID := c.functionID
	md, err := m.Metadata()
	id := m.Headers().Get(hExecution)
	if err != nil || !idRE.MatchString(id) {
		q.log.Warn("dropped a message that is not an async call", "subject", m.Subject(), "error", err)
		_ = m.TermWithReason("not an async call")
		return
	}
	accepted, err := time.Parse(time.RFC3339Nano, m.Headers().Get(hAccepted))
	if err != nil {
		accepted = md.Timestamp
	}
	d := delivery{
		q: q, m: m, id: id, attempt: int(md.NumDelivered), accepted: accepted,
		trigger: m.Headers().Get(hTrigger), event: m.Data(),
	}
	if !validTrigger(d.trigger) {
		d.trigger = fn.TriggerAsync
	}
	stop := d.keepAlive()
	defer stop()
	if !c.slot(q.ctx) {
		_ = m.NakWithDelay(time.Second) // shutting down: for a server that runs on
		return
	}
	defer c.release()
	d.run(functionID)
}

// run resolves what the call runs and runs it.
func (c *delivery) run(functionID string) {
	q, m := c.q, c.m
	qualifier := m.Headers().Get(hQualifier)
	f, err := q.cfg.Functions.ResolveQualified(q.ctx, functionID, qualifier)
	if errors.Is(err, fn.ErrNotFound) && qualifier != "" {
		// The version or alias went away while the call waited: the
		// function is still there to record that the call cannot run.
		if draft, derr := q.cfg.Functions.Resolve(q.ctx, functionID); derr == nil {
			c.f = draft
			c.giveUp(ReasonQualifierGone, &fn.ErrorInfo{Type: "Nimbus.QualifierNotFound", Message: fn.ScrubPaths(err.Error())})
			return
		}
	}
	switch {
	case errors.Is(err, fn.ErrNotFound):
		_ = m.TermWithReason("function deleted")
		return
	case err != nil:
		q.log.Warn("async call: resolve its function", "function", functionID, "error", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	c.f = f
	c.attemptCall()
}

func validTrigger(t string) bool {
	switch t {
	case fn.TriggerAsync, fn.TriggerSchedule, fn.TriggerDestination, fn.TriggerHTTP:
		return true
	}
	return false
}

// delivery is one attempt at a queued call.
type delivery struct {
	q        *Queue
	m        jetstream.Msg
	f        *fn.Function
	id       string
	attempt  int
	accepted time.Time
	trigger  string
	event    []byte
}

// keepAlive counts the call in hand until the returned stop is called:
// the queue's inHandLoop tells JetStream about it every third of the ack
// wait. (One loop for all calls: a goroutine and a ticker per call cost
// more than the rest of its bookkeeping.)
func (c *delivery) keepAlive() (stop func()) {
	q := c.q
	q.handMu.Lock()
	q.inHand[c.m] = struct{}{}
	q.handMu.Unlock()
	return func() {
		q.handMu.Lock()
		delete(q.inHand, c.m)
		q.handMu.Unlock()
	}
}

// inHandLoop tells JetStream, every third of the ack wait, that the calls
// in hand still are, until Close.
func (q *Queue) inHandLoop() {
	defer q.loops.Done()
	t := time.NewTicker(q.cfg.AckWait / 3)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-t.C:
		case <-q.ctx.Done():
			return
		}
		q.handMu.Lock()
		for m := range q.inHand {
			msgs = append(msgs, m)
		}
		q.handMu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
		clear(msgs)
		msgs = msgs[:0]
	}
}

func (c *delivery) attemptCall() {
	q, f := c.q, c.f
	age := time.Since(c.accepted)
	switch {
	case age > f.Async.MaxAge():
		c.giveUp(ReasonEventAgeExceeded, &fn.ErrorInfo{Type: "Nimbus.EventAgeExceeded",
			Message: "the call waited " + age.Round(time.Second).String() + ", longer than its function's maxEventAgeSeconds"})
		return
	case c.attempt > f.Async.Retries()+1:
		// Delivered again after its last attempt: the server running it
		// stopped before it was acknowledged.
		c.giveUp(ReasonRetriesExhausted, &fn.ErrorInfo{Type: "Nimbus.RetriesExhausted",
			Message: "delivered again after attempt " + strconv.Itoa(c.attempt-1) + ", its last"})
		return
	}
	q.cfg.Engine.Stage(f, c.record(fn.StatusRunning))
	var ex *fn.Execution
	for {
		var err error
		ex, err = q.cfg.Engine.InvokeCall(q.ctx, f, engine.Call{ID: c.id, Trigger: c.trigger, Event: c.event, Attempt: c.attempt})
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, fn.ErrNotFound):
			_ = c.m.TermWithReason("function deleted")
			return
		case errors.Is(err, fn.ErrCapacity) && q.ctx.Err() == nil:
			// Sync calls hold the instances: wait our turn, in hand.
			select {
			case <-time.After(100 * time.Millisecond):
				continue
			case <-q.ctx.Done():
			}
		}
		// Shutting down, or the engine cannot run it now: leave it to run
		// again, here after a restart or on another server.
		_ = c.m.NakWithDelay(time.Second)
		return
	}
	if ex.Status == fn.StatusSuccess {
		c.send(f.Async.OnSuccessDest(), "Success", ex)
		q.ack(c.m)
		return
	}
	if c.attempt <= f.Async.Retries() {
		wait := f.Async.Backoff(c.attempt)
		if time.Since(c.accepted)+wait < f.Async.MaxAge() {
			q.stats.Retried.Add(1)
			if err := c.m.NakWithDelay(wait); err != nil {
				q.log.Warn("async call: put back for a retry", "function", f.Name, "execution", c.id, "error", err)
			}
			return
		}
		c.deadLetter(ReasonEventAgeExceeded, ex.Error)
		c.send(f.Async.OnFailureDest(), ReasonEventAgeExceeded, ex)
		q.ack(c.m)
		return
	}
	c.deadLetter(ReasonRetriesExhausted, ex.Error)
	c.send(f.Async.OnFailureDest(), ReasonRetriesExhausted, ex)
	q.ack(c.m)
}

// record is the call's record at a stage (queued, running) or for an
// end the engine did not see.
func (c *delivery) record(s fn.Status) *fn.Execution {
	return &fn.Execution{
		ID: c.id, FunctionID: c.f.ID, Version: c.f.Version, Status: s, Event: c.event,
		Trigger: c.trigger, Attempt: c.attempt, StartedAt: time.Now(),
	}
}

// giveUp ends a call without running it: a final record that says why,
// a dead letter, the failure destination.
func (c *delivery) giveUp(reason string, why *fn.ErrorInfo) {
	ex := c.record(fn.StatusRejected)
	ex.Error = why
	c.q.cfg.Engine.Stage(c.f, ex)
	c.deadLetter(reason, why)
	c.send(c.f.Async.OnFailureDest(), reason, ex)
	c.q.ack(c.m)
}

// ack acknowledges m once the records made so far are written: a call
// is done only when its final record is stored.
func (q *Queue) ack(m jetstream.Msg) {
	select {
	case q.acks <- m:
	case <-q.stopAcks: // not acknowledged: it runs again, at least once
	}
}

// ackWindow is how long a finished call may wait for others to be
// acknowledged with: the records of all are written first, at once.
const ackWindow = 20 * time.Millisecond

// ackLoop acknowledges in batches: one flush of the records covers every
// call that finished within ackWindow of the first.
func (q *Queue) ackLoop() {
	defer q.loops.Done()
	defer close(q.acked)
	batch := make([]jetstream.Msg, 0, 256)
	for {
		select {
		case m := <-q.acks:
			batch = append(batch, m)
		case <-q.stopAcks:
			// What is waiting is acknowledged, the rest runs again.
			for {
				select {
				case m := <-q.acks:
					batch = append(batch, m)
					continue
				default:
				}
				break
			}
			q.flushAndAck(batch, true)
			return
		}
		// Gather what finishes within ackWindow: one write of the records
		// for many calls, and a call's stages (queued, running, done)
		// written as one row rather than three.
		window := time.NewTimer(ackWindow)
	gather:
		for len(batch) < cap(batch) {
			select {
			case m := <-q.acks:
				batch = append(batch, m)
			case <-window.C:
				break gather
			case <-q.stopAcks:
				break gather // acknowledged now; the loop then ends
			}
		}
		window.Stop()
		batch = q.flushAndAck(batch, false)
	}
}

// flushAndAck writes the records, then acknowledges batch. While the
// store is unavailable it keeps trying (the calls stay in hand), unless
// the server is closing: then they are left to run again.
func (q *Queue) flushAndAck(batch []jetstream.Msg, closing bool) []jetstream.Msg {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		ctx, cancel := context.WithTimeout(q.ackCtx, 30*time.Second)
		err := q.cfg.Engine.Flush(ctx)
		cancel()
		if err == nil {
			break
		}
		q.log.Warn("async calls: write their records before acknowledging them", "calls", len(batch), "error", err)
		if closing || q.ackCtx.Err() != nil {
			return batch[:0] // not acknowledged: they run again
		}
		for _, m := range batch {
			_ = m.InProgress()
		}
		select {
		case <-time.After(wait):
		case <-q.stopAcks:
			return batch[:0] // closing: not acknowledged, they run again
		}
	}
	for _, m := range batch {
		if err := m.Ack(); err != nil {
			q.log.Debug("acknowledge an async call", "error", err)
		}
	}
	clear(batch)
	return batch[:0]
}
