package url

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Limits of a request to a function URL (Lambda's body limit).
const (
	MaxBodyBytes   = 6 << 20  // larger: 413
	MaxHeaderBytes = 16 << 10 // names and values together; larger: 431
	MaxURLBytes    = 8 << 10  // the request target; longer: 414
)

// Prefix is the path function URLs live under: /fn/{name}[/{path...}].
const Prefix = "/fn/"

// Functions resolves the function a URL names (functions.Service).
type Functions interface {
	// ResolveQualified finds what a call runs: the draft, a version or
	// an alias's choice (functions.Service).
	ResolveQualified(ctx context.Context, idOrName, qualifier string) (*fn.Function, error)
}

// Invoker runs a call (engine.Engine).
type Invoker interface {
	InvokeCall(ctx context.Context, f *fn.Function, c engine.Call) (*fn.Execution, error)
}

// Config wires a Handler.
type Config struct {
	Functions Functions
	Engine    Invoker
	// Keys decide who may call URLs that take a key (APIKey("") when
	// nil: anyone).
	Keys   Keys
	Logger *slog.Logger
}

// Handler serves function URLs.
type Handler struct {
	cfg Config
	log *slog.Logger
}

// New builds a Handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Keys == nil {
		cfg.Keys = APIKey("")
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("component", "url")}
}

// ServeHTTP serves a request under Prefix, of any method, content type
// and origin.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.RequestURI) > MaxURLBytes {
		writeMessage(w, http.StatusRequestURITooLong, "Request-URI Too Long")
		return
	}
	if headerBytes(r) > MaxHeaderBytes {
		writeMessage(w, http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large")
		return
	}
	name, rest, ok := splitPath(r.URL.Path)
	if !ok {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	// /fn/{name}:{qualifier}/… calls a version or an alias; the URL
	// settings are the draft's, whatever runs.
	base, qualifier := fn.ParseQualifier(name)
	draft, err := h.cfg.Functions.ResolveQualified(r.Context(), base, "")
	f := draft
	if err == nil && qualifier != "" {
		f, err = h.cfg.Functions.ResolveQualified(r.Context(), base, qualifier)
	}
	if err == nil {
		f = withURL(f, draft)
	}
	if err == nil && (f.URL == nil || !f.URL.Enabled) {
		err = fn.ErrNotFound // a function without a URL has no URL to find
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	cors := f.URL.CORS
	if cors != nil && isPreflight(r) {
		preflight(w, r, cors) // no credentials come with a preflight
		return
	}
	if cors != nil {
		addCORS(w, r, cors)
	}
	if no := h.authorize(r, f); no != nil {
		switch no.Status {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="nimbus"`)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(no.RetryAfter.Seconds()+0.999))))
		}
		writeMessage(w, no.Status, no.Message)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		h.writeError(w, err)
		return
	}
	q := &request{
		r: r, function: name, path: rest, rawPath: rawRest(r, name, rest), body: body,
		id: fn.NewID(), at: time.Now(), keyedCall: !f.URL.Public(),
	}
	event, err := json.Marshal(q.event())
	if err != nil {
		h.writeError(w, err)
		return
	}
	ex, err := h.cfg.Engine.InvokeCall(r.Context(), f, engine.Call{ID: q.id, Trigger: fn.TriggerHTTP, Event: event})
	if ex != nil {
		w.Header().Set("X-Nimbus-Execution-Id", ex.ID)
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	switch ex.Status {
	case fn.StatusSuccess:
	case fn.StatusTimeout:
		writeMessage(w, http.StatusGatewayTimeout, "Gateway Timeout")
		return
	default: // the handler failed: what and where is in the record, not here
		writeMessage(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	resp, err := mapResult(ex.Result)
	if err != nil {
		h.log.Info("function returned a response object that is not one", "function", f.Name, "execution", ex.ID, "error", err)
		writeMessage(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	resp.write(w, cors != nil)
}

// writeError maps the errors of a function URL to their statuses, with
// Lambda-style bodies.
func (h *Handler) writeError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	case errors.Is(err, fn.ErrNotFound):
		writeMessage(w, http.StatusNotFound, "Not Found")
	case errors.Is(err, fn.ErrConflict): // its build failed: the API's buildStatus says why
		writeMessage(w, http.StatusConflict, "Conflict: the function cannot run, the build of its code failed")
	case errors.Is(err, fn.ErrCapacity):
		w.Header().Set("Retry-After", "1")
		writeMessage(w, http.StatusTooManyRequests, "Too Many Requests")
	case errors.Is(err, fn.ErrUnavailable):
		writeMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
	default:
		h.log.Warn("function URL", "error", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
	}
}

// splitPath splits /fn/{name}[/{path...}] into the name and the path
// below it ("/" at least).
func splitPath(p string) (name, rest string, ok bool) {
	p, ok = strings.CutPrefix(p, Prefix)
	if !ok {
		return "", "", false
	}
	name, rest, _ = strings.Cut(p, "/")
	return name, "/" + rest, name != ""
}

// rawRest is rest as the client wrote it (percent-encoded), when it can
// be told.
func rawRest(r *http.Request, name, rest string) string {
	if raw, ok := strings.CutPrefix(r.URL.EscapedPath(), Prefix+name); ok {
		if raw == "" {
			return "/"
		}
		return raw
	}
	return rest
}

// headerBytes is the size of r's header: every name and value, and Host.
func headerBytes(r *http.Request) int {
	n := len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

// withURL is f with the draft's URL settings: a version keeps the
// settings it was published with, but who may call and from where is
// the function's, now.
func withURL(f, draft *fn.Function) *fn.Function {
	if f == draft {
		return f
	}
	g := *f
	g.URL = draft.URL
	return &g
}
