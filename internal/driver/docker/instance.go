package docker

import (
	"context"
	"errors"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Invoke implements driver.Instance. When ctx ends first the container is
// killed.
func (c *container) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	stop := context.AfterFunc(ctx, func() {
		if err := c.Kill(killReason(ctx)); err != nil {
			c.d.log.Warn("kill container", "container", c.name, "function", c.function, "error", err)
		}
	})
	defer stop()
	resp, err := c.conn.Invoke(ctx, req)
	if err == nil {
		if c.initLogs != "" {
			resp.Logs = c.initLogs + resp.Logs
			c.initLogs = ""
		}
		return resp, nil
	}
	if ctx.Err() != nil {
		// The AfterFunc above may not have run: when ctx ends, a waiter on
		// ctx.Done can return and stop it before it starts.
		c.setReason(killReason(ctx))
		go c.Kill(killReason(ctx))
		return nil, ctx.Err()
	}
	if errors.Is(err, runtime.ErrFrameTooLarge) {
		c.Kill("response too large")
		return nil, err
	}
	return nil, c.died(err)
}

// died waits for a container whose stream broke to be reported stopped,
// kills it if it is not, and returns the ExitError that explains it.
func (c *container) died(err error) error {
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		c.Kill("broke the protocol: " + err.Error())
		select {
		case <-c.done:
		case <-time.After(time.Minute):
			return &driver.ExitError{Exit: driver.ExitInfo{Code: -1, Reason: "broke the protocol: " + err.Error()}}
		}
	}
	return &driver.ExitError{Exit: c.Exit()}
}

// failStart turns a failed Init into the error Start returns, and makes
// sure the container goes.
func (c *container) failStart(ctx context.Context, err error, logs string) error {
	var rtErr *runtime.Error
	switch {
	case errors.As(err, &rtErr):
		c.Kill("handler failed to load")
		return &driver.InitError{Err: rtErr, Logs: logs}
	case ctx.Err() != nil:
		c.Kill(killReason(ctx))
		return ctx.Err()
	}
	return c.died(err)
}

func killReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	return "cancelled"
}
