package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
)

// serveCmd shows config's flags; config.Load parses the ones given, so
// that their precedence over the environment and .env stays in one place.
func serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run Nimbus: the HTTP API, the web UI and the functions",
		Long: `Runs Nimbus: the HTTP API, the web UI and the functions. Settings come from
flags, then the environment, then the .env file; see .env.example.`,
		Args: args(cobra.NoArgs),
	}
	own := config.Flags()
	cmd.Flags().AddGoFlagSet(own)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var loadArgs []string
		cmd.Flags().Visit(func(f *pflag.Flag) {
			if own.Lookup(f.Name) != nil {
				loadArgs = append(loadArgs, "--"+f.Name+"="+f.Value.String())
			}
		})
		return serve(loadArgs)
	}
	return cmd
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
