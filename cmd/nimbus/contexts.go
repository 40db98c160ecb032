package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

func contextCmd(g *globals, std stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "name servers to connect to, and choose one",
		Long: `Contexts are named connections (a URL and an API key), kept in
$XDG_CONFIG_HOME/nimbus/config.yaml (else ~/.config/nimbus/config.yaml);
the client commands use the current one unless --url, --context or
NIMBUS_URL say otherwise.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(fmt.Errorf("context: want a subcommand: add, use, list or delete"))
		},
	}
	// edit loads the config file, changes it and saves it.
	edit := func(change func(*cli.Contexts) error) error {
		path, err := cli.ConfigPath(std.env)
		if err != nil {
			return err
		}
		ctxs, err := cli.LoadContexts(path)
		if err != nil {
			return err
		}
		if err := change(ctxs); err != nil {
			return err
		}
		return ctxs.Save()
	}

	var url, key string
	var use bool
	add := &cobra.Command{
		Use:   "add NAME --url URL [--key KEY]",
		Short: "add a context, or change the one of that name",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if url == "" {
				return usage(fmt.Errorf("context add: --url is required"))
			}
			return edit(func(c *cli.Contexts) error {
				c.Set(cli.Context{Name: a[0], URL: url, Key: key})
				if use || c.Current == "" {
					c.Current = a[0]
				}
				g.say(std, "context %s: %s", a[0], url)
				return nil
			})
		},
	}
	add.Flags().StringVar(&url, "url", "", "the server's URL")
	add.Flags().StringVar(&key, "key", "", "its API key")
	add.Flags().BoolVar(&use, "use", false, "make it the current context (the first one added is)")

	useCmd := &cobra.Command{
		Use:   "use NAME",
		Short: "make a context the current one",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return edit(func(c *cli.Contexts) error {
				if err := c.Use(a[0]); err != nil {
					return err
				}
				g.say(std, "using context %s", a[0])
				return nil
			})
		},
	}

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "list the contexts; * marks the current one",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			path, err := cli.ConfigPath(std.env)
			if err != nil {
				return err
			}
			ctxs, err := cli.LoadContexts(path)
			if err != nil {
				return err
			}
			if format != cli.FormatTable {
				type view struct {
					Current  string        `json:"current"`
					Contexts []cli.Context `json:"contexts"`
				}
				v := view{Current: ctxs.Current, Contexts: ctxs.Contexts}
				for i := range v.Contexts {
					if v.Contexts[i].Key != "" {
						v.Contexts[i].Key = "***" // a listing shows no secrets
					}
				}
				if v.Contexts == nil {
					v.Contexts = []cli.Context{}
				}
				raw, err := json.Marshal(v)
				if err != nil {
					return err
				}
				return cli.WriteRaw(std.out, format, raw)
			}
			tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CURRENT\tNAME\tURL\tKEY")
			for _, c := range ctxs.Contexts {
				cur, k := "", ""
				if c.Name == ctxs.Current {
					cur = "*"
				}
				if c.Key != "" {
					k = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cur, c.Name, c.URL, k)
			}
			return tw.Flush()
		},
	}
	formatFlag(list, &format)

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "delete a context",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return edit(func(c *cli.Contexts) error {
				if err := c.Delete(a[0]); err != nil {
					return err
				}
				g.say(std, "deleted context %s", a[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, useCmd, list, del)
	return cmd
}
