package functions

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// SecretChecker says whether a secret exists (Config.Secrets).
type SecretChecker interface {
	SecretExists(ctx context.Context, name string) (bool, error)
}

// checkSecrets refuses a function that references a secret that does
// not exist; without Config.Secrets it checks nothing.
func (s *Service) checkSecrets(ctx context.Context, f *fn.Function) error {
	if s.cfg.Secrets == nil || len(f.SecretEnv) == 0 {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(f.SecretEnv)) {
		name := f.SecretEnv[k]
		ok, err := s.cfg.Secrets.SecretExists(ctx, name)
		if err != nil {
			return fmt.Errorf("check secret %q: %w", name, err)
		}
		if !ok {
			return fn.Invalid("env", fmt.Sprintf("secret %q (for %s) does not exist", name, k))
		}
	}
	return nil
}

// UsedBy returns the names of the functions that reference the secret
// name, in their draft or in a published version, sorted: a secret in
// use is not deleted.
func (s *Service) UsedBy(ctx context.Context, name string) ([]string, error) {
	fns, err := s.cfg.Store.ListFunctions(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range fns {
		used := slices.Contains(f.SecretNames(), name)
		if !used {
			vs, err := s.cfg.Store.ListVersions(ctx, f.ID)
			if err != nil {
				return nil, err
			}
			used = slices.ContainsFunc(vs, func(v *fn.Version) bool {
				return v.Function != nil && slices.Contains(v.SecretNames(), name)
			})
		}
		if used {
			out = append(out, f.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}
