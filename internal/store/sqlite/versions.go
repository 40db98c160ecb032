package sqlite

import (
	"context"
	"errors"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Placeholders until versions and aliases are stored.
var errVersionsTODO = errors.New("sqlite: versions and aliases are not stored yet")

func (s *Store) CreateVersion(ctx context.Context, v *fn.Version) error { return errVersionsTODO }
func (s *Store) GetVersion(ctx context.Context, functionID string, number int) (*fn.Version, error) {
	return nil, errVersionsTODO
}
func (s *Store) ListVersions(ctx context.Context, functionID string) ([]*fn.Version, error) {
	return nil, errVersionsTODO
}
func (s *Store) DeleteVersion(ctx context.Context, functionID string, number int) error {
	return errVersionsTODO
}
func (s *Store) CreateAlias(ctx context.Context, a *fn.Alias) error { return errVersionsTODO }
func (s *Store) GetAlias(ctx context.Context, functionID, name string) (*fn.Alias, error) {
	return nil, errVersionsTODO
}
func (s *Store) ListAliases(ctx context.Context, functionID string) ([]*fn.Alias, error) {
	return nil, errVersionsTODO
}
func (s *Store) UpdateAlias(ctx context.Context, a *fn.Alias, prevRevision int) error {
	return errVersionsTODO
}
func (s *Store) DeleteAlias(ctx context.Context, functionID, name string) error {
	return errVersionsTODO
}
