package sqlite

import (
	"context"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/store"
)

func init() { store.Register("sqlite", openLocation) }

// openLocation opens "sqlite:PATH" ("sqlite:///abs/path" works too, and
// "sqlite::memory:" is a private in-memory database).
func openLocation(ctx context.Context, location string) (store.Store, error) {
	path := location[len("sqlite:"):]
	if strings.HasPrefix(path, "///") {
		path = path[2:]
	}
	s, err := Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return s, nil
}
