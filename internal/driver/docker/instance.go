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
	return driver.Invoke(ctx, c.conn, req, &c.initLogs, c.killFor, c.died)
}

// killFor records why the container is stopped and stops it in the
// background: the Engine API call may take a while, and the call that
// timed out need not wait for it.
func (c *container) killFor(reason string) {
	c.setReason(reason)
	go func() {
		if err := c.Kill(reason); err != nil {
			c.d.log.Warn("kill container", "container", c.name, "function", c.function, "error", err)
		}
	}()
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
		c.Kill(driver.KillReason(ctx))
		return ctx.Err()
	}
	return c.died(err)
}
