package auth

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Scope is what a key may do.
type Scope string

// The scopes. Admin may do everything, keys and secrets included; deploy
// changes functions (and may read them: a deploy needs to see what it
// changes); invoke runs them; read sees them, without secrets.
const (
	ScopeAdmin  Scope = "admin"
	ScopeDeploy Scope = "deploy"
	ScopeInvoke Scope = "invoke"
	ScopeRead   Scope = "read"
	// ScopeNone marks routes anyone may call (health, the session).
	ScopeNone Scope = ""
)

// Scopes are the scopes a key may be given, in order.
var Scopes = []Scope{ScopeAdmin, ScopeDeploy, ScopeInvoke, ScopeRead}

// ParseScopes checks names and returns them as scopes, sorted as Scopes,
// without repeats.
func ParseScopes(names []string) ([]Scope, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("a key needs at least one scope (%s)", scopeList())
	}
	var out []Scope
	for _, n := range names {
		s := Scope(strings.ToLower(strings.TrimSpace(n)))
		if !slices.Contains(Scopes, s) {
			return nil, fmt.Errorf("%q is not a scope (%s)", n, scopeList())
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Scope) int { return slices.Index(Scopes, a) - slices.Index(Scopes, b) })
	return out, nil
}

func scopeList() string {
	s := make([]string, len(Scopes))
	for i, sc := range Scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ", ")
}

// CheckGlobs checks function-name globs (path.Match patterns).
func CheckGlobs(globs []string) error {
	for _, g := range globs {
		if g == "" || len(g) > 128 {
			return fmt.Errorf("function glob %q: 1 to 128 characters", g)
		}
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("function glob %q: %v", g, err)
		}
	}
	return nil
}

// Who a request is: the ids of the bootstrap key and of requests to a
// server without keys.
const (
	BootstrapID = "bootstrap"
	AnonymousID = "anonymous"
)

// Principal is who a request is.
type Principal struct {
	KeyID  string
	Name   string
	scopes []Scope
	// Functions are the name globs the key is limited to; nil: all.
	Functions []string
	// limit is the key's rate limiter (nil: none).
	limit *limiter
}

// Admin is a principal with every right (the bootstrap key, or anyone on
// a server without keys).
func Admin(id string) *Principal {
	return &Principal{KeyID: id, Name: id, scopes: []Scope{ScopeAdmin}}
}

// NewPrincipal is a principal with scopes and globs (for tests and keys).
func NewPrincipal(id string, scopes []Scope, functions []string) *Principal {
	return &Principal{KeyID: id, Name: id, scopes: scopes, Functions: functions}
}

// Scopes are the principal's scopes as given.
func (p *Principal) Scopes() []Scope { return p.scopes }

// Has reports whether p may act with scope s: admin has every scope, and
// deploy includes read.
func (p *Principal) Has(s Scope) bool {
	if s == ScopeNone {
		return true
	}
	for _, have := range p.scopes {
		if have == s || have == ScopeAdmin || (have == ScopeDeploy && s == ScopeRead) {
			return true
		}
	}
	return false
}

// MayFunction reports whether p's globs let it at the function named name.
func (p *Principal) MayFunction(name string) bool {
	if len(p.Functions) == 0 {
		return true
	}
	for _, g := range p.Functions {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// AllFunctions reports whether p is limited to no globs.
func (p *Principal) AllFunctions() bool { return len(p.Functions) == 0 }

// Check says why p may not act with scope s on the function named name
// ("" for none), or nil.
func (p *Principal) Check(s Scope, name string) error {
	if !p.Has(s) {
		return &DeniedError{Msg: fmt.Sprintf("key %s lacks the %q scope", p.KeyID, s)}
	}
	if name != "" && !p.MayFunction(name) {
		return &DeniedError{Msg: fmt.Sprintf("key %s may not act on function %q (it is limited to %s)", p.KeyID, name, strings.Join(p.Functions, ", "))}
	}
	return nil
}

// DeniedError is a refusal for want of a scope or a function glob (403).
type DeniedError struct{ Msg string }

func (e *DeniedError) Error() string { return e.Msg }

type principalKey struct{}

// WithPrincipal is ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext is the principal ctx carries, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

type sourceKey struct{}

// WithSource is ctx carrying the client's address, for the audit log.
func WithSource(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, sourceKey{}, addr)
}

func sourceOf(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}
