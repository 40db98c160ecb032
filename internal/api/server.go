package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/functions"
	"github.com/nimbusfaas/nimbus/internal/lambda"
	"github.com/nimbusfaas/nimbus/internal/metrics"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/trigger/async"
	fnurl "github.com/nimbusfaas/nimbus/internal/trigger/url"
)

// Config wires a Server.
type Config struct {
	Store     store.Store
	Engine    *engine.Engine
	Functions *functions.Service
	Metrics   *metrics.Recorder
	APIKey    string
	// BindHost is the address the server listens on. Requests may name it,
	// or a loopback name, on the server's port; AllowedHosts and
	// AllowedOrigins widen who may call (see origin.go).
	BindHost       string
	AllowedHosts   []string
	AllowedOrigins []string
	MaxBodyBytes   int64
	Logger         *slog.Logger
	// System adds host facts (drivers, interpreters) to GET /api/system.
	System func(ctx context.Context) any
	// Interpreters say which runtimes GET /api/runtimes shows available.
	Interpreters runtime.Interpreters
	// Gatherer, when set, is served at GET /metrics in Prometheus's text
	// format (with the API key when one is set).
	Gatherer prometheus.Gatherer

	// The live event stream, GET /api/events. Zero values take the
	// defaults: 256 events buffered per client, a snapshot every second, a
	// heartbeat every 15 s, and a client that takes 30 s over one write is
	// disconnected.
	EventBuffer        int
	SnapshotInterval   time.Duration
	HeartbeatInterval  time.Duration
	StreamWriteTimeout time.Duration
	// ProcRoot is where host figures are read ("" for /proc).
	ProcRoot string
	// UI, when set, serves the web interface at / (outside /api, no key).
	UI UI
	// Async queues async calls; nil: they answer 503.
	Async *async.Queue
	// LambdaRegion and LambdaAccount are the region and account id of
	// the Lambda API's ARNs (lambda.DefaultRegion, lambda.DefaultAccount
	// when empty).
	LambdaRegion, LambdaAccount string
}

// UI is the web interface: it answers the paths it has; the server answers
// the others with 404.
type UI interface {
	http.Handler
	Has(path string) bool
}

