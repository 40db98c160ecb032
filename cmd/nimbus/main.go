// Command nimbus is the Nimbus serverless platform: `nimbus serve` runs
// it, and the other commands administer it or, as its client, deploy,
// call and inspect functions over its REST API.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nimbusfaas/nimbus/internal/cli"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Exit statuses, which scripts may rely on.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2 // a command line nimbus does not understand
	exitNotFound = 3 // no such function, execution or context
	exitFunction = 4 // invoke: the function ran and failed
)

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

// runMain runs the command in args and returns the process's exit status
// (exitOK and the others above).
func runMain(args []string) int {
	root := newRoot(osStdio())
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintln(os.Stderr, "nimbus:", err)
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// usageError is a command line that nimbus does not understand.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// exitCode classes an error as one of the exit statuses.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command "):
		return exitUsage
	case errors.Is(err, cli.ErrFunctionFailed):
		return exitFunction
	case errors.Is(err, fn.ErrNotFound):
		return exitNotFound
	}
	return exitError
}

// args wraps an argument check so that its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error { return usage(check(cmd, a)) }
}

// maxArgs allows at most n operands.
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) > n {
			return usage(fmt.Errorf("%s: unexpected argument %q", cmd.Name(), a[n]))
		}
		return nil
	}
}

// globals are the flags every command has.
type globals struct {
	quiet   bool
	noColor bool
}

const usageTemplate = `{{usageLine .}}{{if .HasAvailableSubCommands}}

{{commandList .}}{{end}}{{if .HasAvailableLocalFlags}}

flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

global flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasExample}}

examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Run '{{.CommandPath}} COMMAND --help' for more about a command.{{end}}
`

// usageLine is a command's synopsis: its own, that of its only
// subcommand, or "COMMAND" for a choice of them.
func usageLine(c *cobra.Command) string {
	if c.HasAvailableSubCommands() {
		var subs []*cobra.Command
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				subs = append(subs, s)
			}
		}
		if len(subs) == 1 {
			return "usage: " + subs[0].UseLine()
		}
		return "usage: " + c.CommandPath() + " COMMAND [flags]"
	}
	return "usage: " + c.UseLine()
}

// commandList lists a command's subcommands, a line each: the full path
// (so that it can be pasted) and what it does.
func commandList(c *cobra.Command) string {
	width := 0
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			width = max(width, len(s.CommandPath()))
		}
	}
	var b strings.Builder
	list := func(title, group string) {
		var lines []string
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() && s.GroupID == group {
				lines = append(lines, fmt.Sprintf("  %-*s  %s\n", width, s.CommandPath(), s.Short))
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "\n%s\n%s", title, strings.Join(lines, ""))
		}
	}
	list("commands:", "")
	for _, g := range c.Groups() {
		list(g.Title, g.ID)
	}
	return strings.Trim(b.String(), "\n")
}

func init() {
	cobra.AddTemplateFunc("usageLine", usageLine)
	cobra.AddTemplateFunc("commandList", commandList)
}

func newRoot(std stdio) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "nimbus",
		Short: "a self-hosted serverless function platform",
		Long: `nimbus: a self-hosted serverless function platform.

The server commands run and administer Nimbus on this host: settings come
from flags, then the environment, then .env (see .env.example). A store
LOCATION is sqlite:PATH or a MongoDB URI (mongodb://HOST/DB); export and
import default to the store nimbus serve uses (MONGODB_URI, else the SQLite
file in --data-dir).

The client commands (deploy, invoke, fn, logs, metrics, top, ...) call a
Nimbus server's REST API: --url, else NIMBUS_URL, else the current context
(nimbus context), else ` + cli.DefaultURL + `; the API key is --key, else
NIMBUS_API_KEY, else the context's.

Exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 the function failed
(invoke).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Help()
			return usage(errors.New("want a command"))
		},
	}
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	root.SetIn(std.in)
	root.SetOut(std.out)
	root.SetErr(std.errOut)
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "print only results and errors, no progress")
	root.PersistentFlags().BoolVar(&g.noColor, "no-color", false, "no colours, even on a terminal (so does NO_COLOR)")
	root.SetCompletionCommandGroupID("client")

	// A noun with its verbs (as fn, secrets and keys are) when there is
	// more than one verb.
	root.AddGroup(
		&cobra.Group{ID: "client", Title: "client commands (over the REST API):"},
		&cobra.Group{ID: "server", Title: "server commands (on this host):"},
	)
	for _, c := range []*cobra.Command{
		initCmd(g), deployCmd(g, std), invokeCmd(g, std), fnCmd(g, std),
		executionsCmd(g, std), executionCmd(g, std), publishCmd(g, std), versionsCmd(std),
		aliasCmd(g, std), replayCmd(std), deadLettersCmd(g, std), schedulesCmd(std), logsCmd(g, std), metricsCmd(g, std), topCmd(g, std),
		secretsCmd(g, std), keysCmd(g, std), auditCmd(std), contextCmd(g, std),
	} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		serveCmd(), imagesCmd(), microvmCmd(), benchCmd(), simulateCmd(),
		exportCmd(std), importCmd(std), migrateCmd(std), versionCmd(),
	} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of this binary",
		Long: `Prints the version of this binary: the one linked in at build time, else
the commit it was built from ("-dirty" when the tree had changes).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "nimbus", versionString())
			return nil
		},
	}
}

// signalContext is the command's context, cancelled on SIGINT or SIGTERM:
// export, import and migrate stop cleanly, closing their stores.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
}
