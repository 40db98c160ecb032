package lambda

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// publishVersion serves PublishVersion: the draft becomes a version,
// unless the newest version is the same already (then that one).
// CodeSha256 and RevisionId, when sent, must be the draft's.
func (h *Handler) publishVersion(w http.ResponseWriter, r *http.Request) {
	name, qualifier, err := h.target(r)
	if err == nil && qualifier != "" {
		err = invalidParameter("PublishVersion publishes $LATEST: FunctionName takes no qualifier")
	}
	var req struct{ CodeSha256, Description, RevisionId string }
	if err == nil {
		err = readJSON(r, &req)
	}
	var f *fn.Function
	if err == nil {
		f, err = h.cfg.Functions.Get(r.Context(), name)
		err = h.orNotFound(err, name, "")
	}
	if err == nil {
		c := h.configuration(f, "")
		switch {
		case req.CodeSha256 != "" && req.CodeSha256 != c.CodeSha256:
			err = invalidParameter(fmt.Sprintf("CodeSha256 (%s) is different from current CodeSha256 in $LATEST (%s). Please try again with the CodeSha256 in $LATEST.", req.CodeSha256, c.CodeSha256))
		case req.RevisionId != "" && req.RevisionId != c.RevisionId:
			err = fmt.Errorf("the revision id %s does not match the function's latest, %s: %w", req.RevisionId, c.RevisionId, fn.ErrPrecondition)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	v, _, err := h.cfg.Functions.Publish(r.Context(), f.ID, req.Description, "")
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.configuration(v.Function, v.Description))
}

// listVersions serves ListVersionsByFunction: $LATEST, then the versions,
// oldest first.
func (h *Handler) listVersions(w http.ResponseWriter, r *http.Request) {
	name, _, err := h.target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	limit, err := maxItems(r.URL.Query().Get("MaxItems"), 50, 10000)
	if err != nil {
		writeError(w, err)
		return
	}
	f, vs, err := h.cfg.Functions.Versions(r.Context(), name)
	if err != nil {
		writeError(w, h.orNotFound(err, name, ""))
		return
	}
	list := []*functionConfiguration{h.configuration(f, "")}
	for _, v := range vs {
		list = append(list, h.configuration(v.Function, v.Description))
	}
	page, next, err := paginate(list, func(c *functionConfiguration) string { return c.Version }, r.URL.Query().Get("Marker"), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	out := map[string]any{"Versions": page}
	if next != "" {
		out["NextMarker"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// aliasConfiguration is Lambda's AliasConfiguration.
type aliasConfiguration struct {
	AliasArn        string
	Name            string
	FunctionVersion string
	Description     string
	RoutingConfig   *routingConfig `json:",omitempty"`
	RevisionId      string
}

type routingConfig struct {
	AdditionalVersionWeights map[string]float64
}

func (h *Handler) alias(name string, a *fn.Alias) *aliasConfiguration {
	c := &aliasConfiguration{AliasArn: h.arns.qualified(name, a.Name), Name: a.Name, FunctionVersion: strconv.Itoa(a.Version),
		Description: a.Description, RevisionId: strconv.Itoa(a.Revision)}
	if len(a.AdditionalVersionWeights) > 0 {
		c.RoutingConfig = &routingConfig{AdditionalVersionWeights: a.AdditionalVersionWeights}
	}
	return c
}

// aliasRequest is CreateAlias's and UpdateAlias's body.
type aliasRequest struct {
	Name            string
	FunctionVersion *string
	Description     *string
	RoutingConfig   *routingConfig
	RevisionId      string
}

// aliasVersion reads an alias's FunctionVersion: a published version
// (an alias of $LATEST would move with every change: Nimbus has none).
func aliasVersion(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, invalidParameter(fmt.Sprintf("FunctionVersion %q: a Nimbus alias points at a published version (a number); publish one with PublishVersion", s))
	}
	return n, nil
}

// createAlias serves CreateAlias.
func (h *Handler) createAlias(w http.ResponseWriter, r *http.Request) {
	name, _, err := h.target(r)
	var req aliasRequest
	if err == nil {
		err = readJSON(r, &req)
	}
	if err == nil && req.FunctionVersion == nil {
		err = invalidParameter("FunctionVersion is required")
	}
	a := &fn.Alias{Name: req.Name}
	if err == nil {
		a.Version, err = aliasVersion(*req.FunctionVersion)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if req.Description != nil {
		a.Description = *req.Description
	}
	if req.RoutingConfig != nil {
		a.AdditionalVersionWeights = req.RoutingConfig.AdditionalVersionWeights
	}
	a, err = h.cfg.Functions.CreateAlias(r.Context(), name, a)
	if err != nil {
		writeError(w, h.orNotFound(err, name, ""))
		return
	}
	writeJSON(w, http.StatusCreated, h.alias(name, a))
}

// getAlias serves GetAlias.
func (h *Handler) getAlias(w http.ResponseWriter, r *http.Request) {
	name, _, err := h.target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	a, err := h.cfg.Functions.GetAlias(r.Context(), name, r.PathValue("alias"))
	if err != nil {
		writeError(w, h.aliasNotFound(r, err, name))
		return
	}
	writeJSON(w, http.StatusOK, h.alias(name, a))
}

// aliasNotFound is err as Lambda says it: which of the function or the
// alias r names is missing.
func (h *Handler) aliasNotFound(r *http.Request, err error, name string) error {
	var s *said
	if !errors.Is(err, fn.ErrNotFound) || errors.As(err, &s) {
		return err
	}
	if _, ferr := h.cfg.Functions.Get(r.Context(), name); ferr != nil {
		return notFound("Function", h.arns.function(name))
	}
	return notFound("Alias", h.arns.qualified(name, r.PathValue("alias")))
}

// updateAlias serves UpdateAlias: what the body holds changes. A new
// FunctionVersion without RoutingConfig ends a split, as in Lambda;
// RoutingConfig with no weights ends it too.
func (h *Handler) updateAlias(w http.ResponseWriter, r *http.Request) {
	name, _, err := h.target(r)
	var req aliasRequest
	if err == nil {
		err = readJSON(r, &req)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	a, err := h.cfg.Functions.UpdateAlias(r.Context(), name, r.PathValue("alias"), "update", func(a *fn.Alias) error {
		if req.RevisionId != "" && req.RevisionId != strconv.Itoa(a.Revision) {
			return fmt.Errorf("the revision id %s does not match the alias's latest, %d: %w", req.RevisionId, a.Revision, fn.ErrPrecondition)
		}
		if req.FunctionVersion != nil {
			n, err := aliasVersion(*req.FunctionVersion)
			if err != nil {
				return err
			}
			if n != a.Version && req.RoutingConfig == nil {
				a.AdditionalVersionWeights = nil
			}
			a.Version = n
		}
		if req.RoutingConfig != nil {
			a.AdditionalVersionWeights = maps.Clone(req.RoutingConfig.AdditionalVersionWeights)
		}
		if req.Description != nil {
			a.Description = *req.Description
		}
		if a.Rollout.Running() && (req.FunctionVersion != nil || req.RoutingConfig != nil) {
			a.Rollout.State, a.Rollout.Reason = fn.RolloutCancelled, "the alias was moved by hand"
		}
		return nil
	})
	if err != nil {
		writeError(w, h.aliasNotFound(r, err, name))
		return
	}
	writeJSON(w, http.StatusOK, h.alias(name, a))
}

// deleteAlias serves DeleteAlias.
func (h *Handler) deleteAlias(w http.ResponseWriter, r *http.Request) {
	name, _, err := h.target(r)
	if err == nil {
		err = h.cfg.Functions.DeleteAlias(r.Context(), name, r.PathValue("alias"))
		err = h.aliasNotFound(r, err, name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listAliases serves ListAliases; FunctionVersion lists only the aliases
// that point at that version.
func (h *Handler) listAliases(w http.ResponseWriter, r *http.Request) {
	name, _, err := h.target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	limit, err := maxItems(q.Get("MaxItems"), 50, 10000)
	if err != nil {
		writeError(w, err)
		return
	}
	as, err := h.cfg.Functions.Aliases(r.Context(), name)
	if err != nil {
		writeError(w, h.orNotFound(err, name, ""))
		return
	}
	var list []*aliasConfiguration
	for _, a := range as {
		if v := q.Get("FunctionVersion"); v == "" || v == strconv.Itoa(a.Version) {
			list = append(list, h.alias(name, a))
		}
	}
	page, next, err := paginate(list, func(c *aliasConfiguration) string { return c.Name }, q.Get("Marker"), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	out := map[string]any{"Aliases": orEmpty(page)}
	if next != "" {
		out["NextMarker"] = next
	}
	writeJSON(w, http.StatusOK, out)
}
