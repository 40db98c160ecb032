package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/auth"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/lambda"
	"github.com/nimbusfaas/nimbus/internal/store"
	fnurl "github.com/nimbusfaas/nimbus/internal/trigger/url"
)

// route is one route of the API and the scope it needs: the one table
// (routes, in server.go) every check reads. fnParam names the path value
// that names the function the route acts on, whose name must match the
// key's globs; allFunctions routes show every function at once and need a
// key that is limited to none.
type route struct {
	pattern      string
	scope        auth.Scope
	fnParam      string
	allFunctions bool
	handler      http.HandlerFunc
}

// errUnauthorized is a 401: no credentials, or wrong ones.
var errUnauthorized = errors.New("unauthorized")

// authResult is what authenticate found out about a request.
type authResult struct {
	p   *auth.Principal // nil when the request is no one
	err error           // why it is no one, when it tried to be someone
}

type authKey struct{}

// clientAddr is the address a request came from, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// credential is the key a request carries: "Authorization: Bearer", then
// X-Api-Key; else the UI's session cookie (session true).
func credential(r *http.Request) (token string, session bool) {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(got), false
	}
	if got := r.Header.Get("X-Api-Key"); got != "" {
		return got, false
	}
	if c, err := r.Cookie(auth.SessionCookie); err == nil && c.Value != "" {
		return c.Value, true
	}
	return "", false
}

// authenticate finds who r is. On a server without keys everyone is the
// anonymous admin. A client address with too many failures is refused
// before its credentials are looked at.
func (s *Server) authenticate(r *http.Request) authResult {
	if !s.keys.Required() {
		return authResult{p: auth.Admin(auth.AnonymousID)}
	}
	token, session := credential(r)
	if token == "" {
		return authResult{err: fmt.Errorf("%w: this server needs an API key: send Authorization: Bearer <key>, or sign in", errUnauthorized)}
	}
	addr := clientAddr(r)
	if blocked, wait := s.failures.Blocked(addr); blocked {
		return authResult{err: &retryError{wait: wait, msg: "too many failed authentications from " + addr}}
	}
	var (
		p   *auth.Principal
		err error
	)
	if session {
		p, err = s.keys.Session(r.Context(), token)
	} else {
		p, err = s.keys.Authenticate(r.Context(), token)
	}
	if err != nil {
		if session {
			// A session that ended is no attack (its MAC cannot be
			// guessed): it does not count against the address, whose
			// user is about to sign in again.
			return authResult{err: fmt.Errorf("%w: your session has ended (%v): sign in again", errUnauthorized, err)}
		}
		s.failures.Fail(addr)
		s.log.Warn("failed authentication", "source", addr, "key", auth.IDOf(token), "path", r.URL.Path, "err", err)
		return authResult{err: fmt.Errorf("%w: %v", errUnauthorized, err)}
	}
	return authResult{p: p}
}

// retryError is a 429 with Retry-After.
type retryError struct {
	wait time.Duration
	msg  string
}

func (e *retryError) Error() string { return e.msg }

func writeRetry(w http.ResponseWriter, e *retryError) {
	secs := int(e.wait.Seconds() + 0.999)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
	writeJSON(w, http.StatusTooManyRequests, errorBody("rate_limited", e.msg))
}

