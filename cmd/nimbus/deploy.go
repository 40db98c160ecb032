package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

func deployCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var dryRun, prune, asJSON, publish bool
	var alias string
	cmd := &cobra.Command{
		Use:   "deploy [DIR|FILE]",
		Short: "create or update the functions of a nimbus.yaml",
		Long: `Deploys the functions a spec names: FILE, or nimbus.yaml in DIR (default
the current directory). Each function's code directory is packed (less
what its .gitignore and .nimbusignore name) and compared with the server's, by content
hash, and so are its settings: a function is created, updated (its code
only when the code changed) or left unchanged. Applying the same spec twice
changes nothing. With --prune, functions on the server that the spec does
not name are deleted. --dry-run prints the plan and changes nothing.

The spec (docs/nimbus.schema.json):

  functions:
    - name: hello
      runtime: python          # or nodejs, python3.12, nodejs20.x...
      handler: main.handler
      code: ./hello            # a directory, relative to the spec (default .)
      env: {TOKEN: "${TOKEN}"} # ${VAR} from the environment; unset is an error
      memory: 128              # and timeout, driver, maxInstances, minInstances,
                               # concurrency, keepAlive, network, url, async,
                               # schedules, layers, build: as in the API

Fields left out keep the server's value, except env, network, url, async,
schedules and layers, which the spec sets whole (left out: none).

While the server builds a function's dependencies, deploy shows the
build's output: on a terminal its last line, rewritten in place; else a
line for each. --publish then publishes each function's draft as a version (unless the
newest version is the draft already) and --alias NAME points that alias at
it, creating it if need be.`,
		Example: `  nimbus deploy
  nimbus deploy --dry-run --prune
  nimbus deploy --publish --alias live`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			arg := ""
			if len(a) > 0 {
				arg = a[0]
			}
			if alias != "" && !publish {
				return usage(errors.New("--alias: only with --publish"))
			}
			path, err := cli.FindSpec(arg)
			if err != nil {
				return err
			}
			spec, err := cli.LoadSpec(path, std.env)
			if err != nil {
				return err
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			steps, err := cli.Plan(cmd.Context(), c, spec, prune)
			if err != nil {
				return err
			}
			p := g.painter(std)
			if dryRun {
				for _, st := range steps {
					st.URL = cli.PlanURL(c, st)
				}
				if asJSON {
					return writeJSON(std, steps)
				}
				fmt.Fprintf(std.out, "plan for %s (dry run: nothing changed):\n", relPath(path))
				cli.WritePlan(std.out, steps, p.Paint)
				return nil
			}
			if builds := codeChanges(steps); len(builds) > 0 && !asJSON && !g.quiet {
				stop := followBuilds(cmd.Context(), c, std, g.painter(std), builds)
				defer stop()
			}
			err = cli.Apply(cmd.Context(), c, steps, func(st *cli.Step) {
				if asJSON || g.quiet {
					return
				}
				line := fmt.Sprintf("%-9s %s", pastTense(st.Action), st.Name)
				line = p.Paint(line, map[string]string{"create": "green", "update": "yellow", "delete": "red"}[st.Action])
				if st.URL != "" {
					line += "  " + st.URL
				}
				fmt.Fprintln(std.out, line)
			})
			if err != nil {
				return err
			}
			if publish {
				if err := publishSteps(cmd.Context(), g, std, c, steps, alias, asJSON); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(std, steps)
			}
			return nil
		},
	}
	conn.add(cmd.Flags())
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan (create, update, unchanged, delete) and change nothing")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete the functions on the server that the spec does not name")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan, or what was done, as JSON")
	cmd.Flags().BoolVar(&publish, "publish", false, "then publish each function's draft as a version")
	cmd.Flags().StringVar(&alias, "alias", "", "with --publish: point this alias at each new version (created if need be)")
	return cmd
}

// publishSteps publishes the draft of each function deployed and, when
// alias is set, points it at the version; each step records both.
func publishSteps(ctx context.Context, g *globals, std stdio, c *cli.Client, steps []*cli.Step, alias string, quiet bool) error {
	for _, st := range steps {
		if st.Action == cli.ActionDelete {
			continue
		}
		v, created, err := c.Publish(ctx, st.Name, "")
		if err != nil {
			return err
		}
		st.Version = v.Version
		what := "published"
		if !created {
			what = "unchanged"
		}
		line := fmt.Sprintf("%-9s %s version %d", what, st.Name, v.Version)
		if alias != "" {
			if _, err := c.SetAlias(ctx, st.Name, alias, v.Version, nil); err != nil {
				return err
			}
			st.Alias = alias
			line += fmt.Sprintf(", alias %s", alias)
		}
		if !quiet && !g.quiet {
			fmt.Fprintln(std.out, line)
		}
	}
	return nil
}

// codeChanges names the functions whose code a plan sends: those whose
// dependencies may build while deploy waits.
func codeChanges(steps []*cli.Step) map[string]bool {
	names := map[string]bool{}
	for _, st := range steps {
		if st.Action == cli.ActionCreate || st.Action == cli.ActionUpdate && slices.Contains(st.Changes, "code") {
			names[st.Name] = true
		}
	}
	return names
}

func pastTense(action string) string {
	switch action {
	case cli.ActionCreate:
		return "created"
	case cli.ActionUpdate:
		return "updated"
	case cli.ActionDelete:
		return "deleted"
	}
	return action
}

func writeJSON(std stdio, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(std.out, "%s\n", b)
	return err
}

func relPath(p string) string {
	if r, err := filepath.Rel(".", p); err == nil && !filepath.IsAbs(r) && len(r) < len(p) {
		return r
	}
	return p
}

func initCmd(g *globals) *cobra.Command {
	var rt, dir string
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "write a function directory: a handler and a nimbus.yaml",
		Long: `Writes a directory (NAME, or --dir) holding a hello-world handler of the
runtime, a nimbus.yaml naming it, an event.json to call it with and a
.nimbusignore; then: cd NAME && nimbus deploy && nimbus invoke NAME -d @event.json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if dir == "" {
				dir = a[0]
			}
			wrote, err := cli.Init(dir, a[0], rt)
			if err != nil {
				return err
			}
			for _, f := range wrote {
				if !g.quiet {
					fmt.Fprintln(cmd.OutOrStdout(), "wrote", f)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&rt, "runtime", "python", "the handler's runtime: python or nodejs")
	cmd.Flags().StringVar(&dir, "dir", "", "the directory to write (default NAME)")
	_ = cmd.RegisterFlagCompletionFunc("runtime", cobra.FixedCompletions(cli.InitRuntimes, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
