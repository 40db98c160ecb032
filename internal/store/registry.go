package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// OpenFunc opens the Store at location, a URI whose scheme chose it:
// "sqlite:/var/lib/nimbus/nimbus.db", "mongodb://db.example:27017/nimbus".
type OpenFunc func(ctx context.Context, location string) (Store, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
)

// Register makes a Store implementation available to Open under a URI
// scheme. Implementations call it from init; a scheme registered twice
// panics.
func Register(scheme string, open OpenFunc) {
	registryMu.Lock()
	defer registryMu.Unlock()
	scheme = strings.ToLower(scheme)
	if open == nil {
		panic("store: Register of a nil OpenFunc for " + scheme)
	}
	if _, dup := registry[scheme]; dup {
		panic("store: Register called twice for scheme " + scheme)
	}
	registry[scheme] = open
}

// Schemes lists the registered URI schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open opens the Store that location names, by its URI scheme.
func Open(ctx context.Context, location string) (Store, error) {
	scheme, _, ok := strings.Cut(location, ":")
	registryMu.RLock()
	open := registry[strings.ToLower(scheme)]
	registryMu.RUnlock()
	if !ok || open == nil {
		return nil, fmt.Errorf("store: %q names no known store: want one of %s", Redact(location), examples())
	}
	return open(ctx, location)
}

func examples() string {
	var ex []string
	for _, s := range Schemes() {
		switch {
		case s == "sqlite":
			ex = append(ex, "sqlite:PATH")
		case strings.HasPrefix(s, "mongodb"):
			ex = append(ex, s+"://HOST/DATABASE")
		default:
			ex = append(ex, s+":…")
		}
	}
	if len(ex) == 0 {
		return "(no store is registered)"
	}
	return strings.Join(ex, ", ")
}

// Redact returns location with any password in it masked, for logs and
// error messages.
func Redact(location string) string {
	scheme, rest, ok := strings.Cut(location, "://")
	if !ok {
		return location
	}
	authority, path, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return location
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return location
	}
	out := scheme + "://" + user + ":xxxxx@" + authority[at+1:]
	if len(rest) > len(authority) {
		out += "/" + path
	}
	return out
}
