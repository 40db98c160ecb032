package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
)

// etag is the ETag of something with a revision.
func etag(revision int) string { return `"` + strconv.Itoa(revision) + `"` }

// checkIfMatch returns fn.ErrPrecondition when r has an If-Match that
// revision does not match ("*" matches anything).
func checkIfMatch(r *http.Request, revision int, what string) error {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag(revision) {
			return nil
		}
	}
	return fmt.Errorf("%s is at revision %d, not %s: read it again: %w", what, revision, h, fn.ErrPrecondition)
}

// stale is a failed If-Match with the current state, which a 412 shows.
type stale struct {
	err     error
	current any
}

func (e *stale) Error() string { return e.err.Error() }
func (e *stale) Unwrap() error { return e.err }

// writeStale answers a failed If-Match with 412, the error and the
// current state; other errors as writeError does.
func writeStale(w http.ResponseWriter, err error) {
	var st *stale
	if !errors.As(err, &st) {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusPreconditionFailed, map[string]any{
		"error":   apiError{Code: "precondition_failed", Message: st.Error()},
		"current": st.current,
	})
}

// versionNumber is the {n} of a versions path.
func versionNumber(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("version %q: %w", r.PathValue("n"), fn.ErrNotFound)
	}
	return n, nil
}

// publish serves POST /api/functions/{id}/versions.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Description  string `json:"description"`
		ExpectedHash string `json:"expectedHash"`
	}
	if r.ContentLength != 0 {
		if err := s.readJSON(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	v, created, err := s.cfg.Functions.Publish(r.Context(), r.PathValue("id"), req.Description, req.ExpectedHash)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK // the draft was published before: that version
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, v)
}

