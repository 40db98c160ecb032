package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
)

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	name, qualifier, err := qualified(r, "functionId")
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := s.cfg.Functions.ResolveQualified(r.Context(), name, qualifier)
	if err != nil {
		writeError(w, err)
		return
	}
	event, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		writeError(w, err)
		return
	}
	if len(event) == 0 {
		event = []byte("{}")
	} else if !json.Valid(event) {
		writeError(w, fn.Invalid("body", "the event must be valid JSON"))
		return
	} else if err := checkDepth(event); err != nil {
		writeError(w, err)
		return
	}
	// Again, now that the body is in: the function may have been deleted
	// or changed while it was read.
	if f, err = s.cfg.Functions.ResolveQualified(r.Context(), f.ID, qualifier); err != nil {
		writeError(w, err)
		return
	}
	if queue, err := isAsync(r); err != nil {
		writeError(w, err)
		return
	} else if queue {
		s.invokeAsync(w, r, f, qualifier, event)
		return
	}
	ex, err := s.cfg.Engine.Invoke(r.Context(), f, event)
	if errors.Is(err, fn.ErrNotFound) {
		writeError(w, err) // deleted since: no execution was recorded
		return
	}
	if err != nil {
		writeError(w, fmt.Errorf("execution %s rejected: %w", ex.ID, err))
		return
	}
	reply := *ex // ex is shared with the record writer: never modify it
	reply.Event = nil
	writeJSON(w, http.StatusOK, &reply)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Functions.Get(r.Context(), r.PathValue("functionId"))
	if err != nil {
		writeError(w, err)
		return
	}
	q := store.ExecQuery{Limit: 50, Before: r.URL.Query().Get("before"), Status: fn.Status(r.URL.Query().Get("status"))}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, fn.Invalid("limit", "must be a whole number from 1 to 1000"))
			return
		}
		q.Limit = n
	}
	if v := r.URL.Query().Get("version"); v != "" {
		if v == fn.Latest {
			q.VersionSet = true
		} else if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			q.Version, q.VersionSet = n, true
		} else {
			writeError(w, fn.Invalid("version", "must be a version number or $LATEST"))
			return
		}
	}
	q.Text = r.URL.Query().Get("q")
	if len(q.Text) > 200 {
		writeError(w, fn.Invalid("q", "at most 200 bytes"))
		return
	}
	for _, tf := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := r.URL.Query().Get(tf.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, fn.Invalid(tf.name, "must be a time such as 2006-01-02T15:04:05Z"))
				return
			}
			*tf.to = t
		}
	}
	if q.Status != "" && !q.Status.Valid() && q.Status.Final() {
		writeError(w, fn.Invalid("status", fmt.Sprintf("unknown status %q (one of %v, %s, %s)", q.Status, fn.Statuses, fn.StatusQueued, fn.StatusRunning)))
		return
	}
	if err := s.cfg.Engine.Flush(r.Context()); err != nil {
		s.log.Warn("flush records before reading history", "error", err)
	}
	execs, err := s.cfg.Store.ListExecutions(r.Context(), f.ID, q)
	if err != nil {
		writeError(w, err)
		return
	}
	out := map[string]any{"executions": execs}
	if q.Text != "" {
		// What a text search looked through: a short page may not be
		// the last (see store.MaxTextScan).
		out["scanLimit"] = store.MaxTextScan
	}
	if len(execs) == q.Limit {
		out["nextBefore"] = execs[len(execs)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getExecution(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Functions.Get(r.Context(), r.PathValue("functionId"))
	if err != nil {
		writeError(w, err)
		return
	}
	ex, err := s.cfg.Store.GetExecution(r.Context(), f.ID, r.PathValue("executionId"))
	if errors.Is(err, fn.ErrNotFound) {
		// It may still be waiting to be written.
		if ferr := s.cfg.Engine.Flush(r.Context()); ferr == nil {
			ex, err = s.cfg.Store.GetExecution(r.Context(), f.ID, r.PathValue("executionId"))
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ex)
}
