package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nimbusfaas/nimbus/internal/config"
	"github.com/nimbusfaas/nimbus/internal/server"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/transfer"
)

// stdio is what a command reads and writes, so tests can run it in
// process.
type stdio struct {
	env    func(string) (string, bool)
	in     io.Reader
	out    io.Writer
	errOut io.Writer
}

func osStdio() stdio {
	return stdio{env: os.LookupEnv, in: os.Stdin, out: os.Stdout, errOut: os.Stderr}
}

// storeCmd runs export, import or migrate with the process's stdio, until
// done or interrupted.
func storeCmd(name string, args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := map[string]func(context.Context, []string, stdio) error{
		"export": exportCmd, "import": importCmd, "migrate": migrateCmd,
	}[name]
	err := run(ctx, args, osStdio())
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// storeFlags adds the flags that choose a store the way `nimbus serve`
// does, or explicitly with --store.
type storeFlags struct {
	location, dataDir, envFile string
}

func (sf *storeFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&sf.location, "store", "", "the store: sqlite:PATH or mongodb://HOST/DB (default: the one nimbus serve uses: MONGODB_URI, else the SQLite file in the data dir)")
	fs.StringVar(&sf.dataDir, "data-dir", "", "data directory, for the default store (NIMBUS_DATA_DIR)")
	fs.StringVar(&sf.envFile, "env-file", ".env", "read settings from this .env file")
}

// resolve returns the store location the flags and settings name.
func (sf *storeFlags) resolve(std stdio) (string, error) {
	if sf.location != "" {
		return sf.location, nil
	}
	// No address is bound here: --insecure only skips the check that a
	// public bind has an API key.
	args := []string{"--insecure"}
	if sf.dataDir != "" {
		args = append(args, "--data-dir", sf.dataDir)
	}
	cfg, err := config.Load(std.env, sf.envFile, args)
	if err != nil {
		return "", err
	}
	return server.StoreLocation(cfg)
}

// parse parses args, which may hold no operands beyond maxArgs.
func parse(fs *flag.FlagSet, args []string, maxArgs int, std stdio) error {
	if err := parseFlags(fs, args, std.out); err != nil {
		return err
	}
	if fs.NArg() > maxArgs {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(maxArgs))
	}
	return nil
}

// openStore opens the store at location. A SQLite file that will be
// written (create) may be in a directory that does not exist yet.
func openStore(ctx context.Context, location string, create bool) (store.Store, error) {
	if path, ok := strings.CutPrefix(location, "sqlite:"); ok && create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
	}
	st, err := store.Open(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", store.Redact(location), err)
	}
	return st, nil
}

// exportCmd: nimbus export [--executions] [--output FILE] [store flags]
func exportCmd(ctx context.Context, args []string, std stdio) error {
	fs := withUsage(flag.NewFlagSet("export", flag.ContinueOnError), `usage: nimbus export [flags]

Writes every function (and with --executions their records) as JSON lines.
`)
	fs.SetOutput(std.errOut)
	var sf storeFlags
	sf.add(fs)
	executions := fs.Bool("executions", false, "include every function's execution records, events included")
	output := fs.String("output", "-", "write to this file instead of standard output")
	if err := parse(fs, args, 0, std); err != nil {
		return err
	}
	loc, err := sf.resolve(std)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, loc, false)
	if err != nil {
		return err
	}
	defer st.Close()

	w, commit := std.out, func() error { return nil }
	if *output != "-" {
		f, err := os.OpenFile(*output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w, commit = f, f.Close
	}
	stats, err := transfer.Export(ctx, st, w, transfer.Options{Executions: *executions})
	if err == nil {
		err = commit()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(std.errOut, "nimbus: exported %s from %s\n", stats, store.Redact(loc))
	return nil
}

// importCmd: nimbus import [--skip-existing] [store flags] [FILE]
func importCmd(ctx context.Context, args []string, std stdio) error {
	fs := withUsage(flag.NewFlagSet("import", flag.ContinueOnError), `usage: nimbus import [flags] [FILE]

Reads what nimbus export wrote (FILE, or standard input) into the store.
`)
	fs.SetOutput(std.errOut)
	var sf storeFlags
	sf.add(fs)
	skip := fs.Bool("skip-existing", false, "leave alone functions the store already has (by id or name), and their records, instead of failing")
	if err := parse(fs, args, 1, std); err != nil {
		return err
	}
	loc, err := sf.resolve(std)
	if err != nil {
		return err
	}
	r := std.in
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	st, err := openStore(ctx, loc, true)
	if err != nil {
		return err
	}
	defer st.Close()
	stats, err := transfer.Import(ctx, st, r, transfer.Options{SkipExisting: *skip})
	if err != nil {
		return fmt.Errorf("%w (imported %s before that)", err, stats)
	}
	fmt.Fprintf(std.errOut, "nimbus: imported %s into %s\n", stats, store.Redact(loc))
	return nil
}

// migrateCmd: nimbus migrate --from LOCATION --to LOCATION [--executions] [--skip-existing]
func migrateCmd(ctx context.Context, args []string, std stdio) error {
	fs := withUsage(flag.NewFlagSet("migrate", flag.ContinueOnError), `usage: nimbus migrate --from LOCATION --to LOCATION [flags]

Copies every function (and with --executions their records) from one store
to another; a LOCATION is sqlite:PATH or mongodb://HOST/DB.
`)
	fs.SetOutput(std.errOut)
	from := fs.String("from", "", "the store to copy from: sqlite:PATH or mongodb://HOST/DB")
	to := fs.String("to", "", "the store to copy into: sqlite:PATH or mongodb://HOST/DB")
	executions := fs.Bool("executions", false, "copy every function's execution records too")
	skip := fs.Bool("skip-existing", false, "leave alone functions the destination already has, instead of failing")
	if err := parse(fs, args, 0, std); err != nil {
		return err
	}
	switch {
	case *from == "" || *to == "":
		return errors.New("migrate: both --from and --to are required, e.g. --from sqlite:data/nimbus.db --to mongodb://localhost:27017/nimbus")
	case *from == *to:
		return errors.New("migrate: --from and --to name the same store")
	}
	src, err := openStore(ctx, *from, false)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openStore(ctx, *to, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	stats, err := transfer.Copy(ctx, src, dst, transfer.Options{Executions: *executions, SkipExisting: *skip})
	if err != nil {
		return fmt.Errorf("%w (copied %s before that)", err, stats)
	}
	fmt.Fprintf(std.errOut, "nimbus: copied %s from %s to %s\n", stats, store.Redact(*from), store.Redact(*to))
	return nil
}