// listVersions serves GET /api/functions/{id}/versions.
func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) {
	_, vs, err := s.cfg.Functions.Versions(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if vs == nil {
		vs = []*fn.Version{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

// getVersion serves GET /api/functions/{id}/versions/{n}.
func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	n, err := versionNumber(r)
	if err == nil {
		var v *fn.Version
		if v, err = s.cfg.Functions.Version(r.Context(), r.PathValue("id"), n); err == nil {
			g := *v.Function
			g.Files = s.cfg.Functions.InlineFiles(r.Context(), v.Function)
			writeJSON(w, http.StatusOK, &fn.Version{Function: &g, Description: v.Description, ConfigHash: v.ConfigHash, PublishedAt: v.PublishedAt})
			return
		}
	}
	writeError(w, err)
}

// getVersionCode serves GET /api/functions/{id}/versions/{n}/code.
func (s *Server) getVersionCode(w http.ResponseWriter, r *http.Request) {
	n, err := versionNumber(r)
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := s.cfg.Functions.Version(r.Context(), r.PathValue("id"), n)
	if err != nil {
		writeError(w, err)
		return
	}
	zip, size, err := s.cfg.Functions.OpenCode(r.Context(), v.Function)
	if err != nil {
		writeError(w, err)
		return
	}
	defer zip.Close()
	s.writeZip(w, r, fmt.Sprintf("%s-%d.zip", v.Name, n), zip, size)
}

// deleteVersion serves DELETE /api/functions/{id}/versions/{n}.
func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) {
	n, err := versionNumber(r)
	if err == nil {
		err = s.cfg.Functions.DeleteVersion(r.Context(), r.PathValue("id"), n)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// aliasBody is what a client sends for an alias.
type aliasBody struct {
	Name                     string             `json:"name"`
	Version                  int                `json:"version"`
	AdditionalVersionWeights map[string]float64 `json:"additionalVersionWeights"`
	Description              string             `json:"description"`
}

// listAliases serves GET /api/functions/{id}/aliases.
func (s *Server) listAliases(w http.ResponseWriter, r *http.Request) {
	as, err := s.cfg.Functions.Aliases(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if as == nil {
		as = []*fn.Alias{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"aliases": as})
}

// createAlias serves POST /api/functions/{id}/aliases (the name in the
// body) and POST …/aliases/{name}.
func (s *Server) createAlias(w http.ResponseWriter, r *http.Request) {
	var b aliasBody
	if err := s.readJSON(w, r, &b); err != nil {
		writeError(w, err)
		return
	}
	if err := nameFromPath(r, &b.Name); err != nil {
		writeError(w, err)
		return
	}
	a, err := s.cfg.Functions.CreateAlias(r.Context(), r.PathValue("id"), &fn.Alias{
		Name: b.Name, Version: b.Version, AdditionalVersionWeights: b.AdditionalVersionWeights, Description: b.Description,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", etag(a.Revision))
	writeJSON(w, http.StatusCreated, a)
}

// getAlias serves GET /api/functions/{id}/aliases/{name}.
func (s *Server) getAlias(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Functions.GetAlias(r.Context(), r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", etag(a.Revision))
	writeJSON(w, http.StatusOK, a)
}

// updateAlias serves PUT /api/functions/{id}/aliases/{name}: the fields
// sent replace the alias's (version, additionalVersionWeights,
// description), with If-Match honoured.
func (s *Server) updateAlias(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a, err := s.cfg.Functions.UpdateAlias(r.Context(), r.PathValue("id"), name, "update", func(a *fn.Alias) error {
		if err := checkIfMatch(r, a.Revision, "alias "+name); err != nil {
			return &stale{err: err, current: a}
		}
		var patch struct {
			Name                     *string             `json:"name"`
			Version                  *int                `json:"version"`
			AdditionalVersionWeights *map[string]float64 `json:"additionalVersionWeights"`
			Description              *string             `json:"description"`
			Rollout                  *fn.Rollout         `json:"rollout"`
		}
		if err := s.readJSON(w, r, &patch); err != nil {
			return err
		}
		if patch.Rollout != nil {
			if patch.Version != nil || patch.AdditionalVersionWeights != nil {
				return fn.Invalid("rollout", "a rollout moves the alias itself: send it without version or additionalVersionWeights")
			}
			return functions.StartRollout(a, patch.Rollout, time.Now())
		}
		if (patch.Version != nil || patch.AdditionalVersionWeights != nil) && a.Rollout.Running() {
			a.Rollout.State, a.Rollout.Reason = fn.RolloutCancelled, "the alias was moved by hand"
		}
		if patch.Name != nil && *patch.Name != name {
			return fn.Invalid("name", "an alias cannot be renamed: create another")
		}
		if patch.Version != nil {
			a.Version = *patch.Version
			if patch.AdditionalVersionWeights == nil {
				a.AdditionalVersionWeights = nil // a move without weights ends a split
			}
		}
		if patch.AdditionalVersionWeights != nil {
			a.AdditionalVersionWeights = *patch.AdditionalVersionWeights
		}
		if patch.Description != nil {
			a.Description = *patch.Description
		}
		return nil
	})
	if err != nil {
		writeStale(w, err)
		return
	}
	w.Header().Set("ETag", etag(a.Revision))
	writeJSON(w, http.StatusOK, a)
}

// deleteAlias serves DELETE /api/functions/{id}/aliases/{name}.
func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if r.Header.Get("If-Match") != "" {
		a, err := s.cfg.Functions.GetAlias(r.Context(), r.PathValue("id"), name)
		if err == nil {
			if err = checkIfMatch(r, a.Revision, "alias "+name); err != nil {
				err = &stale{err: err, current: a}
			}
		}
		if err != nil {
			writeStale(w, err)
			return
		}
	}
	if err := s.cfg.Functions.DeleteAlias(r.Context(), r.PathValue("id"), name); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rollbackAlias serves POST /api/functions/{id}/aliases/{name}/rollback.
func (s *Server) rollbackAlias(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Functions.Rollback(r.Context(), r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", etag(a.Revision))
	writeJSON(w, http.StatusOK, a)
}

// qualified splits the function a call names into its id or name and
// its qualifier: "name:qualifier" in the path, or ?qualifier=.
func qualified(r *http.Request, param string) (string, string, error) {
	name, q := fn.ParseQualifier(r.PathValue(param))
	if v := r.URL.Query().Get("qualifier"); v != "" {
		if q != "" && q != v {
			return "", "", fn.Invalid("qualifier", fmt.Sprintf("the path says %q, the query %q", q, v))
		}
		q = v
	}
	return name, q, nil
}

// nameFromPath sets *name to the path's {name}, for a create that takes
// the name in its path or its body: both, they must agree.
func nameFromPath(r *http.Request, name *string) error {
	if p := r.PathValue("name"); p != "" {
		if *name != "" && *name != p {
			return fn.Invalid("name", fmt.Sprintf("the body names %q, the path %q", *name, p))
		}
		*name = p
	}
	return nil
}
