package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nimbusfaas/nimbus/internal/build/deps"
	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
)

// Local is a Nimbus that StartLocal serves.
type Local struct {
	URL string
	// PipFindLinks is the directory of wheels its dependency builds
	// install from (NIMBUS_PIP_FIND_LINKS), readable by the build user:
	// Config.PipFindLinks, where Run writes the wheel its deploys need.
	PipFindLinks string
}

// StartLocal serves a Nimbus on a free loopback port with a temporary data
// directory, quietly, its Python dependencies coming from an empty
// directory of wheels only.
func StartLocal(ctx context.Context) (stop func(), l Local, err error) {
	dir, err := os.MkdirTemp("", "nimbus-bench")
	if err != nil {
		return nil, l, err
	}
	wheels, err := os.MkdirTemp("", "nimbus-bench-wheels")
	if err == nil {
		err = os.Chmod(wheels, 0o755) // builds run as nobody
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, l, err
	}
	cleanup := func() { os.RemoveAll(dir); os.RemoveAll(wheels) }
	env := map[string]string{deps.EnvPipFindLinks: wheels}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "", []string{"--port", "0", "--data-dir", dir})
	if err != nil {
		cleanup()
		return nil, l, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, cfg, os.LookupEnv, log)
	if err != nil {
		cleanup()
		return nil, l, err
	}
	addr, err := srv.Listen()
	if err != nil {
		cleanup()
		return nil, l, err
	}
	go srv.Serve(ctx)
	return func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		cleanup()
	}, Local{URL: "http://" + addr.String(), PipFindLinks: wheels}, nil
}
