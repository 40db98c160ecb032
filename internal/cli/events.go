package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// StreamEvent is one event of the server's live stream (GET /api/events):
// its name ("execution", "log", "metrics", "build") and its JSON.
type StreamEvent struct {
	Name string
	Data json.RawMessage
}

// ExecutionEvent is an "execution" event: a call finished (or an async
// one was queued or began an attempt).
type ExecutionEvent struct {
	ExecutionID string    `json:"executionId"`
	FunctionID  string    `json:"functionId"`
	Function    string    `json:"function"`
	Status      fn.Status `json:"status"`
	StartedAt   time.Time `json:"startedAt"`
	DurationMs  float64   `json:"durationMs"`
	ColdStart   bool      `json:"coldStart"`
	Trigger     string    `json:"trigger,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// LogEvent is a "log" event: a part of a running call's output.
type LogEvent struct {
	ExecutionID string `json:"executionId"`
	FunctionID  string `json:"functionId"`
	Function    string `json:"function"`
	Data        string `json:"data"`
}

// StreamOptions choose what Stream follows.
type StreamOptions struct {
	Function string // a name or id; "" for every function
	Logs     bool   // log events too (?logs=1)
}

// Stream follows the server's live event stream and calls on for each
// event until ctx ends (then it returns nil), the stream breaks, or on
// returns an error. The first event is always a "metrics" snapshot: once
// it has come the server is sending everything asked for.
func (c *Client) Stream(ctx context.Context, o StreamOptions, on func(StreamEvent) error) error {
	q := url.Values{}
	if o.Function != "" {
		q.Set("function", o.Function)
	}
	if o.Logs {
		q.Set("logs", "1")
	}
	p := "/api/events"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+p, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	// The client's timeout bounds whole replies: a stream has none.
	hc := &http.Client{Transport: c.HTTP.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		apiErr := &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(b.String())}
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if json.Unmarshal([]byte(b.String()), &e) == nil {
			apiErr.Code, apiErr.Message, apiErr.Field = e.Error.Code, e.Error.Message, e.Error.Field
		}
		if o.Function != "" {
			return fmt.Errorf("follow %s: %w", o.Function, apiErr)
		}
		return fmt.Errorf("follow events: %w", apiErr)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev StreamEvent
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" {
				ev.Data = json.RawMessage(data.String())
				if err := on(ev); err != nil {
					return err
				}
			}
			ev = StreamEvent{}
			data.Reset()
		case strings.HasPrefix(line, "event:"):
			ev.Name = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(line[len("data:"):], " "))
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return fmt.Errorf("event stream: the server ended it")
}
