package driver

import (
	"context"
	"errors"
	"sync"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// InitLogs holds what loading a handler printed until the instance's first
// response takes it. Calls sharing an instance may race for it.
type InitLogs struct {
	mu sync.Mutex
	s  string
}

// Set records what loading printed.
func (l *InitLogs) Set(s string) {
	l.mu.Lock()
	l.s = s
	l.mu.Unlock()
}

func (l *InitLogs) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.s
	l.s = ""
	return s
}

// KillReason is why a worker is killed when ctx ends under a call.
func KillReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	return "cancelled"
}

// Invoke runs req over conn for an instance that kill stops. When ctx ends
// before the response, the worker is killed and ctx's error returned; kill
// is also called after the call returns, because a context's done channel
// closes before its after-functions start, so the deferred stop can beat
// the AfterFunc. A response over the frame limit kills the worker too. Any
// other failure is what died makes of it. What loading printed (logs) goes
// before the first response's logs.
func Invoke(ctx context.Context, conn *Conn, req *runtime.Request, logs *InitLogs, kill func(reason string), died func(error) error) (*runtime.Response, error) {
	stop := context.AfterFunc(ctx, func() { kill(KillReason(ctx)) })
	defer stop()
	resp, err := conn.Invoke(ctx, req)
	switch {
	case err == nil:
		if s := logs.take(); s != "" {
			resp.Logs = s + resp.Logs
		}
		return resp, nil
	case ctx.Err() != nil:
		kill(KillReason(ctx))
		return nil, ctx.Err()
	case errors.Is(err, runtime.ErrFrameTooLarge):
		kill("response too large")
		return nil, err
	}
	return nil, died(err)
}
