package api

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
)

// functionView is a function as the API shows it, with any warnings about
// running it (a driver that is not available now).
type functionView struct {
	*fn.Function
	Warnings []string `json:"warnings,omitempty"`
	// KeepAliveNow is the keep-alive in force (GET of one function).
	KeepAliveNow *keepAliveView `json:"keepAliveNow,omitempty"`
}

// keepAliveView shows engine.KeepAlive: after the function goes idle its
// instances are released at once when prewarmMs > 0, one is warm again
// from prewarmMs, and none from prewarmMs+keepAliveMs.
type keepAliveView struct {
	Source      string `json:"source"` // function, server or adaptive
	PrewarmMs   int64  `json:"prewarmMs"`
	KeepAliveMs int64  `json:"keepAliveMs"`
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) {
	fns, err := s.cfg.Functions.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]*fn.Function, 0, len(fns))
	now := time.Now()
	for _, f := range fns {
		if !visible(r, f.Name) {
			continue
		}
		g := *f
		g.Files = nil // the list stays light; GET one for its code
		g.Schedules = withNextRuns(f.Schedules, now)
		out = append(out, &g)
	}
	writeJSON(w, http.StatusOK, map[string]any{"functions": out})
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request) {
	f, err := s.cfg.Functions.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", etag(f.Revision))
	v := s.view(r, f)
	win, src := s.cfg.Engine.KeepAlive(f)
	v.KeepAliveNow = &keepAliveView{Source: src, PrewarmMs: win.Prewarm.Milliseconds(), KeepAliveMs: win.KeepAlive.Milliseconds()}
	writeJSON(w, http.StatusOK, v)
}

// createFunction serves POST /api/functions: a function as JSON (its
// code as "code", "files" or a base64 "zipFile"), or a multipart form of
// a "function" JSON part and an "archive" part.
func (s *Server) createFunction(w http.ResponseWriter, r *http.Request) {
	var f *fn.Function
	var err error
	if media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); media == "multipart/form-data" {
		f, err = s.createFromMultipart(w, r)
	} else {
		f = new(fn.Function)
		err = s.readJSON(w, r, f)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if c, ok := f.Archive.(io.Closer); ok {
		defer c.Close() // the spooled upload
	}
	if err := mayFunction(r, f.Name); err != nil {
		writeAuthError(w, err)
		return
	}
	f, err = s.cfg.Functions.Create(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", etag(f.Revision))
	v := s.view(r, f)
	v.Warnings = s.cfg.Functions.Warnings(r.Context(), f)
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) updateFunction(w http.ResponseWriter, r *http.Request) {
	// The body is read once the function is known: an unknown one is a 404
	// whatever the body.
	f, changed, err := s.cfg.Functions.Update(r.Context(), r.PathValue("id"), func(f *fn.Function) error {
		if err := checkIfMatch(r, f.Revision, "function "+f.Name); err != nil {
			return &stale{err: err, current: s.view(r, f)}
		}
		var patch map[string]json.RawMessage
		if err := s.readJSON(w, r, &patch); err != nil {
			return err
		}
		if err := functions.Merge(f, patch); err != nil {
			return err
		}
		return mayFunction(r, f.Name) // a rename stays within the key's globs
	})
	if err != nil {
		writeStale(w, err)
		return
	}
	w.Header().Set("ETag", etag(f.Revision))
	v := s.view(r, f)
	if changed {
		v.Warnings = s.cfg.Functions.Warnings(r.Context(), f)
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteFunction(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("If-Match") != "" {
		f, err := s.cfg.Functions.Get(r.Context(), r.PathValue("id"))
		if err == nil {
			if err = checkIfMatch(r, f.Revision, "function "+f.Name); err != nil {
				err = &stale{err: err, current: s.view(r, f)}
			}
		}
		if err != nil {
			writeStale(w, err)
			return
		}
	}
	f, err := s.cfg.Functions.Delete(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	s.forgetQueue(r.Context(), f)
	w.WriteHeader(http.StatusNoContent)
}

// view shows f with its code inline when it is small text, as a files map
// a client can edit and send back.
func (s *Server) view(r *http.Request, f *fn.Function) *functionView {
	g := *f
	g.Files = s.cfg.Functions.InlineFiles(r.Context(), f)
	g.Schedules = withNextRuns(f.Schedules, time.Now())
	return &functionView{Function: &g}
}

// withNextRuns is a copy of schedules with each enabled one's next run
// after now filled in.
func withNextRuns(schedules []fn.Schedule, now time.Time) []fn.Schedule {
	if len(schedules) == 0 {
		return schedules
	}
	out := slices.Clone(schedules)
	for i := range out {
		out[i].NextRun = nil
		if out[i].On() {
			if t, err := out[i].Next(now); err == nil {
				out[i].NextRun = &t
			}
		}
	}
	return out
}
