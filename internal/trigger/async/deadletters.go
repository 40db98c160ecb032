package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// DeadLetter is an async call that failed for the last time or waited
// too long.
type DeadLetter struct {
	ExecutionID string        `json:"executionId"`
	FunctionID  string        `json:"functionId"`
	Trigger     string        `json:"trigger"`
	Reason      string        `json:"reason"` // ReasonRetriesExhausted, ReasonEventAgeExceeded
	Attempts    int           `json:"attempts"`
	Error       *fn.ErrorInfo `json:"error,omitempty"`
	AcceptedAt  time.Time     `json:"acceptedAt"`
	DeadAt      time.Time     `json:"deadAt"`
	// Event is the call's event: JSON, as it was sent.
	Event json.RawMessage `json:"event,omitempty"`
}

func (q *Queue) deadSubject(functionID, executionID string) string {
	return deadPrefix + functionID + "." + executionID
}

// deadLetter keeps the call in the function's dead letters.
func (c *delivery) deadLetter(reason string, why *fn.ErrorInfo) {
	q := c.q
	m := nats.NewMsg(q.deadSubject(c.f.ID, c.id))
	m.Data = c.event
	m.Header.Set(hExecution, c.id)
	m.Header.Set(hAccepted, c.accepted.UTC().Format(time.RFC3339Nano))
	m.Header.Set(hTrigger, c.trigger)
	m.Header.Set(hAttempts, strconv.Itoa(c.attempt))
	m.Header.Set(hReason, reason)
	m.Header.Set(hDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	m.Header.Set(jetstream.MsgIDHeader, "dead/"+c.id)
	if why != nil {
		m.Header.Set(hErrType, oneLine(why.Type, 256))
		m.Header.Set(hErrMsg, oneLine(why.Message, 1024))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := q.js.PublishMsg(ctx, m); err != nil {
		q.log.Error("keep a dead letter", "function", c.f.Name, "execution", c.id, "error", err)
		return
	}
	q.stats.DeadLettered.Add(1)
}

// oneLine makes s fit a header: no line breaks, at most n bytes.
func oneLine(s string, n int) string {
	b := []byte(fn.Truncate(s, n))
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

func parseDead(m *jetstream.RawStreamMsg) (DeadLetter, bool) {
	h := m.Header
	d := DeadLetter{
		ExecutionID: h.Get(hExecution), Trigger: h.Get(hTrigger), Reason: h.Get(hReason),
		Event: json.RawMessage(m.Data),
	}
	d.Attempts, _ = strconv.Atoi(h.Get(hAttempts))
	d.AcceptedAt, _ = time.Parse(time.RFC3339Nano, h.Get(hAccepted))
	d.DeadAt, _ = time.Parse(time.RFC3339Nano, h.Get(hDeadAt))
	if t := h.Get(hErrType); t != "" || h.Get(hErrMsg) != "" {
		d.Error = &fn.ErrorInfo{Type: t, Message: h.Get(hErrMsg)}
	}
	if !json.Valid(d.Event) {
		d.Event = nil // nothing stored is trusted
	}
	return d, idRE.MatchString(d.ExecutionID)
}

// DeadLetters lists up to limit of a function's dead letters, oldest
// first, without their events, and how many there are in all.
func (q *Queue) DeadLetters(ctx context.Context, functionID string, limit int) ([]DeadLetter, int, error) {
	if !idRE.MatchString(functionID) {
		return nil, 0, fn.ErrNotFound
	}
	subject := deadPrefix + functionID + ".*"
	info, err := q.dead.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, 0, fmt.Errorf("dead letters: %v: %w", err, fn.ErrUnavailable)
	}
	total := len(info.State.Subjects)
	out := []DeadLetter{}
	var seq uint64 = 1
	for len(out) < limit {
		m, err := q.dead.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("dead letters: %v: %w", err, fn.ErrUnavailable)
		}
		seq = m.Sequence + 1
		if d, ok := parseDead(m); ok {
			d.FunctionID, d.Event = functionID, nil
			out = append(out, d)
		}
	}
	return out, total, nil
}

// DeadLetter returns one dead letter with its event.
func (q *Queue) DeadLetter(ctx context.Context, functionID, executionID string) (DeadLetter, error) {
	if !idRE.MatchString(functionID) || !idRE.MatchString(executionID) {
		return DeadLetter{}, fmt.Errorf("dead letter %s: %w", executionID, fn.ErrNotFound)
	}
	m, err := q.dead.GetLastMsgForSubject(ctx, q.deadSubject(functionID, executionID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("dead letter %s: %w", executionID, fn.ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter: %v: %w", err, fn.ErrUnavailable)
	}
	d, ok := parseDead(m)
	if !ok || d.ExecutionID != executionID {
		return DeadLetter{}, fmt.Errorf("dead letter %s: unreadable: %w", executionID, fn.ErrNotFound)
	}
	d.FunctionID = functionID
	return d, nil
}

// DeleteDeadLetter removes one dead letter, or all of a function's when
// executionID is "".
func (q *Queue) DeleteDeadLetter(ctx context.Context, functionID, executionID string) error {
	subject := deadPrefix + functionID + ".*"
	if executionID != "" {
		if _, err := q.DeadLetter(ctx, functionID, executionID); err != nil {
			return err
		}
		subject = q.deadSubject(functionID, executionID)
	} else if !idRE.MatchString(functionID) {
		return fn.ErrNotFound
	}
	if err := q.dead.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return fmt.Errorf("delete dead letters: %v: %w", err, fn.ErrUnavailable)
	}
	return nil
}

// Replay queues a dead letter again as a new async call to f (with a new
// execution id and its attempts from one) and removes it from the dead
// letters.
func (q *Queue) Replay(ctx context.Context, f *fn.Function, executionID string) (Accepted, error) {
	d, err := q.DeadLetter(ctx, f.ID, executionID)
	if err != nil {
		return Accepted{}, err
	}
	event := d.Event
	if event == nil {
		event = json.RawMessage("{}")
	}
	trigger := d.Trigger
	if !validTrigger(trigger) {
		trigger = fn.TriggerAsync
	}
	// The key makes a replay sent twice queue once.
	a, err := q.Enqueue(ctx, f, Call{Trigger: trigger, Event: event, IdempotencyKey: "replay/" + executionID})
	if err != nil {
		return Accepted{}, err
	}
	if err := q.DeleteDeadLetter(ctx, f.ID, executionID); err != nil && !errors.Is(err, fn.ErrNotFound) {
		q.log.Warn("remove a replayed dead letter", "function", f.Name, "execution", executionID, "error", err)
	}
	return a, nil
}
