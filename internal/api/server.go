package api

import (
	"bytes"
	"context"
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

	"github.com/nimbusfaas/nimbus/internal/auth"
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
	// APIKey is the bootstrap admin key (NIMBUS_API_KEY), for a server
	// whose Keys are made by New.
	APIKey string
	// Keys, Secrets and Audit are the server's auth; when Keys is nil,
	// New makes keys and secrets (and Audit, if nil) on Store, which must
	// then be a store.AuthStore, with APIKey and a keyring that lives as
	// long as the process (tests).
	Keys    *auth.Keys
	Secrets *auth.Secrets
	Audit   *auth.Audit
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

	keys     *auth.Keys
	secrets  *auth.Secrets
	audit    *auth.Audit
	failures auth.Failures

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
	if err := s.initAuth(); err != nil {
		panic(err) // a programming error: the wiring gave no auth store
	}
	s.urls = fnurl.New(fnurl.Config{Functions: cfg.Functions, Engine: cfg.Engine, Keys: urlKeys{s}, Logger: cfg.Logger})
	lcfg := lambda.Config{Functions: cfg.Functions, Engine: cfg.Engine, Region: cfg.LambdaRegion, Account: cfg.LambdaAccount,
		MaxBodyBytes: cfg.MaxBodyBytes, Logger: cfg.Logger}
	lcfg.Credentials, lcfg.Authorizer = lambdaAuth{s}, lambdaAuth{s}
	if cfg.Async != nil {
		lcfg.Queue = cfg.Async
	}
	s.lambda = lambda.New(lcfg)
	for _, rt := range s.routes() {
		s.mux.HandleFunc(rt.pattern, s.guard(rt))
	}
	s.mux.HandleFunc("/", s.fallback) // what no route above matches
	return s
}

