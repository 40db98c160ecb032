package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

// topCmd is a live view of the server's functions. It is plain ANSI (the
// alternate screen, a redraw from the top every refresh, cbreak input for
// q) rather than a TUI library: one screen that redraws itself, with one
// key, needs neither widgets, layout nor an event model, and a new
// dependency in the server's binary for it would not pay its way.
func topCmd(g *globals, std stdio) *cobra.Command {
	var conn connFlags
	var window time.Duration
	var format string
	cmd := &cobra.Command{
		Use:   "top",
		Short: "a live view of the functions by call rate, errors, p95 and instances",
		Long: `Shows the server's functions, busiest first: calls per second, calls and
errors over --window, p50 and p95 latency, instances (active and busy) and
a sparkline of their calls. On a terminal it fills the screen and redraws
at each snapshot of the server's live event stream (every second); q or
Ctrl-C quits. When standard output is not a terminal it prints one table
and exits; so does -o json|yaml, with {"system": GET /api/metrics/system,
"functions": [GET /api/metrics/functions/ID of each, with its series]}.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			c, err := conn.client(std)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			p := g.painter(std)
			out, ok := std.out.(*os.File)
			if !ok || !isTerminal(out) || format != cli.FormatTable {
				raw, sys, rows, err := overview(ctx, c, window, false)
				if err != nil {
					return err
				}
				if format != cli.FormatTable {
					return cli.WriteRaw(std.out, format, raw)
				}
				return cli.WriteTop(std.out, c.URL, time.Now(), sys, rows, p)
			}
			return runTop(ctx, c, out, std.in, window, p)
		},
	}
	conn.add(cmd.Flags())
	formatFlag(cmd, &format)
	cmd.Flags().DurationVar(&window, "window", time.Minute, "the window calls, errors and latency cover")
	return cmd
}

// runTop redraws the view on out at each snapshot of the event stream
// (and every few seconds without one) until ctx ends or q is typed.
func runTop(ctx context.Context, c *cli.Client, out *os.File, in io.Reader, window time.Duration, p cli.Painter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		if restore, err := cbreak(f); err == nil {
			defer restore()
		}
		go func() {
			b := make([]byte, 1)
			for {
				if n, err := f.Read(b); err != nil || n == 1 && (b[0] == 'q' || b[0] == 'Q' || b[0] == 3) {
					cancel()
					return
				}
			}
		}()
	}
	io.WriteString(out, "\x1b[?1049h\x1b[?25l") // the alternate screen, no cursor
	defer io.WriteString(out, "\x1b[?25h\x1b[?1049l")

	snapshots := make(chan *cli.Metrics, 1)
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- c.Stream(ctx, cli.StreamOptions{}, func(ev cli.StreamEvent) error {
			if ev.Name != "metrics" {
				return nil
			}
			var m cli.Metrics
			if json.Unmarshal(ev.Data, &m) == nil {
				select {
				case <-snapshots: // a redraw was behind: the newer one wins
				default:
				}
				snapshots <- &m
			}
			return nil
		})
	}()
	var note string
	draw := func(sys *cli.Metrics) {
		var buf bytes.Buffer
		buf.WriteString("\x1b[H\x1b[2J")
		_, rows, err := c.FunctionsMetrics(ctx, window, true)
		if ctx.Err() != nil {
			return
		}
		if sys == nil {
			_, sys, _ = c.SystemMetrics(ctx, window, false)
		}
		if sys == nil {
			sys = &cli.Metrics{Window: window.String()}
		}
		_ = cli.WriteTop(&buf, c.URL, time.Now(), sys, rows, p)
		if err != nil {
			buf.WriteString("\n" + p.Paint(err.Error(), "red") + "\n")
		}
		if note != "" {
			buf.WriteString("\n" + p.Paint(note, "dim") + "\n")
		}
		buf.WriteString("\n" + p.Paint("q: quit", "dim"))
		out.Write(bytes.ReplaceAll(buf.Bytes(), []byte("\n"), []byte("\x1b[K\r\n")))
	}
	draw(nil)
	fallback := time.NewTicker(3 * time.Second)
	defer fallback.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case sys := <-snapshots:
			fallback.Reset(3 * time.Second)
			if sys.Window == "" || window != time.Minute {
				sys = nil // the snapshot's window is the last minute
			}
			draw(sys)
		case err := <-streamErr:
			if ctx.Err() == nil && err != nil {
				note = "live stream: " + strings.TrimSpace(err.Error()) + "; polling"
			}
		case <-fallback.C:
			draw(nil)
		}
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// cbreak turns off line buffering and echo on the terminal f, keeping
// signals (Ctrl-C still interrupts), and returns what restores it.
func cbreak(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
