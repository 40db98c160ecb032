package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nimbusfaas/nimbus/internal/auth"
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

// storeFlags adds the flags that choose a store the way `nimbus serve`
// does, or explicitly with --store.
type storeFlags struct {
	location, dataDir, envFile string
}

func (sf *storeFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&sf.location, "store", "", "the store: sqlite:PATH or mongodb://HOST/DB (default: the one nimbus serve uses: MONGODB_URI, else the SQLite file in the data dir)")
	fs.StringVar(&sf.dataDir, "data-dir", "", "data directory, for the default store (NIMBUS_DATA_DIR)")
	fs.StringVar(&sf.envFile, "env-file", ".env", "read settings from this .env file")
}

// resolve returns the store location the flags and settings name.
func (sf *storeFlags) resolve(std stdio) (string, error) {
	if sf.location != "" {
		return sf.location, nil
	}
	cfg, err := sf.config(std)
	if err != nil {
		return "", err
	}
	return server.StoreLocation(cfg)
}

// config is the settings nimbus serve would have here.
func (sf *storeFlags) config(std stdio) (config.Config, error) {
	// No address is bound here: --insecure only skips the check that a
	// public bind has an API key.
	args := []string{"--insecure"}
	if sf.dataDir != "" {
		args = append(args, "--data-dir", sf.dataDir)
	}
	return config.Load(std.env, sf.envFile, args)
}

// reseal opens secrets with the key-encryption key nimbus serve would use
// here and seals them for toKey (a key as NIMBUS_SECRETS_KEY takes it; ""
// for the same key).
func (sf *storeFlags) reseal(std stdio, toKey string) (func(*store.SecretRecord) (*store.SecretRecord, error), error) {
	cfg, err := sf.config(std)
	if err != nil {
		return nil, err
	}
	from, err := auth.ReadKeyring(cfg.SecretsKey, cfg.SecretsKeyPrevious, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	to := from
	if toKey != "" {
		raw, err := auth.ParseKey(toKey)
		if err != nil {
			return nil, fmt.Errorf("--to-key: %w", err)
		}
		if to, err = auth.NewKeyring(raw); err != nil {
			return nil, err
		}
	}
	return auth.Reseal(from, to), nil
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
func exportCmd(std stdio) *cobra.Command {
	var sf storeFlags
	var executions, withSecrets bool
	var output, toKey string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "write every function (and their records) as JSON lines",
		Long: `Writes every function (and with --executions their records) as JSON lines.

Secrets are not exported: functions keep their references to them by name.
With --with-secrets they are, sealed for the key-encryption key of the
server that will import them (--to-key, as its NIMBUS_SECRETS_KEY; by
default this server's own), never in plain text.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			var reseal func(*store.SecretRecord) (*store.SecretRecord, error)
			if withSecrets {
				var err error
				if reseal, err = sf.reseal(std, toKey); err != nil {
					return err
				}
			} else if toKey != "" {
				return fmt.Errorf("--to-key goes with --with-secrets")
			}
			return export(ctx, std, sf, transfer.Options{Executions: executions, Reseal: reseal}, output)
		},
	}
	sf.add(cmd.Flags())
	cmd.Flags().BoolVar(&executions, "executions", false, "include every function's execution records, events included")
	cmd.Flags().StringVar(&output, "output", "-", "write to this file instead of standard output")
	cmd.Flags().BoolVar(&withSecrets, "with-secrets", false, "include secrets, sealed for the importing server's key-encryption key")
	cmd.Flags().StringVar(&toKey, "to-key", "", "the importing server's key-encryption key (NIMBUS_SECRETS_KEY there; default: this server's)")
	return cmd
}

func export(ctx context.Context, std stdio, sf storeFlags, opt transfer.Options, output string) error {
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
	if output != "-" {
		f, err := os.OpenFile(output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w, commit = f, f.Close
	}
	stats, err := transfer.Export(ctx, st, w, opt)
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
func importCmd(std stdio) *cobra.Command {
	var sf storeFlags
	var skip bool
	cmd := &cobra.Command{
		Use:   "import [FILE]",
		Short: "read what nimbus export wrote into the store",
		Long:  "Reads what nimbus export wrote (FILE, or standard input) into the store.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			file := ""
			if len(args) > 0 {
				file = args[0]
			}
			return importFile(ctx, std, sf, skip, file)
		},
	}
	sf.add(cmd.Flags())
	cmd.Flags().BoolVar(&skip, "skip-existing", false, "leave alone functions the store already has (by id or name), and their records, instead of failing")
	return cmd
}

func importFile(ctx context.Context, std stdio, sf storeFlags, skip bool, file string) error {
	loc, err := sf.resolve(std)
	if err != nil {
		return err
	}
	r := std.in
	if name := file; name != "" && name != "-" {
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
	stats, err := transfer.Import(ctx, st, r, transfer.Options{SkipExisting: skip})
	if err != nil {
		return fmt.Errorf("%w (imported %s before that)", err, stats)
	}
	fmt.Fprintf(std.errOut, "nimbus: imported %s into %s\n", stats, store.Redact(loc))
	return nil
}

// migrateCmd: nimbus migrate --from LOCATION --to LOCATION [--executions] [--skip-existing]
func migrateCmd(std stdio) *cobra.Command {
	var from, to string
	var executions, skip bool
	cmd := &cobra.Command{
		Use:   "migrate --from LOCATION --to LOCATION",
		Short: "copy every function (and their records) from one store to another",
		Long: `Copies every function (and with --executions their records) from one store
to another; a LOCATION is sqlite:PATH or mongodb://HOST/DB.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			return migrate(ctx, std, from, to, executions, skip)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the store to copy from: sqlite:PATH or mongodb://HOST/DB")
	cmd.Flags().StringVar(&to, "to", "", "the store to copy into: sqlite:PATH or mongodb://HOST/DB")
	cmd.Flags().BoolVar(&executions, "executions", false, "copy every function's execution records too")
	cmd.Flags().BoolVar(&skip, "skip-existing", false, "leave alone functions the destination already has, instead of failing")
	return cmd
}

func migrate(ctx context.Context, std stdio, from, to string, executions, skip bool) error {
	switch {
	case from == "" || to == "":
		return usage(errors.New("migrate: both --from and --to are required, e.g. --from sqlite:data/nimbus.db --to mongodb://localhost:27017/nimbus"))
	case from == to:
		return errors.New("migrate: --from and --to name the same store")
	}
	src, err := openStore(ctx, from, false)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openStore(ctx, to, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	stats, err := transfer.Copy(ctx, src, dst, transfer.Options{Executions: executions, SkipExisting: skip})
	if err != nil {
		return fmt.Errorf("%w (copied %s before that)", err, stats)
	}
	fmt.Fprintf(std.errOut, "nimbus: copied %s from %s to %s\n", stats, store.Redact(from), store.Redact(to))
	return nil
}
