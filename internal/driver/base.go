package driver

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Base is the part of an Instance every driver shares: the connection to
// the worker, what loading the handler printed, why Nimbus killed the
// instance (the first reason given wins) and how it ended. A driver embeds
// a *Base, adds Stats, and supplies the rest: how to kill its worker (to
// NewBase) and, once the worker has stopped, how it ended (Exited).
type Base struct {
	conn  *Conn
	kill  func() error
	grace time.Duration

	initLogs initLogs

	mu     sync.Mutex
	reason string // why Nimbus killed it; the first reason wins
	exit   ExitInfo
	done   chan struct{}
}

// NewBase returns the base of an instance whose worker kill stops. kill is
// called on every Kill, also after the worker has stopped; it need not wait
// for the worker to be gone, Exited says that. grace is how long a worker
// whose response stream broke has to stop by itself before it is killed.
func NewBase(kill func() error, grace time.Duration) *Base {
	return &Base{kill: kill, grace: grace, done: make(chan struct{})}
}

// Connect starts speaking the runtime protocol with the worker: responses
// come from r, requests go to w. A stream that breaks while the worker
// lives on leaves a worker of no use: it is killed after the grace period.
func (b *Base) Connect(r io.Reader, w io.Writer) {
	b.conn = NewConn(r, w, b.broken)
}

// StreamEnded is closed once the worker's response stream has ended
// (EOF, or an error) and everything it held has been read: a driver
// closes the stream's file only after it, or it would cut off what a
// worker wrote just before it exited (the load error of a handler that
// failed to load).
func (b *Base) StreamEnded() <-chan struct{} {
	if b.conn == nil { // never connected: nothing to read
		ended := make(chan struct{})
		close(ended)
		return ended
	}
	return b.conn.Dead()
}

// Load sends the init frame and waits for the handler to load. When it
// does not, the error is what Start returns (see FailStart).
func (b *Base) Load(ctx context.Context, in runtime.Init) error {
	logs, err := b.conn.Init(ctx, in)
	if err != nil {
		return b.FailStart(ctx, err, logs)
	}
	b.initLogs.set(logs)
	return nil
}

// FailStart kills a worker whose start failed with err and returns what
// Start returns: an *InitError for a handler that failed to load (with
// what loading printed, logs), ctx's error when ctx ended, else the
// *ExitError of a worker that died.
func (b *Base) FailStart(ctx context.Context, err error, logs string) error {
	var rtErr *runtime.Error
	switch {
	case errors.As(err, &rtErr):
		_ = b.Kill("handler failed to load")
		return &InitError{Err: rtErr, Logs: logs}
	case ctx.Err() != nil:
		_ = b.Kill(killReason(ctx))
		return ctx.Err()
	}
	return b.died(err)
}

// Invoke implements Instance. When ctx ends before the response, the
// worker is killed and ctx's error returned; the kill is also asked for
// after the call returns, because a context's done channel closes before
// its after-functions start, so the deferred stop can beat the AfterFunc.
// A response over the frame limit kills the worker too. Any other failure
// is a worker that died: an *ExitError. What loading printed goes before
// the first response's logs.
func (b *Base) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	stop := context.AfterFunc(ctx, func() { b.stop(killReason(ctx)) })
	defer stop()
	resp, err := b.conn.Invoke(ctx, req)
	switch {
	case err == nil:
		if s := b.initLogs.take(); s != "" {
			resp.Logs = s + resp.Logs
			if resp.LogTimes != nil {
				// What loading printed came before the call: its lines
				// are given the call's start.
				lines := strings.Count(s[:len(s)-1], "\n") + 1
				if !strings.HasSuffix(s, "\n") {
					lines-- // the call's first line goes on from it
				}
				resp.LogTimes = append(make([]int, lines, lines+len(resp.LogTimes)), resp.LogTimes...)
			}
		}
		return resp, nil
	case ctx.Err() != nil:
		b.stop(killReason(ctx))
		return nil, ctx.Err()
	case errors.Is(err, runtime.ErrFrameTooLarge):
		b.stop("response too large")
		return nil, err
	}
	return nil, b.died(err)
}

// Kill implements Instance: it records reason, unless the instance was
// killed for another reason or has stopped, and kills the worker.
func (b *Base) Kill(reason string) error {
	b.setReason(reason)
	return b.kill()
}

// stop records reason and kills the worker in the background: the call
// that ended need not wait for the kill (an Engine API call, for Docker).
func (b *Base) stop(reason string) {
	b.setReason(reason)
	go func() { _ = b.kill() }()
}

func (b *Base) setReason(reason string) {
	b.mu.Lock()
	if b.reason == "" && !IsClosed(b.done) {
		b.reason = reason
	}
	b.mu.Unlock()
}

// Reason is why Nimbus killed the instance, or "" if it has not.
func (b *Base) Reason() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reason
}

// Exited records how the worker ended and closes Done. The driver calls
// it once, when the worker has stopped and what it held is released. The
// reason Nimbus killed the instance, if it did, replaces info.Reason.
func (b *Base) Exited(info ExitInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reason != "" {
		info.Reason = b.reason
	}
	b.exit = info
	close(b.done)
}

// Done implements Instance.
func (b *Base) Done() <-chan struct{} { return b.done }

// Exit implements Instance.
func (b *Base) Exit() ExitInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.exit
}

// died waits for a worker whose stream broke with err to stop, kills it if
// it does not within the grace period, and returns the ExitError that
// explains it. A worker still not stopped a minute after its kill (a
// daemon that no longer answers) is given up.
func (b *Base) died(err error) error {
	select {
	case <-b.done:
	case <-time.After(b.grace):
		reason := "broke the protocol: " + err.Error()
		_ = b.Kill(reason)
		select {
		case <-b.done:
		case <-time.After(time.Minute):
			return &ExitError{Exit: ExitInfo{Code: -1, Reason: reason}}
		}
	}
	return &ExitError{Exit: b.Exit()}
}

// broken is called when the response stream fails. A worker that closed
// its stream, or wrote something that is not a frame, but lives on is of
// no use: give it the grace period to stop, then kill it.
func (b *Base) broken(error) {
	go func() {
		select {
		case <-b.done:
		case <-time.After(b.grace):
			_ = b.Kill("broke the protocol")
		}
	}()
}

// initLogs holds what loading a handler printed until the instance's first
// response takes it. Calls sharing an instance may race for it.
type initLogs struct {
	mu sync.Mutex
	s  string
}

func (l *initLogs) set(s string) {
	l.mu.Lock()
	l.s = s
	l.mu.Unlock()
}

func (l *initLogs) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.s
	l.s = ""
	return s
}

// killReason is why a worker is killed when ctx ends under a call.
func killReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	return "cancelled"
}
