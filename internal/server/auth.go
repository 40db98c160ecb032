package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/nimbusfaas/nimbus/internal/auth"
	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/store"
)

// authParts are the server's keys, secrets and audit log.
type authParts struct {
	keys    *auth.Keys
	secrets *auth.Secrets
	audit   *auth.Audit
}

// openAuth loads the key-encryption key, seals again under it what older
// keys sealed, and reads the API keys.
func openAuth(ctx context.Context, cfg config.Config, st store.Store, dataDir string, log *slog.Logger) (*authParts, error) {
	as, ok := st.(store.AuthStore)
	if !ok {
		return nil, fmt.Errorf("the store %T keeps no API keys or secrets", st)
	}
	ring, generated, err := auth.LoadKeyring(cfg.SecretsKey, cfg.SecretsKeyPrevious, dataDir)
	if err != nil {
		return nil, err
	}
	if generated {
		log.Warn("generated the key-encryption key of secrets and API keys: back it up, since without it they cannot be read",
			"file", filepath.Join(dataDir, auth.KeyFile))
		if cfg.MongoURI != "" {
			log.Warn("servers sharing one MongoDB need the same key-encryption key: set NIMBUS_SECRETS_KEY to the same value on each")
		}
	}
	a := &authParts{audit: auth.NewAudit(as, log)}
	a.keys = auth.NewKeys(auth.KeysConfig{Store: as, Keyring: ring, Audit: a.audit, Bootstrap: cfg.APIKey, Logger: log})
	a.secrets = auth.NewSecrets(as, ring, a.audit)
	sctx := auth.WithPrincipal(ctx, auth.Admin(auth.SystemID))
	if n, err := a.keys.Rotate(sctx); err != nil {
		log.Error("some API keys could not be sealed under the current key-encryption key: they do not work", "error", err)
	} else if n > 0 {
		log.Info("sealed API keys under the current key-encryption key", "keys", n)
	}
	if n, err := a.secrets.Rotate(sctx); err != nil {
		log.Error("some secrets could not be sealed under the current key-encryption key: functions using them do not start", "error", err)
	} else if n > 0 {
		log.Info("sealed secrets under the current key-encryption key", "secrets", n)
	}
	if err := a.keys.Load(ctx); err != nil {
		return nil, err
	}
	return a, nil
}
