package api

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Without an API key (the default on loopback) anything that can make the
// user's browser send a request could run code here. Two rules stop web
// pages from other sites:
//
//   - Host must name this server: a loopback name, the bound host or the
//     connection's own address, on the server's port; or one of
//     AllowedHosts. A page on a DNS name its site controls that resolves to
//     127.0.0.1 (DNS rebinding) sends its own name, and is refused, for
//     the UI and /metrics too (rebinding reads what it gets).
//   - Origin, when a browser sends one, must be this server's (its host
//     passes the Host rule) or one of AllowedOrigins.
//
// And a mutating /api call must say what its body is (checkBodyType), so
// that a cross-site form or a "simple" fetch (text/plain, no preflight)
// cannot reach a handler at all.

var (
	errForbidden = errors.New("forbidden")
	errMediaType = errors.New("unsupported media type")
)

const jsonType = "application/json"

// bodyTypes lists the body media types of the mutating routes that take
// more than JSON; every other mutating /api route takes JSON only.
var bodyTypes = map[string][]string{
	"POST /api/functions":          {"multipart/form-data"},
	"PUT /api/functions/{id}/code": archiveTypes,
	"POST /api/layers":             archiveTypes,
}

// loopbackNames are the names a local client uses for this server.
var loopbackNames = []string{"localhost", "127.0.0.1", "::1"}

// checkSite refuses a request whose Host or Origin is not this server's.
// /healthz answers any Host: it tells nothing but that the server is up.
func (s *Server) checkSite(r *http.Request) error {
	if r.URL.Path != "/healthz" {
		if err := s.checkHost(r); err != nil {
			return err
		}
	}
	origin := r.Header.Get("Origin")
	if origin == "" || s.originAllowed(r, origin) {
		return nil
	}
	return fmt.Errorf("%w: requests from origin %q are refused: it is not this server's; to allow its pages to call this server, add it to NIMBUS_ALLOWED_ORIGINS", errForbidden, origin)
}

// checkHost refuses a request whose Host is not a name of this server.
func (s *Server) checkHost(r *http.Request) error {
	if !s.hostAllowed(r, r.Host, "http") {
		return fmt.Errorf("%w: Host %q is not a name of this server (a page on another site reaching it through DNS rebinding?); to allow it, add it to NIMBUS_ALLOWED_HOSTS", errForbidden, r.Host)
	}
	return nil
}

func (s *Server) originAllowed(r *http.Request, origin string) bool {
	origin = strings.ToLower(strings.TrimSuffix(origin, "/"))
	if slices.Contains(s.cfg.AllowedOrigins, "*") || slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin) // "null" (a sandboxed or file: page) has no host
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return s.hostAllowed(r, u.Host, u.Scheme)
}

// hostAllowed reports whether hostport (from Host, or an Origin of
// scheme) names this server.
func (s *Server) hostAllowed(r *http.Request, hostport, scheme string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil { // no port: the scheme's
		host, port = hostport, "80"
		if scheme == "https" {
			port = "443"
		}
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	for _, a := range s.cfg.AllowedHosts {
		if a == "*" {
			return true
		}
		ah, ap, err := net.SplitHostPort(a)
		if err != nil {
			ah, ap = a, ""
		}
		if strings.Trim(strings.ToLower(ah), "[]") == host && (ap == "" || ap == port) {
			return true
		}
	}
	// Loopback names, and the address the client connected to, on the
	// port it connected to.
	local, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if local != nil && port != strconv.Itoa(local.Port) {
		return false
	}
	if slices.Contains(loopbackNames, host) || host == strings.ToLower(strings.Trim(s.cfg.BindHost, "[]")) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && local != nil && ip.Equal(local.IP)
}

// checkBodyType refuses a mutating /api call whose body is not of a type
// its route takes: POST, PUT and PATCH always, DELETE when it has a body.
// A call to no route passes, to get its 404 or 405.
func (s *Server) checkBodyType(r *http.Request) error {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	case http.MethodDelete:
		if r.ContentLength == 0 {
			return nil
		}
	default:
		return nil
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == jsonType {
		return nil // the usual case, without parsing
	}
	media, _, err := mime.ParseMediaType(ct)
	if err == nil && media == jsonType {
		return nil
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" || pattern == "/" {
		return nil
	}
	want := append([]string{jsonType}, bodyTypes[pattern]...)
	if err == nil && slices.Contains(want, media) {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return fmt.Errorf("%w: Content-Type %s: %s takes %s", errMediaType, ct, pattern, strings.Join(want, " or "))
}