// writeAuthError answers a request that is no one, or may not.
func writeAuthError(w http.ResponseWriter, err error) {
	var re *retryError
	var denied *auth.DeniedError
	switch {
	case errors.As(err, &re):
		writeRetry(w, re)
	case errors.As(err, &denied):
		writeJSON(w, http.StatusForbidden, errorBody("forbidden", denied.Msg))
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="nimbus"`)
		writeJSON(w, http.StatusUnauthorized, errorBody("unauthorized", strings.TrimPrefix(err.Error(), errUnauthorized.Error()+": ")))
	}
}

// guard wraps a route's handler with its checks: who, which scope, which
// function, and the key's rate limit.
func (s *Server) guard(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rt.scope == auth.ScopeNone {
			rt.handler(w, r)
			return
		}
		res, _ := r.Context().Value(authKey{}).(authResult)
		if res.p == nil {
			if res.err == nil {
				res.err = fmt.Errorf("%w: no credentials", errUnauthorized)
			}
			writeAuthError(w, res.err)
			return
		}
		p := res.p
		if err := p.Check(rt.scope, ""); err != nil {
			writeAuthError(w, err)
			return
		}
		if rt.allFunctions && !p.AllFunctions() {
			writeAuthError(w, &auth.DeniedError{Msg: fmt.Sprintf("key %s is limited to some functions, and %s shows every one", p.KeyID, rt.pattern)})
			return
		}
		if rt.fnParam != "" && !p.AllFunctions() {
			if err := s.checkFunction(r.Context(), p, r.PathValue(rt.fnParam)); err != nil {
				writeAuthError(w, err)
				return
			}
		}
		if ok, wait := p.Allow(); !ok {
			writeRetry(w, &retryError{wait: wait, msg: fmt.Sprintf("key %s is over its rate limit", p.KeyID)})
			return
		}
		rt.handler(w, r)
	}
}

// checkFunction checks p's globs against the function idOrName names. A
// function that does not exist is left to the handler's 404 if its name
// would be allowed, and refused otherwise (a limited key learns nothing of
// functions outside its globs).
func (s *Server) checkFunction(ctx context.Context, p *auth.Principal, idOrName string) error {
	name := idOrName
	if f, err := s.cfg.Functions.Resolve(ctx, idOrName); err == nil {
		name = f.Name
	}
	return p.Check(auth.ScopeNone, name)
}

// principal is the request's principal (the anonymous admin when the
// route took none).
func principal(r *http.Request) *auth.Principal {
	if res, _ := r.Context().Value(authKey{}).(authResult); res.p != nil {
		return res.p
	}
	return auth.Admin(auth.AnonymousID)
}

// mayFunction checks that r's key may act on the function named name (for
// handlers whose function is not in their path: a create, a rename).
func mayFunction(r *http.Request, name string) error {
	return principal(r).Check(auth.ScopeNone, name)
}

// visible reports whether r's key may see the function named name (lists
// show only these).
func visible(r *http.Request, name string) bool { return principal(r).MayFunction(name) }

// --- sessions --------------------------------------------------------------

type sessionInfo struct {
	AuthRequired bool       `json:"authRequired"`
	SignedIn     bool       `json:"signedIn"`
	KeyID        string     `json:"keyId"`
	Name         string     `json:"name,omitempty"`
	Scopes       []string   `json:"scopes"`
	Functions    []string   `json:"functions"`
	ExpiresAt    *time.Time `json:"expiresAt,omitempty"`
}

func sessionOf(required bool, p *auth.Principal, end time.Time) sessionInfo {
	si := sessionInfo{AuthRequired: required, Scopes: []string{}, Functions: []string{}}
	if p == nil {
		return si
	}
	si.SignedIn, si.KeyID, si.Name = true, p.KeyID, p.Name
	for _, sc := range p.Scopes() {
		si.Scopes = append(si.Scopes, string(sc))
	}
	if p.Functions != nil {
		si.Functions = p.Functions
	}
	if !end.IsZero() {
		si.ExpiresAt = &end
	}
	return si
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	res, _ := r.Context().Value(authKey{}).(authResult)
	writeJSON(w, http.StatusOK, sessionOf(s.keys.Required(), res.p, time.Time{}))
}

// postSession signs in: the key in the body becomes a session cookie
// (HttpOnly: scripts never see it; SameSite=Strict: other sites' pages
// cannot send it).
func (s *Server) postSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Key string `json:"key"`
	}
	if err := s.readJSON(w, r, &body); err != nil {
		writeError(w, err)
		return
	}
	if !s.keys.Required() {
		writeJSON(w, http.StatusOK, sessionOf(false, auth.Admin(auth.AnonymousID), time.Time{}))
		return
	}
	addr := clientAddr(r)
	if blocked, wait := s.failures.Blocked(addr); blocked {
		writeRetry(w, &retryError{wait: wait, msg: "too many failed sign-ins from " + addr})
		return
	}
	p, err := s.keys.Authenticate(r.Context(), strings.TrimSpace(body.Key))
	if err != nil {
		s.failures.Fail(addr)
		s.log.Warn("failed sign-in", "source", addr, "key", auth.IDOf(body.Key), "err", err)
		writeAuthError(w, fmt.Errorf("%w: %v", errUnauthorized, err))
		return
	}
	token, end, err := s.keys.NewSession(r.Context(), p.KeyID)
	if err != nil {
		writeAuthError(w, fmt.Errorf("%w: %v", errUnauthorized, err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: token, Path: "/", Expires: end,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, sessionOf(true, p, end))
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

// --- keys ------------------------------------------------------------------

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req auth.KeyRequest
	if err := s.readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	rec, secret, err := s.keys.Create(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	v := auth.KeyView(rec)
	v.Secret = secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	recs, err := s.keys.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]*auth.KeyInfo, len(recs))
	for i, k := range recs {
		out[i] = auth.KeyView(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	rec, err := s.keys.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, auth.KeyView(rec))
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	if err := s.keys.Delete(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- secrets ---------------------------------------------------------------

type secretBody struct {
	Name        string  `json:"name"`
	Value       *string `json:"value"`
	Description *string `json:"description"`
}

func (s *Server) createSecret(w http.ResponseWriter, r *http.Request) {
	var b secretBody
	if err := s.readJSON(w, r, &b); err != nil {
		writeError(w, err)
		return
	}
	if err := nameFromPath(r, &b.Name); err != nil {
		writeError(w, err)
		return
	}
	if b.Value == nil {
		writeError(w, fn.Invalid("value", "a secret needs a value"))
		return
	}
	desc := ""
	if b.Description != nil {
		desc = *b.Description
	}
	rec, err := s.secrets.Create(r.Context(), b.Name, *b.Value, desc)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.secrets.Info(r.Context(), rec))
}

func (s *Server) updateSecret(w http.ResponseWriter, r *http.Request) {
	var b secretBody
	if err := s.readJSON(w, r, &b); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if b.Name != "" && b.Name != name {
		writeError(w, fn.Invalid("name", "a secret cannot be renamed"))
		return
	}
	if b.Value == nil {
		writeError(w, fn.Invalid("value", "PUT gives the secret a new value: send it"))
		return
	}
	rec, err := s.secrets.Update(r.Context(), name, *b.Value, b.Description)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.secrets.Info(r.Context(), rec))
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	recs, err := s.secrets.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]*auth.SecretInfo, len(recs))
	for i, rec := range recs {
		out[i] = s.secrets.Info(r.Context(), rec)
	}
	writeJSON(w, http.StatusOK, map[string]any{"secrets": out})
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request) {
	rec, err := s.secrets.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.secrets.Info(r.Context(), rec))
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request) {
	if err := s.secrets.Delete(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- audit -----------------------------------------------------------------

type auditEntry struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	KeyID  string    `json:"keyId"`
	Source string    `json:"source"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Before string    `json:"before,omitempty"`
	After  string    `json:"after,omitempty"`
}

// maxAuditPage bounds one page of the audit log.
const maxAuditPage = 1000

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := store.AuditQuery{KeyID: q.Get("keyId"), Action: q.Get("action"), Target: q.Get("target"), Before: q.Get("before"), Limit: 100}
	var err error
	if aq.Since, err = parseTimeParam(q.Get("since"), "since"); err != nil {
		writeError(w, err)
		return
	}
	if aq.Until, err = parseTimeParam(q.Get("until"), "until"); err != nil {
		writeError(w, err)
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxAuditPage {
			writeError(w, fn.Invalid("limit", fmt.Sprintf("a number from 1 to %d", maxAuditPage)))
			return
		}
		aq.Limit = n
	}
	entries, err := s.audit.List(r.Context(), aq)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]auditEntry, len(entries))
	for i, e := range entries {
		out[i] = auditEntry{ID: e.ID, Time: e.Time, KeyID: e.KeyID, Source: e.Source, Action: e.Action, Target: e.Target, Before: e.Before, After: e.After}
	}
	next := ""
	if len(entries) == aq.Limit {
		next = entries[len(entries)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "next": next})
}

