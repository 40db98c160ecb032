package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

func secretsCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "set, list and remove the secrets functions reference",
		Long: `Secrets are values stored encrypted on the server. A function references one
in its env, {"secret": NAME} (in nimbus.yaml: DB_PASSWORD: {secret: NAME}):
the value reaches the function's worker only, and is never shown.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(errors.New("secrets: want a subcommand: set, list or rm"))
		},
	}
	conn.add(cmd.PersistentFlags())

	var fromFile, value, description string
	var valueSet bool
	set := &cobra.Command{
		Use:   "set NAME [--from-file F | --value V]",
		Short: "create a secret, or give it a new value",
		Long: `Stores a secret's value: from --from-file, --value, or else standard input
(a trailing newline is dropped). --value leaves the value in your shell's
history: prefer a file or standard input. The value is never printed.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			valueSet = cmd.Flags().Changed("value")
			if valueSet && fromFile != "" {
				return usage(errors.New("give --from-file or --value, not both"))
			}
			var v string
			switch {
			case valueSet:
				v = value
			case fromFile != "":
				b, err := os.ReadFile(fromFile)
				if err != nil {
					return err
				}
				v = string(b)
			default:
				b, err := io.ReadAll(std.in)
				if err != nil {
					return fmt.Errorf("read the value from standard input: %w", err)
				}
				v = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			}
			if v == "" {
				return usage(errors.New("the value is empty"))
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			s, created, err := c.SetSecret(cmd.Context(), a[0], v, description)
			if err != nil {
				return err
			}
			if created {
				g.say(std, "created secret %s", s.Name)
			} else {
				g.say(std, "set secret %s (version %d)", s.Name, s.Version)
			}
			return nil
		},
	}
	set.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, as it is")
	set.Flags().StringVar(&value, "value", "", "the value (stays in your shell's history)")
	set.Flags().StringVarP(&description, "description", "m", "", "what the secret is")

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "list secrets: names, versions and the functions using them, never values",
		Args:  args(cobra.NoArgs),
		RunE: readRun(&conn, std, &listFormat, func(ctx context.Context, c *cli.Client, _ []string) ([]byte, []cli.Secret, error) {
			return c.ListSecrets(ctx)
		}, cli.WriteSecrets),
	}
	formatFlag(list, &listFormat)

	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "remove secrets (refused while a function uses one)",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE:  g.eachRun(&conn, std, "removed secret %s", (*cli.Client).DeleteSecret),
	}
	cmd.AddCommand(set, list, rm)
	return cmd
}

func keysCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "create, list and revoke API keys",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(errors.New("keys: want a subcommand: create, list or rm"))
		},
	}
	conn.add(cmd.PersistentFlags())

	var nk cli.NewKey
	var expires time.Duration
	create := &cobra.Command{
		Use:   "create --name N --scope S [--scope S...] [--function GLOB...] [--expires DUR] [--rate-limit N]",
		Short: "create an API key and print its secret, once",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nk.Name == "" {
				return usage(errors.New("--name is required"))
			}
			if len(nk.Scopes) == 0 {
				return usage(errors.New("give at least one --scope"))
			}
			if expires < 0 || nk.RateLimit < 0 {
				return usage(errors.New("--expires and --rate-limit cannot be negative"))
			}
			if expires > 0 {
				t := time.Now().Add(expires).UTC().Truncate(time.Second)
				nk.ExpiresAt = &t
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			k, err := c.CreateKey(cmd.Context(), nk)
			if err != nil {
				return err
			}
			g.say(std, "created key %s (%s); its secret is shown only this once: store it now", k.ID, k.Name)
			fmt.Fprintln(std.out, k.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&nk.Name, "name", "", "what the key is for")
	create.Flags().StringArrayVar(&nk.Scopes, "scope", nil, "what the key may do (repeat for more): admin, deploy, invoke, read")
	create.Flags().StringArrayVar(&nk.Functions, "function", nil, "a glob of the functions it may reach (repeat for more; default all)")
	create.Flags().DurationVar(&expires, "expires", 0, "how long the key lasts, e.g. 720h (default: until revoked)")
	create.Flags().Float64Var(&nk.RateLimit, "rate-limit", 0, "calls per second the key may make (default: no limit)")

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "list API keys, never their secrets",
		Args:  args(cobra.NoArgs),
		RunE: readRun(&conn, std, &listFormat, func(ctx context.Context, c *cli.Client, _ []string) ([]byte, []cli.Key, error) {
			return c.ListKeys(ctx)
		}, cli.WriteKeys),
	}
	formatFlag(list, &listFormat)

	rm := &cobra.Command{
		Use:   "rm ID...",
		Short: "revoke API keys",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE:  g.eachRun(&conn, std, "revoked key %s", (*cli.Client).DeleteKey),
	}
	cmd.AddCommand(create, list, rm)
	return cmd
}

func auditCmd(std stdio) *cobra.Command {
	var conn connFlags
	var q cli.AuditQuery
	var since, format string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "show the audit log: who changed what, newest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			if since != "" {
				t, err := cli.ParseSince(since, time.Now())
				if err != nil {
					return usage(err)
				}
				q.Since = t
			}
			if q.Limit < 0 {
				return usage(errors.New("--limit cannot be negative"))
			}
			return readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, _ []string) ([]byte, []cli.AuditEntry, error) {
				raw, es, _, err := c.Audit(ctx, q)
				return raw, es, err
			}, cli.WriteAudit)(cmd, a)
		},
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&q.KeyID, "key-id", "", "only what this key did")
	cmd.Flags().StringVar(&q.Action, "action", "", "only this action (function.update) or kind (function)")
	cmd.Flags().StringVar(&q.Target, "target", "", "only what touched this target, e.g. a function's name")
	cmd.Flags().StringVar(&since, "since", "", "only entries since a duration ago (24h) or an RFC 3339 time")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many entries (default: the server's)")
	return cmd
}
