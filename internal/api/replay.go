package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// replayed is a replay's answer: the new execution, the one replayed,
// and how they differ.
type replayed struct {
	Execution *fn.Execution `json:"execution"`
	Original  *fn.Execution `json:"original"`
	Diff      replayDiff    `json:"diff"`
}

// replayDiff compares a replay with its original.
type replayDiff struct {
	// Same says the status and the result are equal.
	Same   bool       `json:"same"`
	Status *[2]string `json:"status,omitempty"` // original, replay; when they differ
	// Result lists what differs between the results, by JSON path.
	Result []Change `json:"result,omitempty"`
	// DurationMs is the replay's duration and the original's.
	DurationMs [2]float64 `json:"durationMs"`
	// Versions are the versions that ran: the original's, the replay's.
	Versions [2]string `json:"versions"`
}

// Change is one difference between two JSON values, at Path ("" for the
// whole value, ".a[2].b" below it). Before or After is absent where the
// value is.
type Change struct {
	Path   string          `json:"path"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// maxChanges bounds a diff: the rest is summed up in the last change.
const maxChanges = 100

// replay serves POST /api/executions/{functionId}/{executionId}/replay:
// the recorded event runs again, against ?qualifier= (the draft by
// default), and the answer compares the two runs.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Functions.Get(r.Context(), r.PathValue("functionId"))
	if err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("executionId")
	orig, err := s.cfg.Store.GetExecution(r.Context(), f.ID, id)
	if errors.Is(err, fn.ErrNotFound) {
		if ferr := s.cfg.Engine.Flush(r.Context()); ferr == nil {
			orig, err = s.cfg.Store.GetExecution(r.Context(), f.ID, id)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query().Get("qualifier")
	if err := fn.CheckQualifier("qualifier", q); err != nil {
		writeError(w, err)
		return
	}
	target, err := s.cfg.Functions.ResolveQualified(r.Context(), f.ID, q)
	if err != nil {
		writeError(w, err)
		return
	}
	event := orig.Event
	if !json.Valid(event) {
		event = json.RawMessage("{}") // nothing stored is trusted
	}
	ex, err := s.cfg.Engine.InvokeCall(r.Context(), target, engine.Call{Trigger: fn.TriggerReplay, Event: event})
	if errors.Is(err, fn.ErrNotFound) {
		writeError(w, err)
		return
	}
	if err != nil {
		writeError(w, fmt.Errorf("replay %s rejected: %w", ex.ID, err))
		return
	}
	reply := *ex
	reply.Event = nil
	writeJSON(w, http.StatusOK, replayed{Execution: &reply, Original: orig, Diff: diffRuns(orig, &reply)})
}

func diffRuns(a, b *fn.Execution) replayDiff {
	d := replayDiff{
		DurationMs: [2]float64{a.DurationMs, b.DurationMs},
		Versions:   [2]string{a.VersionName(), b.VersionName()},
		Result:     diffJSON(a.Result, b.Result),
	}
	if a.Status != b.Status {
		d.Status = &[2]string{string(a.Status), string(b.Status)}
	}
	d.Same = d.Status == nil && len(d.Result) == 0
	return d
}

// diffJSON lists the differences between two JSON documents: objects
// key by key, arrays index by index, anything else as a whole.
func diffJSON(a, b json.RawMessage) []Change {
	var x, y any
	if json.Unmarshal(a, &x) != nil {
		x = nil
	}
	if json.Unmarshal(b, &y) != nil {
		y = nil
	}
	var out []Change
	walk("", x, y, len(a) > 0, len(b) > 0, &out)
	if len(out) > maxChanges {
		rest := len(out) - maxChanges + 1
		out = append(out[:maxChanges-1], Change{Path: fmt.Sprintf("(%d more changes)", rest)})
	}
	return out
}

func walk(path string, x, y any, hasX, hasY bool, out *[]Change) {
	if len(*out) > maxChanges {
		return
	}
	switch xv := x.(type) {
	case map[string]any:
		if yv, ok := y.(map[string]any); ok && hasX && hasY {
			keys := make([]string, 0, len(xv)+len(yv))
			for k := range xv {
				keys = append(keys, k)
			}
			for k := range yv {
				if _, ok := xv[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				a, inA := xv[k]
				b, inB := yv[k]
				walk(path+"."+k, a, b, inA, inB, out)
			}
			return
		}
	case []any:
		if yv, ok := y.([]any); ok && hasX && hasY {
			for i := range max(len(xv), len(yv)) {
				var a, b any
				if i < len(xv) {
					a = xv[i]
				}
				if i < len(yv) {
					b = yv[i]
				}
				walk(path+"["+strconv.Itoa(i)+"]", a, b, i < len(xv), i < len(yv), out)
			}
			return
		}
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	if hasX == hasY && bytes.Equal(ja, jb) {
		return
	}
	c := Change{Path: path}
	if hasX {
		c.Before = ja
	}
	if hasY {
		c.After = jb
	}
	*out = append(*out, c)
}
