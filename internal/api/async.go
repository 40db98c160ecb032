package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/trigger/async"
)

// Headers of an async call.
const (
	invocationTypeHeader    = "X-Nimbus-Invocation-Type"
	amzInvocationTypeHeader = "X-Amz-Invocation-Type" // Lambda's spelling
	idempotencyHeader       = "X-Nimbus-Idempotency-Key"
)

// isAsync reports whether a call to POST /api/executions/{id} asks to be
// queued rather than answered: the Event invocation type (Lambda's) in a
// header, or ?async=true.
func isAsync(r *http.Request) (bool, error) {
	for _, h := range []string{invocationTypeHeader, amzInvocationTypeHeader} {
		switch v := r.Header.Get(h); {
		case v == "":
		case strings.EqualFold(v, "Event"):
			return true, nil
		case strings.EqualFold(v, "RequestResponse"):
			return false, nil
		default:
			return false, fn.Invalid(h, fmt.Sprintf("unknown invocation type %q (use \"Event\" or \"RequestResponse\")", v))
		}
	}
	if v := r.URL.Query().Get("async"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fn.Invalid("async", "must be true or false")
		}
		return b, nil
	}
	return false, nil
}

// accepted is the answer to an async call.
type accepted struct {
	async.Accepted
	Status fn.Status `json:"status"`
}

// invokeAsync queues a call to f and answers 202 once it is stored.
func (s *Server) invokeAsync(w http.ResponseWriter, r *http.Request, f *fn.Function, qualifier string, event []byte) {
	q, err := s.asyncQueue()
	if err != nil {
		writeError(w, err)
		return
	}
	a, err := q.Enqueue(r.Context(), f, async.Call{Event: event, Qualifier: qualifier, IdempotencyKey: r.Header.Get(idempotencyHeader)})
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeAccepted(w, f, a)
}

func (s *Server) writeAccepted(w http.ResponseWriter, f *fn.Function, a async.Accepted) {
	if a.ExecutionID != "" {
		w.Header().Set("X-Nimbus-Execution-Id", a.ExecutionID)
		w.Header().Set("Location", "/api/executions/"+f.ID+"/"+a.ExecutionID)
	}
	writeJSON(w, http.StatusAccepted, accepted{Accepted: a, Status: fn.StatusQueued})
}

// asyncQueue is the queue, or why there is none.
func (s *Server) asyncQueue() (*async.Queue, error) {
	if s.cfg.Async == nil {
		return nil, fmt.Errorf("async calls are not available on this server: %w", fn.ErrUnavailable)
	}
	return s.cfg.Async, nil
}

// asyncDepth serves GET /api/functions/{id}/async: the function's queue.
func (s *Server) asyncDepth(w http.ResponseWriter, r *http.Request) {
	f, q, ok := s.asyncFunction(w, r)
	if !ok {
		return
	}
	d, err := q.Depth(r.Context(), f.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) asyncFunction(w http.ResponseWriter, r *http.Request) (*fn.Function, *async.Queue, bool) {
	q, err := s.asyncQueue()
	if err == nil {
		var f *fn.Function
		if f, err = s.cfg.Functions.Get(r.Context(), r.PathValue("id")); err == nil {
			return f, q, true
		}
	}
	writeError(w, err)
	return nil, nil, false
}

// deadLetters serves GET /api/functions/{id}/dead-letters.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	f, q, ok := s.asyncFunction(w, r)
	if !ok {
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, fn.Invalid("limit", "must be a whole number from 1 to 1000"))
			return
		}
		limit = n
	}
	list, total, err := q.DeadLetters(r.Context(), f.ID, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deadLetters": list, "total": total})
}

// deadLetter serves GET /api/functions/{id}/dead-letters/{executionId}.
func (s *Server) deadLetter(w http.ResponseWriter, r *http.Request) {
	f, q, ok := s.asyncFunction(w, r)
	if !ok {
		return
	}
	d, err := q.DeadLetter(r.Context(), f.ID, r.PathValue("executionId"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// replayDeadLetter serves POST …/dead-letters/{executionId}/replay.
func (s *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	f, q, ok := s.asyncFunction(w, r)
	if !ok {
		return
	}
	a, err := q.Replay(r.Context(), f, r.PathValue("executionId"))
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeAccepted(w, f, a)
}

// deleteDeadLetter serves DELETE …/dead-letters/{executionId}, and
// DELETE …/dead-letters for all of them.
func (s *Server) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	f, q, ok := s.asyncFunction(w, r)
	if !ok {
		return
	}
	if err := q.DeleteDeadLetter(r.Context(), f.ID, r.PathValue("executionId")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// forgetQueue removes a deleted function's queue and dead letters.
func (s *Server) forgetQueue(ctx context.Context, f *fn.Function) {
	if s.cfg.Async != nil {
		s.cfg.Async.Forget(context.WithoutCancel(ctx), f.ID)
	}
}