// parseTimeParam reads an RFC 3339 time, or a duration meaning that long
// ago ("24h"); "" is the zero time.
func parseTimeParam(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fn.Invalid(name, fmt.Sprintf("%q is neither an RFC 3339 time nor a duration such as 24h", v))
}

// initAuth takes the configured auth, or makes it on the store.
func (s *Server) initAuth() error {
	s.keys, s.secrets, s.audit = s.cfg.Keys, s.cfg.Secrets, s.cfg.Audit
	if s.keys != nil {
		return nil
	}
	st, ok := s.cfg.Store.(store.AuthStore)
	if !ok {
		return fmt.Errorf("api: the store %T keeps no keys", s.cfg.Store)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	ring, err := auth.NewKeyring(raw)
	if err != nil {
		return err
	}
	if s.audit == nil {
		s.audit = auth.NewAudit(st, s.cfg.Logger)
	}
	s.keys = auth.NewKeys(auth.KeysConfig{Store: st, Keyring: ring, Audit: s.audit, Bootstrap: s.cfg.APIKey, Logger: s.cfg.Logger})
	s.secrets = auth.NewSecrets(st, ring, s.audit)
	return s.keys.Load(context.Background())
}

// urlKeys lets a key with the invoke scope, whose globs take the
// function, call a function URL whose auth is "key".
type urlKeys struct{ s *Server }

func (k urlKeys) Authorize(r *http.Request, f *fn.Function) *fnurl.Refusal {
	res := k.s.authenticate(r)
	var re *retryError
	switch {
	case errors.As(res.err, &re):
		return &fnurl.Refusal{Status: http.StatusTooManyRequests, Message: re.msg, RetryAfter: re.wait}
	case res.p == nil:
		return &fnurl.Refusal{Status: http.StatusUnauthorized, Message: "Unauthorized"}
	}
	if err := res.p.Check(auth.ScopeInvoke, f.Name); err != nil {
		return &fnurl.Refusal{Status: http.StatusForbidden, Message: err.Error()}
	}
	if ok, wait := res.p.Allow(); !ok {
		return &fnurl.Refusal{Status: http.StatusTooManyRequests, Message: "key " + res.p.KeyID + " is over its rate limit", RetryAfter: wait}
	}
	return nil
}

// lambdaAuth is the Lambda API's view of the keys: a key's id is its
// access key id and the whole key its secret access key; the bootstrap
// key's access key id is lambda.APIKeyID.
type lambdaAuth struct{ s *Server }

func (a lambdaAuth) Required() bool { return a.s.keys.Required() }

func (a lambdaAuth) Secret(ctx context.Context, id string) (string, bool) {
	if id == lambda.APIKeyID {
		return lambda.APIKey(a.s.cfg.APIKey).Secret(ctx, id)
	}
	return a.s.keys.Secret(ctx, id)
}

func (a lambdaAuth) principal(ctx context.Context, id string) (*auth.Principal, error) {
	if id == lambda.APIKeyID {
		id = auth.BootstrapID
	}
	p, _, err := a.s.keys.Principal(ctx, id)
	return p, err
}

func (a lambdaAuth) Authorize(ctx context.Context, id, scope, function string) (context.Context, error) {
	p, err := a.principal(ctx, id)
	if err != nil {
		return nil, &lambda.Denied{Msg: err.Error()}
	}
	if err := p.Check(auth.Scope(scope), function); err != nil {
		return nil, &lambda.Denied{Msg: err.Error()}
	}
	if ok, wait := p.Allow(); !ok {
		return nil, &lambda.Throttled{Msg: "key " + p.KeyID + " is over its rate limit", RetryAfter: wait}
	}
	return auth.WithPrincipal(ctx, p), nil
}

func (a lambdaAuth) MayFunction(ctx context.Context, name string) bool {
	p := auth.FromContext(ctx)
	return p == nil || p.MayFunction(name)
}

// RouteScope is a route and what it needs, as the route table says.
type RouteScope struct {
	Pattern string
	Scope   auth.Scope
	// Function is the path value naming the function the key's globs
	// must take; AllFunctions, that the key may be limited to none.
	Function     string
	AllFunctions bool
}

// Routes lists the route table (tests walk it; docs show it).
func (s *Server) Routes() []RouteScope {
	var out []RouteScope
	for _, rt := range s.routes() {
		out = append(out, RouteScope{Pattern: rt.pattern, Scope: rt.scope, Function: rt.fnParam, AllFunctions: rt.allFunctions})
	}
	return out
}
