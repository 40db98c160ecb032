package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/store"

	// The built-in stores.
	_ "github.com/nimbusfaas/nimbus/internal/store/mongo"
	_ "github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

// StoreLocation is where cfg keeps functions and records: the MongoDB
// database MONGODB_URI names when it is set, else the SQLite file in the
// data directory.
func StoreLocation(cfg config.Config) (string, error) {
	if uri := cfg.MongoURI; uri != "" {
		if !strings.HasPrefix(uri, "mongodb://") && !strings.HasPrefix(uri, "mongodb+srv://") {
			return "", fmt.Errorf("MONGODB_URI=%q: want a connection string that starts mongodb:// or mongodb+srv://", store.Redact(uri))
		}
		return uri, nil
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return "sqlite:" + filepath.Join(dataDir, "nimbus.db"), nil
}

// OpenStore opens the store cfg names (see StoreLocation).
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	loc, err := StoreLocation(cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, loc)
	if err != nil && cfg.MongoURI != "" {
		return nil, fmt.Errorf("MONGODB_URI: %w", err)
	}
	return st, err
}
