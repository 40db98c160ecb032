// Command nimbus is the Nimbus serverless platform: `nimbus serve` runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
)

const usage = `nimbus: a self-hosted serverless function platform

usage:
  nimbus serve [--port N] [--host ADDR] [--data-dir DIR] [--env-file FILE] [--insecure]
  nimbus images build [--runtime python|nodejs] [--force]
  nimbus bench [--url URL] [--duration 3s] [--colds 10] [--concurrency 1,16,64] [--json FILE] [--cpuprofile FILE]
  nimbus simulate [--days 7] [--seed 1] [--memory 128] [--fixed 10m] [--json FILE]
  nimbus export [--executions] [--output FILE] [--store LOCATION]
  nimbus import [--skip-existing] [--store LOCATION] [FILE]
  nimbus migrate --from LOCATION --to LOCATION [--executions] [--skip-existing]
  nimbus microvm build [--dir DIR]
  nimbus version

Settings come from flags, then the environment, then .env; see .env.example.
A store LOCATION is sqlite:PATH or a MongoDB URI (mongodb://HOST/DB); export
and import default to the store nimbus serve uses (MONGODB_URI, else the SQLite
file in --data-dir).
`

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "bench":
		err = benchCmd(os.Args[2:])
	case "simulate":
		err = simulateCmd(os.Args[2:])
	case "microvm":
		err = microvmCmd(os.Args[2:])
	case "export", "import", "migrate":
		err = storeCmd(os.Args[1], os.Args[2:])
	case "images":
		err = images(os.Args[2:])
	case "version":
		fmt.Println("nimbus", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "nimbus: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nimbus:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	cfg, err := config.Load(os.LookupEnv, ".env", args)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("NIMBUS_LOG_LEVEL: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx := context.Background()
	srv, err := server.New(ctx, cfg, cfg.Lookup, log)
	if err != nil {
		return err
	}
	if _, err := srv.Listen(); err != nil {
		_ = srv.Shutdown(ctx)
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	select {
	case err := <-served:
		_ = srv.Shutdown(ctx)
		return err
	case sig := <-sigs:
		log.Info("shutting down: finishing calls in flight (signal again to force)", "signal", sig.String(), "timeout", cfg.ShutdownTimeout)
	}
	drainCtx, cancel := context.WithTimeout(ctx, cfg.ShutdownTimeout)
	defer cancel()
	go func() {
		<-sigs
		log.Warn("second signal: stopping now")
		cancel()
	}()
	err = srv.Shutdown(drainCtx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown cut short", "error", err)
		err = nil
	}
	log.Info("stopped")
	return err
}
