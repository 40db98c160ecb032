package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/cli"
)

// buildProgress shows the builds of the functions deploy changes, from
// the live stream's "build" events, while deploy waits for them (a create
// or a code change answers once the build is done): on a terminal one
// line rewritten in place with the build's last line, and a line when it
// ends; otherwise a plain line per build line.
type buildProgress struct {
	w     io.Writer
	tty   bool
	names map[string]bool
	p     cli.Painter

	mu      sync.Mutex
	pending bool            // a line is on the terminal, to be rewritten
	printed map[string]bool // functions whose build printed a line
	running map[string]bool // functions whose build began and has not ended
	changed chan struct{}   // closed and replaced when running changes
}

type buildEventData struct {
	Function string `json:"function"`
	State    string `json:"state"`
	Line     string `json:"line"`
}

// followBuilds starts showing the builds of the functions named, and
// returns what stops it. It waits until the server has subscribed it (15
// s at most), so that no line of a build is missed; a server that cannot
// stream leaves deploy without progress, not failed.
func followBuilds(ctx context.Context, c *cli.Client, std stdio, p cli.Painter, names map[string]bool) (stop func()) {
	f, ok := std.errOut.(*os.File)
	bp := &buildProgress{w: std.errOut, tty: ok && isTerminal(f), names: names, p: p, printed: map[string]bool{},
		running: map[string]bool{}, changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	subscribed := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(done)
		_ = c.Stream(ctx, cli.StreamOptions{}, func(ev cli.StreamEvent) error {
			switch ev.Name {
			case "metrics":
				once.Do(func() { close(subscribed) })
			case "build":
				var b buildEventData
				if json.Unmarshal(ev.Data, &b) == nil && bp.names[b.Function] {
					bp.show(b)
				}
			}
			return nil
		})
	}()
	select {
	case <-subscribed:
	case <-done:
	case <-time.After(15 * time.Second):
	}
	return func() {
		// The end of a build reaches the stream about when deploy's
		// call returns, maybe just after: wait for it a while.
		bp.waitEnded(done, 15*time.Second)
		cancel()
		<-done
		bp.mu.Lock()
		if bp.pending {
			fmt.Fprint(bp.w, "\r\x1b[K")
		}
		bp.mu.Unlock()
	}
}

// show prints a build event. A build that printed nothing (code without
// dependencies to install) shows nothing but a failure.
func (bp *buildProgress) show(b buildEventData) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	ended := b.State == "ready" || b.State == "failed"
	if ended != !bp.running[b.Function] {
		if ended {
			delete(bp.running, b.Function)
		} else {
			bp.running[b.Function] = true
		}
		close(bp.changed)
		bp.changed = make(chan struct{})
	}
	if b.Line == "" && !ended || ended && b.State != "failed" && !bp.printed[b.Function] {
		return
	}
	bp.printed[b.Function] = !ended
	if !bp.tty {
		switch {
		case b.State == "failed":
			fmt.Fprintf(bp.w, "build %s: failed: %s\n", b.Function, b.Line)
		case ended:
			fmt.Fprintf(bp.w, "build %s: %s\n", b.Function, b.State)
		default:
			fmt.Fprintf(bp.w, "build %s: %s\n", b.Function, b.Line)
		}
		return
	}
	fmt.Fprint(bp.w, "\r\x1b[K")
	switch {
	case b.State == "failed":
		fmt.Fprintln(bp.w, bp.p.Paint("build of "+b.Function+" failed: "+b.Line, "red"))
		bp.pending = false
	case ended:
		fmt.Fprintln(bp.w, bp.p.Paint("built "+b.Function, "green"))
		bp.pending = false
	default:
		line := b.Line
		if r := []rune(line); len(r) > 100 {
			line = string(r[:99]) + "…"
		}
		fmt.Fprint(bp.w, bp.p.Paint("building "+b.Function+": ", "dim")+line)
		bp.pending = true
	}
}

// waitEnded waits until no build that began has yet to end, the stream
// ends (done) or timeout passes.
func (bp *buildProgress) waitEnded(done <-chan struct{}, timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		bp.mu.Lock()
		n, changed := len(bp.running), bp.changed
		bp.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-done:
			return
		case <-deadline:
			return
		}
	}
}
