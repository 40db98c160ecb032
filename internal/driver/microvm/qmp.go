package microvm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmp is a connection to QEMU's machine protocol: one JSON object per line,
// commands answered in order, events interleaved (and ignored here).
type qmp struct {
	c net.Conn
	r *bufio.Reader
}

// dialQMP connects to the QMP socket at path, retrying while QEMU starts,
// and negotiates capabilities.
func dialQMP(ctx context.Context, path string, exited <-chan struct{}) (*qmp, error) {
	c, err := dialUnix(ctx, path, exited)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	q := &qmp{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := q.r.ReadBytes('\n'); err != nil { // the greeting
		c.Close()
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if _, err := q.exec("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return q, nil
}

// exec runs a command and returns its "return" value.
func (q *qmp) exec(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

// withDeadline bounds the commands run in fn by ctx.
func (q *qmp) withDeadline(ctx context.Context, fn func() error) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = q.c.SetDeadline(dl)
		defer q.c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = q.c.SetDeadline(time.Now()) })
	defer stop()
	err := fn()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// setIgnoreShared turns on x-ignore-shared: migration leaves out RAM that
// lives in a shared file, so a snapshot is the device state alone.
func (q *qmp) setIgnoreShared() error {
	_, err := q.exec("migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}},
	})
	return err
}

// waitMigration polls query-migrate until the migration ends.
func (q *qmp) waitMigration(ctx context.Context) error {
	for {
		ret, err := q.exec("query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		_ = json.Unmarshal(ret, &st)
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", st.Status, st.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitRunning polls query-status until the VM runs (an incoming migration
// has been loaded and the guest resumed).
func (q *qmp) waitRunning(ctx context.Context) error {
	for {
		ret, err := q.exec("query-status", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(ret, &st)
		switch st.Status {
		case "running":
			return nil
		case "inmigrate", "prelaunch", "paused", "restore-vm", "finish-migrate":
		default:
			return fmt.Errorf("vm status %q after restore", st.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (q *qmp) close() { q.c.Close() }

// dialUnix connects to a unix socket QEMU is about to create.
func dialUnix(ctx context.Context, path string, exited <-chan struct{}) (net.Conn, error) {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-exited:
			return nil, fmt.Errorf("connect %s: qemu exited", path)
		case <-time.After(2 * time.Millisecond):
		}
	}
}