// Server serves the HTTP API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	started time.Time
	host    *metrics.Host
	urls    *fnurl.Handler  // function URLs, under /fn/
	lambda  *lambda.Handler // the Lambda API, under lambda.Prefixes

	closing   chan struct{} // closed by CloseStreams
	closeOnce sync.Once
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 6 << 20
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = defaultEventBuffer
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = defaultSnapshotInterval
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = defaultHeartbeatInterval
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = defaultStreamWriteTimeout
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "api"),
		mux:     http.NewServeMux(),
		started: time.Now(),
		host:    metrics.NewHost(cfg.ProcRoot),
		closing: make(chan struct{}),
	}
	s.urls = fnurl.New(fnurl.Config{Functions: cfg.Functions, Engine: cfg.Engine, Keys: fnurl.APIKey(cfg.APIKey), Logger: cfg.Logger})
	lcfg := lambda.Config{Functions: cfg.Functions, Engine: cfg.Engine, Region: cfg.LambdaRegion, Account: cfg.LambdaAccount,
		MaxBodyBytes: cfg.MaxBodyBytes, Logger: cfg.Logger}
	if cfg.APIKey != "" {
		lcfg.Credentials = lambda.APIKey(cfg.APIKey)
	}
	if cfg.Async != nil {
		lcfg.Queue = cfg.Async
	}
	s.lambda = lambda.New(lcfg)
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.HandleFunc("GET /api/functions", s.listFunctions)
	s.mux.HandleFunc("POST /api/functions", s.createFunction)
	s.mux.HandleFunc("GET /api/functions/{id}", s.getFunction)
	s.mux.HandleFunc("PUT /api/functions/{id}", s.updateFunction)
	s.mux.HandleFunc("DELETE /api/functions/{id}", s.deleteFunction)
	s.mux.HandleFunc("GET /api/functions/{id}/code", s.getCode)
	s.mux.HandleFunc("PUT /api/functions/{id}/code", s.putCode)
	s.mux.HandleFunc("POST /api/layers", s.postLayer)
	s.mux.HandleFunc("GET /api/layers/{id}", s.getLayer)
	s.mux.HandleFunc("POST /api/functions/{id}/versions", s.publish)
	s.mux.HandleFunc("GET /api/functions/{id}/versions", s.listVersions)
	s.mux.HandleFunc("GET /api/functions/{id}/versions/{n}", s.getVersion)
	s.mux.HandleFunc("GET /api/functions/{id}/versions/{n}/code", s.getVersionCode)
	s.mux.HandleFunc("DELETE /api/functions/{id}/versions/{n}", s.deleteVersion)
	s.mux.HandleFunc("GET /api/functions/{id}/aliases", s.listAliases)
	s.mux.HandleFunc("POST /api/functions/{id}/aliases", s.createAlias)
	s.mux.HandleFunc("GET /api/functions/{id}/aliases/{name}", s.getAlias)
	s.mux.HandleFunc("POST /api/functions/{id}/aliases/{name}", s.createAlias)
	s.mux.HandleFunc("PUT /api/functions/{id}/aliases/{name}", s.updateAlias)
	s.mux.HandleFunc("DELETE /api/functions/{id}/aliases/{name}", s.deleteAlias)
	s.mux.HandleFunc("POST /api/functions/{id}/aliases/{name}/rollback", s.rollbackAlias)
	s.mux.HandleFunc("GET /api/functions/{id}/async", s.asyncDepth)
	s.mux.HandleFunc("GET /api/functions/{id}/dead-letters", s.deadLetters)
	s.mux.HandleFunc("DELETE /api/functions/{id}/dead-letters", s.deleteDeadLetter)
	s.mux.HandleFunc("GET /api/functions/{id}/dead-letters/{executionId}", s.deadLetter)
	s.mux.HandleFunc("DELETE /api/functions/{id}/dead-letters/{executionId}", s.deleteDeadLetter)
	s.mux.HandleFunc("POST /api/functions/{id}/dead-letters/{executionId}/replay", s.replayDeadLetter)
	s.mux.HandleFunc("POST /api/executions/{functionId}", s.invoke)
	s.mux.HandleFunc("GET /api/executions/{functionId}/history", s.history)
	s.mux.HandleFunc("GET /api/executions/{functionId}/{executionId}", s.getExecution)
	s.mux.HandleFunc("POST /api/executions/{functionId}/{executionId}/replay", s.replay)
	s.mux.HandleFunc("GET /api/metrics/system", s.systemMetrics)
	s.mux.HandleFunc("GET /api/metrics/functions", s.allFunctionMetrics)
	s.mux.HandleFunc("GET /api/metrics/functions/{functionId}", s.functionMetrics)
	s.mux.HandleFunc("GET /api/events", s.events)
	if cfg.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	s.mux.HandleFunc("GET /api/system", s.system)
	s.mux.HandleFunc("GET /api/runtimes", s.runtimes)
	s.mux.HandleFunc("GET /api/schema/spec", s.schemaSpec)
	s.mux.HandleFunc("/", s.fallback) // what no route above matches
	return s
}

var (
	errNoRoute   = errors.New("no such route")
	errNoMethod  = errors.New("method not allowed")
	routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
)

// CloseStreams ends every live event stream, so that a graceful shutdown
// does not wait for clients that never hang up.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// ServeHTTP refuses requests from other sites (see origin.go),
// authenticates /api calls and /metrics, and routes them. Function URLs
// (/fn/) only have their Host checked: they take any origin (their CORS
// settings speak to browsers), any content type, and decide themselves
// who may call them. The Lambda API has Host and Origin checked, then
// checks its callers itself (SigV4 with the key; without one, its own
// cross-site rule), and answers in Lambda's error shape.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if lambda.Serves(r.URL.Path) {
		if err := s.checkSite(r); err != nil {
			lambda.WriteForbidden(w, err)
			return
		}
		s.lambda.ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, fnurl.Prefix) {
		if err := s.checkHost(r); err != nil {
			writeError(w, err)
			return
		}
		s.urls.ServeHTTP(w, r)
		return
	}
	if err := s.checkSite(r); err != nil {
		writeError(w, err)
		return
	}
	needsKey := strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics"
	if s.cfg.APIKey != "" && needsKey && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="nimbus"`)
		writeJSON(w, http.StatusUnauthorized, errorBody("unauthorized", "missing or wrong API key: send Authorization: Bearer <NIMBUS_API_KEY>"))
		return
	}
	if err := s.checkBodyType(r); err != nil {
		writeError(w, err)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// fallback answers what no route matches. A path that has routes for
// other methods gets 405 with Allow; a path outside /api that the UI has
// goes to the UI; anything else gets 404, as JSON unless a browser asked
// for a page.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowed(r); allow != "" {
		w.Header().Set("Allow", allow)
		writeError(w, fmt.Errorf("%s %s: %w (allowed: %s)", r.Method, r.URL.Path, errNoMethod, allow))
		return
	}
	isAPI := strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api"
	if !isAPI && s.cfg.UI != nil && s.cfg.UI.Has(r.URL.Path) {
		s.cfg.UI.ServeHTTP(w, r)
		return
	}
	if !isAPI && prefersHTML(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, notFoundPage)
		return
	}
	writeError(w, fmt.Errorf("%s: %w", r.URL.Path, errNoRoute))
}

const notFoundPage = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>Not found · Nimbus</title>
<p>There is nothing at this address. <a href="/">Open Nimbus</a>.</p>
</html>
`

