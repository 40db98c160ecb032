package lambda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// codeLinkTTL is how long GetFunction's Code.Location may be fetched.
const codeLinkTTL = 10 * time.Minute

// createRequest is CreateFunction's body (the fields Nimbus reads; Role,
// Tags, VpcConfig and the like are accepted and ignored).
type createRequest struct {
	FunctionName string
	Runtime      string
	Handler      string
	Code         codeRequest
	Description  string
	Timeout      int // seconds
	MemorySize   int // MB
	Publish      bool
	Environment  *environment
	Layers       []string
	PackageType  string
}

type codeRequest struct {
	ZipFile                          []byte
	S3Bucket, S3Key, S3ObjectVersion string
	ImageUri                         string
}

// zip is the code a request brings: Nimbus takes it inline (ZipFile),
// not from S3 or an image.
func (c *codeRequest) zip() ([]byte, error) {
	switch {
	case c.ImageUri != "":
		return nil, invalidParameter("Nimbus runs zip packages, not container images: send Code.ZipFile")
	case c.S3Bucket != "" || c.S3Key != "":
		return nil, invalidParameter("Nimbus has no S3: send the code inline as Code.ZipFile (fileb://function.zip with the aws CLI)")
	case len(c.ZipFile) == 0:
		return nil, invalidParameter("Code.ZipFile is required")
	}
	return c.ZipFile, nil
}

// checkRuntime says, in Lambda's terms, why a runtime cannot be used
// (nil when it can: the functions service checks it again).
func checkRuntime(s string) error {
	l := strings.ToLower(strings.TrimSpace(s))
	if _, ok := runtime.Find(l); ok || l == "" {
		return nil
	}
	if strings.HasPrefix(l, "provided") {
		return invalidParameter(fmt.Sprintf("the runtime %q is not available on this server yet: it runs Python (python3.x) and Node.js (nodejs18.x-nodejs22.x) functions", s))
	}
	return invalidParameter(fmt.Sprintf("the runtime parameter of %s is not supported by Nimbus: use python3.x or nodejs18.x-nodejs22.x", s))
}

