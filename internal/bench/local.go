package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
)

// StartLocal serves a Nimbus on a free loopback port with a temporary data
// directory, quietly.
func StartLocal(ctx context.Context) (stop func(), url string, err error) {
	dir, err := os.MkdirTemp("", "nimbus-bench")
	if err != nil {
		return nil, "", err
	}
	cfg, err := config.Load(func(string) (string, bool) { return "", false }, "", []string{"--port", "0", "--data-dir", dir})
	if err != nil {
		return nil, "", err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, cfg, os.LookupEnv, log)
	if err != nil {
		return nil, "", err
	}
	addr, err := srv.Listen()
	if err != nil {
		return nil, "", err
	}
	go srv.Serve(ctx)
	return func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		os.RemoveAll(dir)
	}, "http://" + addr.String(), nil
}
