package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nimbusfaas/nimbus/internal/cli"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// connFlags choose the server a client command talks to.
type connFlags struct {
	url, key, context string
}

func (c *connFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&c.url, "url", "", "the server's URL (NIMBUS_URL, else the context's, else "+cli.DefaultURL+")")
	fs.StringVar(&c.key, "key", "", "the API key (NIMBUS_API_KEY, else the context's)")
	fs.StringVar(&c.context, "context", "", "use this context instead of the current one (nimbus context list)")
}

// client is a client of the server that the flags, the environment and
// the contexts name, in that order.
func (c *connFlags) client(std stdio) (*cli.Client, error) {
	path, err := cli.ConfigPath(std.env)
	if err != nil {
		return nil, err
	}
	ctxs, err := cli.LoadContexts(path)
	if err != nil {
		return nil, err
	}
	conn, err := ctxs.Resolve(c.url, c.key, c.context, std.env)
	if err != nil {
		return nil, err
	}
	return cli.NewClient(conn.URL, conn.Key), nil
}

// painter colours standard output when it is a terminal and nothing
// forbids it.
func (g *globals) painter(std stdio) cli.Painter {
	f, ok := std.out.(*os.File)
	return cli.Painter{On: ok && !g.noColor && cli.UseColour(f, std.env)}
}

// say writes a progress line to standard error unless --quiet.
func (g *globals) say(std stdio, format string, a ...any) {
	if !g.quiet {
		fmt.Fprintf(std.errOut, format+"\n", a...)
	}
}

// formatFlag adds -o to a read command.
func formatFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", cli.FormatTable, "output format: "+strings.Join(cli.Formats, ", ")+" (json: the API's JSON)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(cli.Formats, cobra.ShellCompDirectiveNoFileComp))
}

func checkFormat(format string) error { return usage(cli.CheckFormat(format)) }

// eachRun is the RunE of a command that does one thing (do) to each of
// its arguments, in order, stopping at the first failure, and says so of
// each (done, a format with the argument).
func (g *globals) eachRun(conn *connFlags, std stdio, done string, do func(*cli.Client, context.Context, string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, a []string) error {
		c, err := conn.client(std)
		if err != nil {
			return err
		}
		for _, arg := range a {
			if err := do(c, cmd.Context(), arg); err != nil {
				return err
			}
			g.say(std, done, arg)
		}
		return nil
	}
}

// readRun is the RunE of a read command: it fetches what it shows (the
// API's JSON, and it decoded), then prints the JSON in the format asked
// for, or table for the table.
func readRun[T any](conn *connFlags, std stdio, format *string,
	fetch func(ctx context.Context, c *cli.Client, args []string) ([]byte, T, error),
	table func(w io.Writer, v T) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, a []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := conn.client(std)
		if err != nil {
			return err
		}
		raw, v, err := fetch(cmd.Context(), c, a)
		if err != nil {
			return err
		}
		if *format != cli.FormatTable {
			return cli.WriteRaw(std.out, *format, raw)
		}
		return table(std.out, v)
	}
}

func fnCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "fn",
		Short: "list, show, edit, delete and download functions",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage(errors.New("fn: want a subcommand: list, get, edit, delete or code"))
		},
	}
	conn.add(cmd.PersistentFlags())

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "list the functions",
		Args:  args(cobra.NoArgs),
		RunE: readRun(&conn, std, &listFormat, func(ctx context.Context, c *cli.Client, _ []string) ([]byte, []*fn.Function, error) {
			return c.ListFunctions(ctx)
		}, cli.WriteFunctions),
	}
	formatFlag(list, &listFormat)

	var getFormat string
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "show a function's settings and code",
		Args:  args(cobra.ExactArgs(1)),
		RunE: readRun(&conn, std, &getFormat, func(ctx context.Context, c *cli.Client, a []string) ([]byte, *fn.Function, error) {
			return c.GetFunction(ctx, a[0])
		}, cli.WriteFunction),
	}
	formatFlag(get, &getFormat)

	del := &cobra.Command{
		Use:   "delete NAME...",
		Short: "delete functions, their instances and their history",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE:  g.eachRun(&conn, std, "deleted %s", (*cli.Client).DeleteFunction),
	}

	var out string
	code := &cobra.Command{
		Use:   "code NAME",
		Short: "download a function's code as a zip",
		Long: `Downloads a function's code: the zip its instances run, byte for byte, to
NAME.zip, to the file -o names, or with -o - to standard output.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			zip, err := c.Code(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := std.out.Write(zip)
				return err
			}
			if out == "" {
				out = a[0] + ".zip"
			}
			if err := os.WriteFile(out, zip, 0o644); err != nil {
				return err
			}
			g.say(std, "wrote %s (%d bytes)", out, len(zip))
			return nil
		},
	}
	code.Flags().StringVarP(&out, "output", "o", "", "write the zip to this file (default NAME.zip; - for standard output)")

	cmd.AddCommand(list, get, del, code, editCmd(g, std, &conn))
	return cmd
}

func executionsCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var format, status string
	var limit int
	cmd := &cobra.Command{
		Use:   "executions NAME",
		Short: "list a function's executions, newest first",
		Args:  args(cobra.ExactArgs(1)),
		RunE: readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, a []string) ([]byte, []*fn.Execution, error) {
			return c.Executions(ctx, a[0], status, limit)
		}, func(w io.Writer, execs []*fn.Execution) error { return cli.WriteExecutions(w, execs, g.painter(std)) }),
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&status, "status", "", "only executions of this status: success, error, timeout, oom, crashed, rejected, queued, running")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (the server's default is 50, at most 1000)")
	return cmd
}

func executionCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var format string
	cmd := &cobra.Command{
		Use:   "execution NAME ID",
		Short: "show one execution in full: its event, result or error, and logs",
		Args:  args(cobra.ExactArgs(2)),
		RunE: readRun(&conn, std, &format, func(ctx context.Context, c *cli.Client, a []string) ([]byte, *fn.Execution, error) {
			return c.Execution(ctx, a[0], a[1])
		}, func(w io.Writer, ex *fn.Execution) error { return cli.WriteExecution(w, ex, g.painter(std)) }),
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	return cmd
}

func invokeCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var data string
	var async, logs bool
	cmd := &cobra.Command{
		Use:   "invoke NAME",
		Short: "call a function and print its result",
		Long: `Calls a function with an event and waits for it: prints the result (raw
JSON, one line) to standard output and, with --logs, what the call printed
to standard error. Exits 4, with the error on standard error, when the call
ran and failed (error, timeout, oom, crashed). With --async the call is
queued and its execution id printed.`,
		Example: `  nimbus invoke hello -d '{"name": "Ada"}'
  nimbus invoke hello -d @event.json --logs
  echo '{}' | nimbus invoke hello -d -`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			event, err := readEvent(data, std.in)
			if err != nil {
				return err
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			if async {
				id, err := c.InvokeAsync(cmd.Context(), a[0], event)
				if err != nil {
					return err
				}
				fmt.Fprintln(std.out, id)
				return nil
			}
			_, ex, err := c.Invoke(cmd.Context(), a[0], event)
			if ex != nil {
				if logs && ex.Logs != "" {
					io.WriteString(std.errOut, ex.Logs)
					if !strings.HasSuffix(ex.Logs, "\n") {
						fmt.Fprintln(std.errOut)
					}
				}
				if len(ex.Result) > 0 {
					fmt.Fprintf(std.out, "%s\n", ex.Result)
				}
			}
			return err
		},
	}
	conn.add(cmd.Flags())
	cmd.Flags().StringVarP(&data, "data", "d", "", "the event: JSON, @FILE to read it from a file, or - for standard input (default {})")
	cmd.Flags().BoolVar(&async, "async", false, "queue the call (X-Nimbus-Invocation-Type: Event) and print its execution id")
	cmd.Flags().BoolVar(&logs, "logs", false, "print the call's logs to standard error")
	cmd.Flags().BoolVar(&logs, "tail", false, "the same as --logs (Lambda's LogType: Tail)")
	return cmd
}

// readEvent reads -d: JSON, @FILE or - (standard input).
func readEvent(data string, stdin io.Reader) ([]byte, error) {
	var b []byte
	switch {
	case data == "":
		return nil, nil
	case data == "-":
		var err error
		if b, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("read the event from standard input: %w", err)
		}
	case strings.HasPrefix(data, "@"):
		var err error
		if b, err = os.ReadFile(data[1:]); err != nil {
			return nil, fmt.Errorf("read the event: %w", err)
		}
	default:
		b = []byte(data)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil // the server's default: {}
	}
	if !json.Valid(b) {
		return nil, usage(errors.New("-d: the event is not valid JSON"))
	}
	return b, nil
}
