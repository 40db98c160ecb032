package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

func logsCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var format, status string
	var follow bool
	var since time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "print a function's logs, and with -f follow its calls live",
		Long: `Prints what a function's past calls printed, oldest first, each under a
line that says which call it was and how it ended: the last --limit calls,
or those of the last --since.

With -f it then follows the function: what each call prints is shown as it
prints it (a line at a time), each line after the call's execution id, and
a line when the call ends. Calls that began before nimbus logs -f started
show only their end. Stop it with Ctrl-C.

-o json prints {"executions": [...]} (the history API's records); with -f,
one JSON object a line: the past records, then the live stream's "log" and
"execution" events.`,
		Example: `  nimbus logs hello
  nimbus logs hello --since 10m --status error
  nimbus logs hello -f`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if follow && format == cli.FormatYAML {
				return usage(errors.New("logs -f: -o yaml cannot be streamed; use json"))
			}
			st := fn.Status(status)
			if st != "" && !st.Valid() {
				return usage(fmt.Errorf("--status: unknown status %q (one of %v)", status, fn.Statuses))
			}
			if limit < 1 {
				return usage(errors.New("--limit: want at least 1"))
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			past, err := c.PastLogs(ctx, cli.LogsQuery{Function: a[0], Status: status, Since: since, Limit: limit}, time.Now())
			if err != nil {
				return err
			}
			p := g.painter(std)
			switch {
			case format == cli.FormatTable:
				if err := cli.WriteLogs(std.out, past, p); err != nil {
					return err
				}
			case follow: // json: one record a line, as the events that follow
				for _, ex := range past {
					b, err := json.Marshal(ex)
					if err != nil {
						return err
					}
					fmt.Fprintf(std.out, "%s\n", b)
				}
			default:
				raw, err := json.Marshal(map[string]any{"executions": past})
				if err != nil {
					return err
				}
				return cli.WriteRaw(std.out, format, raw)
			}
			if !follow {
				return nil
			}
			live := &cli.LiveLogs{W: std.out, Paint: p, Status: st, JSON: format == cli.FormatJSON}
			subscribed := false
			return c.Stream(ctx, cli.StreamOptions{Function: a[0], Logs: true}, func(ev cli.StreamEvent) error {
				if !subscribed && ev.Name == "metrics" {
					subscribed = true
					g.say(std, "following %s (Ctrl-C to stop)", a[0])
				}
				return live.Event(ev)
			})
		},
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "then follow the function's calls live")
	cmd.Flags().DurationVar(&since, "since", 0, "only calls that started this long ago or later (10m, 2h)")
	cmd.Flags().StringVar(&status, "status", "", "only calls that ended with this status: success, error, timeout, oom, crashed, rejected")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many past calls, the newest")
	return cmd
}
