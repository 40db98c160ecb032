package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// LogsQuery chooses past executions whose logs to show.
type LogsQuery struct {
	Function string
	Status   string        // only this status; "" for all
	Since    time.Duration // only those started this long ago or later; 0 for any
	Limit    int           // at most this many, the newest
}

// PastLogs returns the executions (with their logs) that q chooses, oldest
// first, reading the function's history page by page, newest first,
// until Limit or Since is reached. now is the time Since counts back from.
func (c *Client) PastLogs(ctx context.Context, q LogsQuery, now time.Time) ([]*fn.Execution, error) {
	var out []*fn.Execution
	before := ""
	for len(out) < q.Limit {
		v := url.Values{}
		v.Set("limit", strconv.Itoa(min(q.Limit-len(out), 1000)))
		if q.Status != "" {
			v.Set("status", q.Status)
		}
		if before != "" {
			v.Set("before", before)
		}
		b, err := c.get(ctx, "/api/executions/"+url.PathEscape(q.Function)+"/history?"+v.Encode())
		if err != nil {
			return nil, fmt.Errorf("logs of %s: %w", q.Function, err)
		}
		var page struct {
			Executions []*fn.Execution `json:"executions"`
			NextBefore string          `json:"nextBefore"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("logs of %s: %w", q.Function, err)
		}
		done := page.NextBefore == ""
		for _, ex := range page.Executions {
			if q.Since > 0 && ex.StartedAt.Before(now.Add(-q.Since)) {
				done = true
				break
			}
			out = append(out, ex)
		}
		if done {
			break
		}
		before = page.NextBefore
	}
	slices.Reverse(out)
	return out, nil
}

// WriteLogs writes each execution's logs under a header line that says
// which call it was and how it ended.
func WriteLogs(w io.Writer, execs []*fn.Execution, p Painter) error {
	for _, ex := range execs {
		fmt.Fprintln(w, p.Paint(fmt.Sprintf("==> %s %s %s %.1fms", timestamp(ex.StartedAt), ex.ID, ex.Status, ex.DurationMs), StatusColour(ex.Status)))
		if _, err := io.WriteString(w, ex.Logs); err != nil {
			return err
		}
		if ex.Logs != "" && !strings.HasSuffix(ex.Logs, "\n") {
			fmt.Fprintln(w)
		}
		if ex.Error != nil {
			fmt.Fprintln(w, p.Paint(strings.TrimPrefix(ex.Error.Type+": ", ": ")+ex.Error.Message, "red"))
		}
	}
	return nil
}

// LiveLogs prints the live stream of a function's calls: their output as
// it comes, each line after its execution's id, and a line when each
// ends. With Status set, a call's output is held until it ends and
// printed only if it ended with that status. With JSON, each log and
// execution event is printed as one line of JSON instead.
type LiveLogs struct {
	W      io.Writer
	Paint  Painter
	Status fn.Status
	JSON   bool

	midLine map[string]bool     // executions whose last output ended mid-line
	held    map[string][]string // with Status: output waiting for its end
}

// Event prints ev if it is a log or an execution event.
func (l *LiveLogs) Event(ev StreamEvent) error {
	switch ev.Name {
	case "log":
		var le LogEvent
		if err := json.Unmarshal(ev.Data, &le); err != nil {
			return fmt.Errorf("log event: %w", err)
		}
		if l.Status != "" {
			if l.held == nil {
				l.held = map[string][]string{}
			}
			l.held[le.ExecutionID] = append(l.held[le.ExecutionID], le.Data)
			return nil
		}
		if l.JSON {
			return l.line(ev.Data)
		}
		l.print(le.ExecutionID, le.Data)
	case "execution":
		var ee ExecutionEvent
		if err := json.Unmarshal(ev.Data, &ee); err != nil {
			return fmt.Errorf("execution event: %w", err)
		}
		if !ee.Status.Final() {
			return nil // an async call queued or starting
		}
		held := l.held[ee.ExecutionID]
		delete(l.held, ee.ExecutionID)
		if l.Status != "" && ee.Status != l.Status {
			return nil
		}
		if l.JSON {
			for _, d := range held {
				b, _ := json.Marshal(LogEvent{ExecutionID: ee.ExecutionID, FunctionID: ee.FunctionID, Function: ee.Function, Data: d})
				if err := l.line(b); err != nil {
					return err
				}
			}
			return l.line(ev.Data)
		}
		for _, d := range held {
			l.print(ee.ExecutionID, d)
		}
		if l.midLine[ee.ExecutionID] {
			fmt.Fprintln(l.W)
			delete(l.midLine, ee.ExecutionID)
		}
		end := fmt.Sprintf("%s %s in %.1fms", ee.ExecutionID, ee.Status, ee.DurationMs)
		if ee.Error != "" {
			end += ": " + ee.Error
		}
		fmt.Fprintln(l.W, l.Paint.Paint(end, StatusColour(ee.Status)))
	}
	return nil
}

func (l *LiveLogs) line(b []byte) error {
	_, err := fmt.Fprintf(l.W, "%s\n", b)
	return err
}

// print writes data, output of execution id, with the id before each
// line that starts in it.
func (l *LiveLogs) print(id, data string) {
	if l.midLine == nil {
		l.midLine = map[string]bool{}
	}
	prefix := l.Paint.Paint(id, "dim") + " "
	var b strings.Builder
	for data != "" {
		i := strings.IndexByte(data, '\n') + 1
		if i == 0 {
			i = len(data)
		}
		if !l.midLine[id] {
			b.WriteString(prefix)
		}
		b.WriteString(data[:i])
		l.midLine[id] = !strings.HasSuffix(data[:i], "\n")
		data = data[i:]
	}
	io.WriteString(l.W, b.String())
}