// allowed lists the methods that have a route for r's path, or "".
func (s *Server) allowed(r *http.Request) string {
	var allow []string
	for _, m := range routeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

// prefersHTML reports whether an Accept header ranks text/html above JSON,
// as browsers' page loads do; curl's */* and API clients' JSON do not.
func prefersHTML(accept string) bool {
	html, json := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		media, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(media)) {
		case "text/html", "application/xhtml+xml":
			html = max(html, q)
		case "application/json":
			json = max(json, q)
		}
	}
	return html > 0 && html >= json
}

// eventsKeyCookie may carry the API key for /api/events, as may ?key=:
// browsers' EventSource cannot send an Authorization header.
const eventsKeyCookie = "nimbus_key"

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && r.URL.Path == "/api/events" {
		if got = r.URL.Query().Get("key"); got == "" {
			if c, err := r.Cookie(eventsKeyCookie); err == nil {
				got = c.Value
			}
		}
		ok = got != ""
	}
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) == 1
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "uptimeSeconds": int(time.Since(s.started).Seconds())})
}

func (s *Server) system(w http.ResponseWriter, r *http.Request) {
	var facts any
	if s.cfg.System != nil {
		facts = s.cfg.System(r.Context())
	}
	writeJSON(w, http.StatusOK, facts)
}

// writeJSON writes v as the JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func errorBody(code, msg string) map[string]apiError {
	return map[string]apiError{"error": {Code: code, Message: msg}}
}

// writeError maps an error to its HTTP status: the one place that does.
func writeError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "internal"
	var (
		field  *fn.FieldError
		tooBig *http.MaxBytesError
		body   = apiError{Message: err.Error()}
	)
	switch {
	case errors.As(err, &tooBig) || errors.Is(err, fn.ErrTooLarge):
		status, code = http.StatusRequestEntityTooLarge, "too_large"
	case errors.As(err, &field):
		status, code = http.StatusBadRequest, "invalid"
		body.Field = field.Field
	case errors.Is(err, fn.ErrInvalid):
		status, code = http.StatusBadRequest, "invalid"
	case errors.Is(err, fn.ErrNotFound), errors.Is(err, errNoRoute):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, errNoMethod):
		status, code = http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, errForbidden):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, errMediaType):
		status, code = http.StatusUnsupportedMediaType, "unsupported_media_type"
	case errors.Is(err, fn.ErrBuildFailed):
		status, code = http.StatusUnprocessableEntity, "build_failed"
	case errors.Is(err, fn.ErrPrecondition):
		status, code = http.StatusPreconditionFailed, "precondition_failed"
	case errors.Is(err, fn.ErrConflict):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, fn.ErrCapacity):
		status, code = http.StatusTooManyRequests, "over_capacity"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, fn.ErrUnavailable):
		status, code = http.StatusServiceUnavailable, "unavailable"
	}
	if status >= 500 { // the server's own trouble: say what, not where on the host
		body.Message = fn.ScrubPaths(body.Message)
	}
	body.Code = code
	writeJSON(w, status, map[string]apiError{"error": body})
}

// readJSON decodes a request body of at most the configured size and
// MaxJSONDepth into v, rejecting unknown fields.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return err
	}
	if err := checkDepth(body); err != nil {
		return err
	}
	if f, ok := v.(*fn.Function); ok {
		// A function decodes itself; the decoder's strictness would not
		// reach its fields.
		if err := fn.UnmarshalStrict(body, f); err != nil {
			if errors.Is(err, fn.ErrInvalid) {
				return err // a bad env: already names its field
			}
			return fn.Invalid("body", "not valid JSON for this request: "+strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fn.Invalid("body", "not valid JSON for this request: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return fn.Invalid("body", "has trailing data after the JSON value")
	}
	return nil
}
