package fn

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// URL auth types: who may call a function's URL.
const (
	// URLAuthKey takes a key that may invoke the function (today the
	// server's API key; scoped invoke keys later). The default.
	URLAuthKey = "key"
	// URLAuthNone makes the function's URL public, even on a server that
	// has an API key.
	URLAuthNone = "none"
)

// TriggerHTTP is the Trigger of an execution that came in through a
// function URL. Executions through POST /api/executions have none.
const TriggerHTTP = "http"

// Limits of a function URL's CORS settings (Lambda's).
const (
	MaxCORSOrigins = 100
	MaxCORSHeaders = 100
	MaxCORSMaxAge  = 86400 // seconds
)

// URLConfig is a function's URL: ANY /fn/{name}[/{path...}] invokes it
// with an HTTP API payload v2.0 event when Enabled.
type URLConfig struct {
	Enabled bool `json:"enabled"`
	// Auth is URLAuthKey (the default) or URLAuthNone.
	Auth string `json:"auth,omitempty"`
	// CORS, when set, answers browsers' preflights without invoking the
	// function and adds CORS headers to its responses.
	CORS *CORS `json:"cors,omitempty"`
}

// CORS are the cross-origin settings of a function URL. A list holding
// "*" allows any value.
type CORS struct {
	AllowOrigins     []string `json:"allowOrigins,omitempty"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAge           int      `json:"maxAge,omitempty"` // seconds
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
}

// clone returns a deep copy of u.
func (u *URLConfig) clone() *URLConfig {
	c := *u
	if u.CORS != nil {
		cors := *u.CORS
		cors.AllowOrigins = slices.Clone(cors.AllowOrigins)
		cors.AllowMethods = slices.Clone(cors.AllowMethods)
		cors.AllowHeaders = slices.Clone(cors.AllowHeaders)
		cors.ExposeHeaders = slices.Clone(cors.ExposeHeaders)
		c.CORS = &cors
	}
	return &c
}

// Public reports whether the URL may be called without a key.
func (u *URLConfig) Public() bool { return u != nil && u.Auth == URLAuthNone }

// normalize validates u and canonicalises it: auth defaults to "key",
// origins and header names are lower-cased, methods upper-cased.
func (u *URLConfig) normalize() error {
	switch u.Auth = strings.ToLower(strings.TrimSpace(u.Auth)); u.Auth {
	case "":
		u.Auth = URLAuthKey
	case URLAuthKey, URLAuthNone:
	default:
		return Invalid("url.auth", fmt.Sprintf("unknown auth %q (use %q or %q)", u.Auth, URLAuthKey, URLAuthNone))
	}
	c := u.CORS
	if c == nil {
		return nil
	}
	if len(c.AllowOrigins) > MaxCORSOrigins {
		return Invalid("url.cors.allowOrigins", fmt.Sprintf("at most %d origins", MaxCORSOrigins))
	}
	for i, o := range c.AllowOrigins {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if o != "*" {
			p, err := url.Parse(o)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Path != "" || p.RawQuery != "" || p.User != nil || p.Fragment != "" {
				return Invalid("url.cors.allowOrigins", fmt.Sprintf("%.80q is not an origin such as \"https://example.com\" or \"*\"", o))
			}
		}
		c.AllowOrigins[i] = o
	}
	if c.AllowCredentials && slices.Contains(c.AllowOrigins, "*") {
		return Invalid("url.cors.allowCredentials", `cannot be true with the origin "*": browsers refuse credentials for any origin; list the origins`)
	}
	if len(c.AllowMethods) > 10 {
		return Invalid("url.cors.allowMethods", "at most 10 methods")
	}
	for i, m := range c.AllowMethods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m != "*" && !isToken(m) {
			return Invalid("url.cors.allowMethods", fmt.Sprintf("%.40q is not an HTTP method", m))
		}
		c.AllowMethods[i] = m
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"url.cors.allowHeaders", c.AllowHeaders}, {"url.cors.exposeHeaders", c.ExposeHeaders}} {
		if len(l.list) > MaxCORSHeaders {
			return Invalid(l.field, fmt.Sprintf("at most %d headers", MaxCORSHeaders))
		}
		for i, h := range l.list {
			h = strings.ToLower(strings.TrimSpace(h))
			if h != "*" && !isToken(h) {
				return Invalid(l.field, fmt.Sprintf("%.80q is not a header name", h))
			}
			l.list[i] = h
		}
	}
	if c.MaxAge < 0 || c.MaxAge > MaxCORSMaxAge {
		return Invalid("url.cors.maxAge", fmt.Sprintf("must be between 0 and %d seconds", MaxCORSMaxAge))
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110), as method and
// header names are, of at most 1024 bytes.
func isToken(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// equalURL reports whether two URL settings are the same.
func equalURL(a, b *URLConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Enabled != b.Enabled || a.Auth != b.Auth || (a.CORS == nil) != (b.CORS == nil) {
		return false
	}
	if a.CORS == nil {
		return true
	}
	x, y := a.CORS, b.CORS
	return slices.Equal(x.AllowOrigins, y.AllowOrigins) && slices.Equal(x.AllowMethods, y.AllowMethods) &&
		slices.Equal(x.AllowHeaders, y.AllowHeaders) && slices.Equal(x.ExposeHeaders, y.ExposeHeaders) &&
		x.MaxAge == y.MaxAge && x.AllowCredentials == y.AllowCredentials
}