// layerIDs maps the layers a request names to Nimbus layer ids.
func (h *Handler) layerIDs(arns []string) ([]string, error) {
	ids := make([]string, 0, len(arns))
	for _, a := range arns {
		id, err := h.arns.parseLayer(a)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// createFunction serves CreateFunction.
func (h *Handler) createFunction(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	f, err := h.newFunction(&req)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, err := h.authorize(r, "deploy", f.Name) // the path named none
	if err != nil {
		writeError(w, err)
		return
	}
	r = r.WithContext(ctx)
	if f, err = h.cfg.Functions.Create(r.Context(), f); err != nil {
		if errors.Is(err, fn.ErrConflict) {
			err = conflict("Function already exist: " + req.FunctionName)
		}
		writeError(w, err)
		return
	}
	c, err := h.publishIf(r.Context(), req.Publish, f, req.Description)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// newFunction is the function CreateFunction asks for.
func (h *Handler) newFunction(req *createRequest) (*fn.Function, error) {
	if req.PackageType != "" && req.PackageType != "Zip" {
		return nil, invalidParameter("Nimbus runs zip packages (PackageType Zip), not container images")
	}
	if err := checkRuntime(req.Runtime); err != nil {
		return nil, err
	}
	name, qualifier, err := h.arns.parseFunction(req.FunctionName)
	if err != nil {
		return nil, err
	}
	if qualifier != "" {
		return nil, invalidParameter("a function is created as $LATEST: FunctionName takes no qualifier")
	}
	zip, err := req.Code.zip()
	if err != nil {
		return nil, err
	}
	layers, err := h.layerIDs(req.Layers)
	if err != nil {
		return nil, err
	}
	f := &fn.Function{Name: name, Runtime: req.Runtime, Handler: req.Handler, ZipFile: zip, Layers: layers,
		Timeout: req.Timeout * 1000, Memory: req.MemorySize}
	if req.Environment != nil {
		f.Env = req.Environment.Variables
	}
	return f, nil
}

// publishIf publishes the draft f when publish is set, and returns the
// configuration of what it made: the version, or the draft.
func (h *Handler) publishIf(ctx context.Context, publish bool, f *fn.Function, description string) (*functionConfiguration, error) {
	if !publish {
		return h.configuration(f, ""), nil
	}
	v, _, err := h.cfg.Functions.Publish(ctx, f.ID, description, "")
	if err != nil {
		return nil, err
	}
	return h.configuration(v.Function, v.Description), nil
}

// lookupTarget is lookup of the function (and qualifier) r's path names.
func (h *Handler) lookupTarget(r *http.Request) (f *fn.Function, description string, err error) {
	name, qualifier, err := h.target(r)
	if err != nil {
		return nil, "", err
	}
	return h.lookup(r.Context(), name, qualifier)
}

// lookup finds what name and qualifier show: the draft, a version, or
// the version an alias points at (its main one).
func (h *Handler) lookup(ctx context.Context, name, qualifier string) (f *fn.Function, description string, err error) {
	switch n, nerr := strconv.Atoi(qualifier); {
	case qualifier == "" || qualifier == fn.Latest:
		f, err = h.cfg.Functions.Get(ctx, name)
	case nerr == nil:
		var v *fn.Version
		if v, err = h.cfg.Functions.Version(ctx, name, n); err == nil {
			f, description = v.Function, v.Description
		}
	default:
		var a *fn.Alias
		if a, err = h.cfg.Functions.GetAlias(ctx, name, qualifier); err == nil {
			var v *fn.Version
			if v, err = h.cfg.Functions.Version(ctx, name, a.Version); err == nil {
				f, description = v.Function, v.Description
			}
		}
	}
	return f, description, h.orNotFound(err, name, qualifier)
}

// orNotFound says what a request named was not found, as Lambda says it.
func (h *Handler) orNotFound(err error, name, qualifier string) error {
	var s *said
	if errors.Is(err, fn.ErrNotFound) && !errors.As(err, &s) {
		return notFound("Function", h.arns.qualified(name, qualifier))
	}
	return err
}

// getConfiguration serves GetFunctionConfiguration.
func (h *Handler) getConfiguration(w http.ResponseWriter, r *http.Request) {
	f, desc, err := h.lookupTarget(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.configuration(f, desc))
}

// getFunction serves GetFunction: the configuration, and a link to the
// code's zip (presigned when the server has credentials).
func (h *Handler) getFunction(w http.ResponseWriter, r *http.Request) {
	f, desc, err := h.lookupTarget(r)
	if err != nil {
		writeError(w, err)
		return
	}
	query := url.Values{}
	if f.Version > 0 {
		query.Set("Qualifier", f.VersionName())
	}
	loc, err := h.presign(r, "/2015-03-31/functions/"+f.Name+"/code", query, codeLinkTTL)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Configuration": h.configuration(f, desc),
		"Code":          map[string]string{"RepositoryType": "Nimbus", "Location": loc},
		"Tags":          map[string]string{},
	})
}

// downloadCode serves GET …/functions/{name}/code, Nimbus's own: the
// code's zip, where GetFunction's Code.Location points.
func (h *Handler) downloadCode(w http.ResponseWriter, r *http.Request) {
	f, _, err := h.lookupTarget(r)
	if err != nil {
		writeError(w, err)
		return
	}
	zip, size, err := h.cfg.Functions.OpenCode(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	defer zip.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, zip); err != nil {
		h.log.Warn("code download cut", "function", f.Name, "error", err)
		panic(http.ErrAbortHandler) // the client sees it cut, never a whole-looking wrong file
	}
}

// listFunctions serves ListFunctions, by name, a page of MaxItems
// (50 by default) after Marker; FunctionVersion=ALL lists every
// published version after its function's $LATEST.
func (h *Handler) listFunctions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := maxItems(q.Get("MaxItems"), 50, 10000)
	if err != nil {
		writeError(w, err)
		return
	}
	all := q.Get("FunctionVersion")
	if all != "" && all != "ALL" {
		writeError(w, invalidParameter("FunctionVersion must be ALL"))
		return
	}
	fns, err := h.cfg.Functions.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	var list []*functionConfiguration
	for _, f := range fns {
		if !h.mayFunction(r, f.Name) {
			continue
		}
		list = append(list, h.configuration(f, ""))
		if all == "" {
			continue
		}
		_, vs, err := h.cfg.Functions.Versions(r.Context(), f.ID)
		if err != nil && !errors.Is(err, fn.ErrNotFound) { // deleted since
			writeError(w, err)
			return
		}
		for _, v := range vs {
			list = append(list, h.configuration(v.Function, v.Description))
		}
	}
	page, next, err := paginate(list, func(c *functionConfiguration) string { return c.FunctionArn }, q.Get("Marker"), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	out := map[string]any{"Functions": orEmpty(page)}
	if next != "" {
		out["NextMarker"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// maxItems reads a MaxItems parameter.
func maxItems(s string, def, most int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, invalidParameter(fmt.Sprintf("MaxItems must be a whole number from 1 to %d", most))
	}
	return n, nil
}

// paginate is the page of at most limit items after the one whose key
// is marker, and the marker of the next page ("" at the end).
func paginate[T any](items []T, key func(T) string, marker string, limit int) ([]T, string, error) {
	start := 0
	if marker != "" {
		i := slices.IndexFunc(items, func(t T) bool { return key(t) == marker })
		if i < 0 {
			return nil, "", invalidParameter(fmt.Sprintf("Marker %q names nothing listed: start again without one", marker))
		}
		start = i + 1
	}
	end := min(start+limit, len(items))
	if end < len(items) {
		return items[start:end], key(items[end-1]), nil
	}
	return items[start:end], "", nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// changeRequest is UpdateFunctionCode's and UpdateFunctionConfiguration's
// body: what it holds changes, the rest stays.
type changeRequest struct {
	codeRequest
	DryRun      bool
	Publish     bool
	RevisionId  string
	Handler     *string
	Runtime     *string
	Environment *environment
	Timeout     *int
	MemorySize  *int
	Layers      *[]string
	Description string
}

// updateCode serves UpdateFunctionCode.
func (h *Handler) updateCode(w http.ResponseWriter, r *http.Request) {
	h.update(w, r, func(req *changeRequest, f *fn.Function) error {
		if req.DryRun {
			// Nimbus cannot check code without storing it: better refused
			// than applied.
			return invalidParameter("DryRun is not supported by Nimbus: send the code without it")
		}
		zip, err := req.zip()
		if err != nil {
			return err
		}
		f.Code, f.Files, f.ZipFile = "", nil, zip
		return nil
	})
}

// updateConfiguration serves UpdateFunctionConfiguration. Environment,
// when sent, replaces every variable; Layers, when sent, every layer.
func (h *Handler) updateConfiguration(w http.ResponseWriter, r *http.Request) {
	h.update(w, r, func(req *changeRequest, f *fn.Function) error {
		if req.Runtime != nil {
			if err := checkRuntime(*req.Runtime); err != nil {
				return err
			}
			f.Runtime = *req.Runtime
		}
		if req.Handler != nil {
			f.Handler = *req.Handler
		}
		if req.Environment != nil {
			f.Env = req.Environment.Variables
		}
		if req.Timeout != nil {
			f.Timeout = *req.Timeout * 1000
		}
		if req.MemorySize != nil {
			f.Memory = *req.MemorySize
		}
		if req.Layers != nil {
			ids, err := h.layerIDs(*req.Layers)
			if err != nil {
				return err
			}
			f.Layers = ids
		}
		return nil
	})
}

// update changes the draft of the function r names by change, after
// checking RevisionId, and publishes it when asked.
func (h *Handler) update(w http.ResponseWriter, r *http.Request, change func(*changeRequest, *fn.Function) error) {
	name, qualifier, err := h.target(r)
	if err == nil && qualifier != "" && qualifier != fn.Latest {
		err = invalidParameter("only $LATEST can be changed: versions never change, and aliases are changed by UpdateAlias")
	}
	var req changeRequest
	if err == nil {
		err = readJSON(r, &req)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	f, _, err := h.cfg.Functions.Update(r.Context(), name, func(f *fn.Function) error {
		if req.RevisionId != "" && req.RevisionId != strconv.Itoa(f.Revision) {
			return fmt.Errorf("the revision id %s does not match the function's latest, %d: read it again: %w", req.RevisionId, f.Revision, fn.ErrPrecondition)
		}
		return change(&req, f)
	})
	if err != nil {
		writeError(w, h.orNotFound(err, name, ""))
		return
	}
	c, err := h.publishIf(r.Context(), req.Publish, f, req.Description)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// deleteFunction serves DeleteFunction: the function, or with a version
// as qualifier that version.
func (h *Handler) deleteFunction(w http.ResponseWriter, r *http.Request) {
	name, qualifier, err := h.target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	switch n, nerr := strconv.Atoi(qualifier); {
	case qualifier == "":
		var f *fn.Function
		if f, err = h.cfg.Functions.Delete(r.Context(), name); err == nil && h.cfg.Queue != nil {
			h.cfg.Queue.Forget(context.WithoutCancel(r.Context()), f.ID)
		}
	case nerr == nil:
		err = h.cfg.Functions.DeleteVersion(r.Context(), name, n)
	case qualifier == fn.Latest:
		err = invalidParameter("$LATEST cannot be deleted without deleting the function: leave out the qualifier")
	default:
		err = invalidParameter("an alias is deleted by DeleteAlias, not DeleteFunction")
	}
	if err != nil {
		writeError(w, h.orNotFound(err, name, qualifier))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
