// Command ferretdb runs an embedded FerretDB v1 on its SQLite backend: a
// MongoDB wire-protocol server for Nimbus's tests, where no mongod is
// installed. It lives in its own Go module so that none of FerretDB's
// dependencies reach the nimbus binary or its go.mod; the test harness
// (internal/store/mongo/mongotest) builds it with `go build` and runs it as
// a subprocess.
//
// It listens on -listen (port 0 picks a free one), keeps one SQLite file per
// database under -dir, prints "listening mongodb://HOST:PORT/" on stdout once
// it accepts connections, and stops on SIGINT, SIGTERM or when its standard
// input closes (so it never outlives a test process that dies).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	dir := flag.String("dir", "", "directory of the SQLite databases (required)")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	watchStdin := flag.Bool("watch-stdin", true, "exit when standard input closes")
	flag.Parse()
	if err := run(*listen, *dir, *level, *watchStdin); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(listen, dir, level string, watchStdin bool) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    log.With("component", "ferretdb"),
		Handler:   "sqlite",
		SQLiteURL: (&url.URL{Scheme: "file", Opaque: filepath.ToSlash(abs) + "/"}).String(),
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	// MongoDBURI waits until Run has bound the listener.
	fmt.Printf("listening %s\n", f.MongoDBURI())
	return <-done
}
