package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// SecretSource reveals the values of stored secrets, for the variables of
// functions that reference them (fn.Function.SecretEnv). An unknown
// secret is fn.ErrNotFound.
type SecretSource interface {
	Reveal(ctx context.Context, name string) (string, error)
}

// withSecrets returns f itself when it references no secret, else a copy
// of f (f may be the cache's, shared by every caller) with Secrets
// filled: what the instance about to start gets, and nothing else. The
// values are revealed at every start, so a secret's new value reaches
// the next instance started.
func (e *Engine) withSecrets(ctx context.Context, f *fn.Function) (*fn.Function, error) {
	if len(f.SecretEnv) == 0 {
		return f, nil
	}
	vars := slices.Sorted(maps.Keys(f.SecretEnv))
	if e.cfg.Secrets == nil {
		return nil, fmt.Errorf("%s reference secrets, and this server has no secret store", strings.Join(vars, ", "))
	}
	g := *f
	g.Secrets = make(map[string]string, len(vars))
	for _, k := range vars {
		name := f.SecretEnv[k]
		v, err := e.cfg.Secrets.Reveal(ctx, name)
		switch {
		case errors.Is(err, fn.ErrNotFound):
			return nil, secretMissing{name: name, variable: k}
		case err != nil:
			return nil, fmt.Errorf("reveal secret %q (for %s): %w", name, k, err)
		}
		g.Secrets[k] = v
	}
	return &g, nil
}

// secretMissing is a start refused because a secret a variable
// references does not exist: fn.ErrNotFound.
type secretMissing struct{ name, variable string }

func (e secretMissing) Error() string {
	return fmt.Sprintf("secret %q (for %s) does not exist", e.name, e.variable)
}

func (e secretMissing) Unwrap() error { return fn.ErrNotFound }