// routes is every route of the API with the scope it needs: the one
// table auth reads (see route). deploy includes read, admin everything.
func (s *Server) routes() []route {
	const (
		none, read, deploy, invoke, admin = auth.ScopeNone, auth.ScopeRead, auth.ScopeDeploy, auth.ScopeInvoke, auth.ScopeAdmin
	)
	rs := []route{
		{pattern: "GET /healthz", scope: none, handler: s.health},
		{pattern: "GET /api/session", scope: none, handler: s.getSession},
		{pattern: "POST /api/session", scope: none, handler: s.postSession},
		{pattern: "DELETE /api/session", scope: none, handler: s.deleteSession},

		{pattern: "GET /api/functions", scope: read, handler: s.listFunctions},
		{pattern: "POST /api/functions", scope: deploy, handler: s.createFunction},
		{pattern: "GET /api/functions/{id}", scope: read, fnParam: "id", handler: s.getFunction},
		{pattern: "PUT /api/functions/{id}", scope: deploy, fnParam: "id", handler: s.updateFunction},
		{pattern: "DELETE /api/functions/{id}", scope: deploy, fnParam: "id", handler: s.deleteFunction},
		{pattern: "GET /api/functions/{id}/code", scope: read, fnParam: "id", handler: s.getCode},
		{pattern: "PUT /api/functions/{id}/code", scope: deploy, fnParam: "id", handler: s.putCode},
		{pattern: "POST /api/layers", scope: deploy, handler: s.postLayer},
		{pattern: "GET /api/layers/{id}", scope: read, handler: s.getLayer},
		{pattern: "POST /api/functions/{id}/versions", scope: deploy, fnParam: "id", handler: s.publish},
		{pattern: "GET /api/functions/{id}/versions", scope: read, fnParam: "id", handler: s.listVersions},
		{pattern: "GET /api/functions/{id}/versions/{n}", scope: read, fnParam: "id", handler: s.getVersion},
		{pattern: "GET /api/functions/{id}/versions/{n}/code", scope: read, fnParam: "id", handler: s.getVersionCode},
		{pattern: "DELETE /api/functions/{id}/versions/{n}", scope: deploy, fnParam: "id", handler: s.deleteVersion},
		{pattern: "GET /api/functions/{id}/aliases", scope: read, fnParam: "id", handler: s.listAliases},
		{pattern: "POST /api/functions/{id}/aliases", scope: deploy, fnParam: "id", handler: s.createAlias},
		{pattern: "GET /api/functions/{id}/aliases/{name}", scope: read, fnParam: "id", handler: s.getAlias},
		{pattern: "POST /api/functions/{id}/aliases/{name}", scope: deploy, fnParam: "id", handler: s.createAlias},
		{pattern: "PUT /api/functions/{id}/aliases/{name}", scope: deploy, fnParam: "id", handler: s.updateAlias},
		{pattern: "DELETE /api/functions/{id}/aliases/{name}", scope: deploy, fnParam: "id", handler: s.deleteAlias},
		{pattern: "POST /api/functions/{id}/aliases/{name}/rollback", scope: deploy, fnParam: "id", handler: s.rollbackAlias},
		{pattern: "GET /api/functions/{id}/async", scope: read, fnParam: "id", handler: s.asyncDepth},
		{pattern: "GET /api/functions/{id}/dead-letters", scope: read, fnParam: "id", handler: s.deadLetters},
		{pattern: "DELETE /api/functions/{id}/dead-letters", scope: deploy, fnParam: "id", handler: s.deleteDeadLetter},
		{pattern: "GET /api/functions/{id}/dead-letters/{executionId}", scope: read, fnParam: "id", handler: s.deadLetter},
		{pattern: "DELETE /api/functions/{id}/dead-letters/{executionId}", scope: deploy, fnParam: "id", handler: s.deleteDeadLetter},
		{pattern: "POST /api/functions/{id}/dead-letters/{executionId}/replay", scope: invoke, fnParam: "id", handler: s.replayDeadLetter},
		{pattern: "POST /api/executions/{functionId}", scope: invoke, fnParam: "functionId", handler: s.invoke},
		{pattern: "GET /api/executions/{functionId}/history", scope: read, fnParam: "functionId", handler: s.history},
		{pattern: "GET /api/executions/{functionId}/{executionId}", scope: read, fnParam: "functionId", handler: s.getExecution},
		{pattern: "POST /api/executions/{functionId}/{executionId}/replay", scope: invoke, fnParam: "functionId", handler: s.replay},
		{pattern: "GET /api/metrics/system", scope: read, handler: s.systemMetrics},
		{pattern: "GET /api/metrics/functions", scope: read, handler: s.allFunctionMetrics},
		{pattern: "GET /api/metrics/functions/{functionId}", scope: read, fnParam: "functionId", handler: s.functionMetrics},
		{pattern: "GET /api/events", scope: read, handler: s.events},
		{pattern: "GET /api/system", scope: read, handler: s.system},
		{pattern: "GET /api/runtimes", scope: read, handler: s.runtimes},
		{pattern: "GET /api/schema/spec", scope: read, handler: s.schemaSpec},

		{pattern: "POST /api/keys", scope: admin, handler: s.createKey},
		{pattern: "GET /api/keys", scope: admin, handler: s.listKeys},
		{pattern: "GET /api/keys/{id}", scope: admin, handler: s.getKey},
		{pattern: "DELETE /api/keys/{id}", scope: admin, handler: s.deleteKey},
		{pattern: "POST /api/secrets", scope: admin, handler: s.createSecret},
		{pattern: "GET /api/secrets", scope: admin, handler: s.listSecrets},
		{pattern: "POST /api/secrets/{name}", scope: admin, handler: s.createSecret},
		{pattern: "GET /api/secrets/{name}", scope: admin, handler: s.getSecret},
		{pattern: "PUT /api/secrets/{name}", scope: admin, handler: s.updateSecret},
		{pattern: "DELETE /api/secrets/{name}", scope: admin, handler: s.deleteSecret},
		{pattern: "GET /api/audit", scope: admin, handler: s.listAudit},
	}
	if s.cfg.Gatherer != nil {
		rs = append(rs, route{pattern: "GET /metrics", scope: read, allFunctions: true, handler: promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP})
	}
	return rs
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
		ctx := auth.WithSource(r.Context(), clientAddr(r))
		if !s.keys.Required() {
			ctx = auth.WithPrincipal(ctx, auth.Admin(auth.AnonymousID))
		}
		s.lambda.ServeHTTP(w, r.WithContext(ctx))
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
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" {
		r = s.withAuth(r) // the UI's files need no one
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

// withAuth is r carrying who it is (authResult), for the routes' guards,
// and its principal and address, for the audit log.
func (s *Server) withAuth(r *http.Request) *http.Request {
	if r.URL.Path == "/api/events" && r.Header.Get("Authorization") == "" {
		// EventSource cannot send headers: a client outside the UI
		// (which has its session cookie) may put its key in the query.
		if k := r.URL.Query().Get("key"); k != "" {
			r.Header.Set("Authorization", "Bearer "+k)
		}
	}
	res := s.authenticate(r)
	ctx := context.WithValue(r.Context(), authKey{}, res)
	if res.p != nil {
		ctx = auth.WithPrincipal(ctx, res.p)
	}
	return r.WithContext(auth.WithSource(ctx, clientAddr(r)))
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
		denied *auth.DeniedError
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
	case errors.Is(err, errForbidden), errors.As(err, &denied):
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
