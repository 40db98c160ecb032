// Command nimbus is the Nimbus serverless platform: `nimbus serve` runs it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"syscall"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
)

const usage = `nimbus: a self-hosted serverless function platform

usage:
  nimbus serve [--port N] [--host ADDR] [--data-dir DIR] [--env-file FILE] [--insecure]
  nimbus images build [--runtime python|nodejs] [--force]
  nimbus bench [--url URL [--pip-find-links DIR]] [--duration 3s] [--colds 10] [--deploys 10] [--concurrency 1,16,64] [--json FILE] [--cpuprofile FILE]
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

// version is linked in with -ldflags "-X main.version=..." (make build
// does); when it is not, versionString reads the build's VCS stamp.
var version string

// versionString is this binary's version: the one linked in, else the
// module's version when it was installed as module@version, else the
// commit it was built from with "-dirty" when the tree had changes, else
// "dev".
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return versionOf(version, bi)
}

// pseudoVersion matches the versions Go gives an untagged commit
// (v0.0.0-20250102030405-abcdef123456, maybe with +dirty).
var pseudoVersion = regexp.MustCompile(`-(\d+\.)?\d{14}-[0-9a-f]{12}(\+dirty)?$`)

func versionOf(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi == nil {
		return "dev"
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" && !pseudoVersion.MatchString(v) {
		return v // a release: go install module@v1.2.3
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func main() { os.Exit(runMain(os.Args[1:])) }

// runMain runs the command in args and returns the process's exit status: 0
// when it succeeded or printed the help asked for, 1 when it failed, 2 for
// a command line it does not understand.
func runMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:])
	case "bench":
		err = benchCmd(args[1:])
	case "simulate":
		err = simulateCmd(args[1:])
	case "microvm":
		err = microvmCmd(args[1:])
	case "export", "import", "migrate":
		err = storeCmd(args[0], args[1:])
	case "images":
		err = images(args[1:])
	case "version":
		err = versionCmd(args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "nimbus: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, "nimbus:", err)
		return 1
	}
	return 0
}

// parseFlags parses args into fs. On -h or --help it prints fs's usage to
// help (standard output) and returns flag.ErrHelp, which runMain counts as
// success; a bad flag's message and the usage go to fs's output (standard
// error).
func parseFlags(fs *flag.FlagSet, args []string, help io.Writer) error {
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		out = help
	}
	_, _ = buf.WriteTo(out)
	return err
}

// withUsage makes fs's usage the text about followed by its flags with
// their descriptions.
func withUsage(fs *flag.FlagSet, about string) *flag.FlagSet {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), about)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

const serveUsage = `usage: nimbus serve [flags]

Runs Nimbus: the HTTP API, the web UI and the functions. Settings come from
flags, then the environment, then the .env file; see .env.example.

flags:
`

const versionUsage = `usage: nimbus version

Prints the version of this binary: the one linked in at build time, else
the commit it was built from ("-dirty" when the tree had changes).
`

func versionCmd(args []string) error {
	fs := withUsage(flag.NewFlagSet("version", flag.ContinueOnError), versionUsage)
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version: unexpected argument %q", fs.Arg(0))
	}
	fmt.Println("nimbus", versionString())
	return nil
}

func serve(args []string) error {
	cfg, err := config.Load(os.LookupEnv, ".env", args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(serveUsage)
		config.PrintFlags(os.Stdout)
		return err
	}
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
