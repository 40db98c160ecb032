package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

func versionsCmd(std stdio) *cobra.Command {
	var conn connFlags
	var format string
	cmd := &cobra.Command{
		Use:   "versions NAME",
		Short: "list a function's published versions",
		Args:  args(cobra.ExactArgs(1)),
		RunE: readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, a []string) ([]byte, []*fn.Version, error) {
			return c.Versions(ctx, a[0])
		}, cli.WriteVersions),
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	return cmd
}

func publishCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var description string
	cmd := &cobra.Command{
		Use:   "publish NAME",
		Short: "publish a function's draft as a new immutable version",
		Long: `Publishes the draft ($LATEST) as the next numbered version and prints its
number. A draft that did not change since the newest version publishes
nothing: that version's number is printed.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			v, created, err := c.Publish(cmd.Context(), a[0], description)
			if err != nil {
				return err
			}
			if created {
				g.say(std, "published %s version %d", a[0], v.Version)
			} else {
				g.say(std, "unchanged: %s version %d", a[0], v.Version)
			}
			fmt.Fprintln(std.out, v.Version)
			return nil
		},
	}
	conn.add(cmd.Flags())
	cmd.Flags().StringVarP(&description, "description", "m", "", "what the version is")
	return cmd
}

func aliasCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "list, point, roll back and delete a function's aliases",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(fmt.Errorf("alias: want a subcommand: list, set, rollback or delete"))
		},
	}
	conn.add(cmd.PersistentFlags())

	var format string
	list := &cobra.Command{
		Use:   "list NAME",
		Short: "list a function's aliases and where they send calls",
		Args:  args(cobra.ExactArgs(1)),
		RunE: readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, a []string) ([]byte, []*fn.Alias, error) {
			return c.Aliases(ctx, a[0])
		}, cli.WriteAliases),
	}
	formatFlag(list, &format)

	var weight string
	set := &cobra.Command{
		Use:   "set NAME ALIAS VERSION",
		Short: "point an alias at a version (creating it), optionally splitting calls with a second",
		Args:  args(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, a []string) error {
			version, err := strconv.Atoi(a[2])
			if err != nil {
				return usage(fmt.Errorf("alias set: VERSION %q is not a number", a[2]))
			}
			var weights map[string]float64
			if weight != "" {
				v, w, ok := strings.Cut(weight, "=")
				share, err := strconv.ParseFloat(w, 64)
				if !ok || err != nil {
					return usage(fmt.Errorf("alias set: --weight %q: want VERSION=SHARE, like 7=0.1", weight))
				}
				weights = map[string]float64{v: share}
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			al, err := c.SetAlias(cmd.Context(), a[0], a[1], version, weights)
			if err != nil {
				return err
			}
			g.say(std, "%s:%s → %s", a[0], a[1], cli.Routes(al))
			return nil
		},
	}
	set.Flags().StringVar(&weight, "weight", "", "send a share of the calls to another version: VERSION=SHARE, like 7=0.1")

	rollback := &cobra.Command{
		Use:   "rollback NAME ALIAS",
		Short: "move an alias back to where it pointed before its last move",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			al, err := c.Rollback(cmd.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			g.say(std, "%s:%s rolled back → %s", a[0], a[1], cli.Routes(al))
			return nil
		},
	}

	del := &cobra.Command{
		Use:   "delete NAME ALIAS",
		Short: "delete an alias",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			if err := c.DeleteAlias(cmd.Context(), a[0], a[1]); err != nil {
				return err
			}
			g.say(std, "deleted alias %s:%s", a[0], a[1])
			return nil
		},
	}
	cmd.AddCommand(list, set, rollback, del)
	return cmd
}

func replayCmd(std stdio) *cobra.Command {
	var conn connFlags
	var format, qualifier string
	cmd := &cobra.Command{
		Use:   "replay NAME ID",
		Short: "run a recorded execution's event again and compare the two runs",
		Args:  args(cobra.ExactArgs(2)),
		RunE: readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, a []string) ([]byte, *cli.Replayed, error) {
			return c.Replay(ctx, a[0], a[1], qualifier)
		}, func(w io.Writer, r *cli.Replayed) error { return cli.WriteReplay(w, r) }),
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&qualifier, "qualifier", "", "the version or alias to run it against ($LATEST by default)")
	return cmd
}

func deadLettersCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "list, replay and delete the async calls that failed for good",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(fmt.Errorf("dead-letters: want a subcommand: list, replay or delete"))
		},
	}
	conn.add(cmd.PersistentFlags())
	var format string
	list := &cobra.Command{
		Use:   "list NAME",
		Short: "list a function's dead letters, oldest first",
		Args:  args(cobra.ExactArgs(1)),
		RunE: readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, a []string) ([]byte, []cli.DeadLetter, error) {
			return c.DeadLetters(ctx, a[0])
		}, cli.WriteDeadLetters),
	}
	formatFlag(list, &format)
	replay := &cobra.Command{
		Use:   "replay NAME ID",
		Short: "queue a dead letter again as a new async call, and print its execution id",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			id, err := c.ReplayDeadLetter(cmd.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(std.out, id)
			return nil
		},
	}
	var all bool
	del := &cobra.Command{
		Use:   "delete NAME [ID]",
		Short: "drop a dead letter, or all of a function's with --all",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (len(a) == 2) == all {
				return usage(fmt.Errorf("dead-letters delete: name one ID, or --all"))
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			id := ""
			if len(a) == 2 {
				id = a[1]
			}
			if err := c.DeleteDeadLetter(cmd.Context(), a[0], id); err != nil {
				return err
			}
			g.say(std, "deleted")
			return nil
		},
	}
	del.Flags().BoolVar(&all, "all", false, "drop every dead letter of the function")
	cmd.AddCommand(list, replay, del)
	return cmd
}

func schedulesCmd(std stdio) *cobra.Command {
	var conn connFlags
	var format string
	cmd := &cobra.Command{
		Use:   "schedules [NAME]",
		Short: "list the schedules of a function, or of every function, with their next runs",
		Long: `Lists schedules (set in a function's settings: nimbus.yaml's schedules,
or nimbus fn edit) with when each fires, what it runs and its next run.`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, a []string) ([]byte, []cli.ScheduleRow, error) {
			name := ""
			if len(a) == 1 {
				name = a[0]
			}
			return c.Schedules(ctx, name)
		}, cli.WriteSchedules),
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	return cmd
}
