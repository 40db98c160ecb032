package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// getJSON GETs path and decodes its JSON into v, returning the JSON too.
func (c *Client) getJSON(ctx context.Context, path, what string, v any) ([]byte, error) {
	b, err := c.get(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// sendFor sends v as JSON and decodes the reply into out.
func (c *Client) sendFor(ctx context.Context, method, path, what string, v, out any) (int, error) {
	resp, b, err := c.sendJSON(ctx, method, path, v, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
	}
	return resp.StatusCode, nil
}

// Versions lists a function's published versions.
func (c *Client) Versions(ctx context.Context, name string) ([]byte, []*fn.Version, error) {
	var out struct{ Versions []*fn.Version }
	b, err := c.getJSON(ctx, fnPath(name)+"/versions", "versions of "+name, &out)
	return b, out.Versions, err
}

// Publish publishes a function's draft; created is false when the draft
// was the newest version already.
func (c *Client) Publish(ctx context.Context, name, description string) (v *fn.Version, created bool, err error) {
	v = new(fn.Version)
	st, err := c.sendFor(ctx, http.MethodPost, fnPath(name)+"/versions", "publish "+name, map[string]string{"description": description}, v)
	return v, st == http.StatusCreated, err
}

// Aliases lists a function's aliases.
func (c *Client) Aliases(ctx context.Context, name string) ([]byte, []*fn.Alias, error) {
	var out struct{ Aliases []*fn.Alias }
	b, err := c.getJSON(ctx, fnPath(name)+"/aliases", "aliases of "+name, &out)
	return b, out.Aliases, err
}

func aliasPath(name, alias string) string { return fnPath(name) + "/aliases/" + url.PathEscape(alias) }

// SetAlias points an alias at version, with weights for a second one:
// it creates the alias if there is none.
func (c *Client) SetAlias(ctx context.Context, name, alias string, version int, weights map[string]float64) (*fn.Alias, error) {
	body := map[string]any{"version": version, "additionalVersionWeights": weights}
	a := new(fn.Alias)
	_, err := c.sendFor(ctx, http.MethodPut, aliasPath(name, alias), "alias "+alias, body, a)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && strings.Contains(apiErr.Message, "alias") {
		body["name"] = alias
		_, err = c.sendFor(ctx, http.MethodPost, fnPath(name)+"/aliases", "alias "+alias, body, a)
	}
	return a, err
}

// Rollback moves an alias back to where it pointed before its last move.
func (c *Client) Rollback(ctx context.Context, name, alias string) (*fn.Alias, error) {
	a := new(fn.Alias)
	_, err := c.sendFor(ctx, http.MethodPost, aliasPath(name, alias)+"/rollback", "roll back "+alias, struct{}{}, a)
	return a, err
}

// DeleteAlias deletes an alias.
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) error {
	if _, _, err := c.do(ctx, http.MethodDelete, aliasPath(name, alias), nil, "", nil); err != nil {
		return fmt.Errorf("delete alias %s: %w", alias, err)
	}
	return nil
}

// Replayed is the answer to a replay.
type Replayed struct {
	Execution *fn.Execution `json:"execution"`
	Original  *fn.Execution `json:"original"`
	Diff      struct {
		Same       bool       `json:"same"`
		Status     *[2]string `json:"status"`
		Result     []Change   `json:"result"`
		DurationMs [2]float64 `json:"durationMs"`
		Versions   [2]string  `json:"versions"`
	} `json:"diff"`
}

// Change is one difference of a replay's result.
type Change struct {
	Path   string          `json:"path"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// Replay runs a recorded execution's event again against qualifier.
func (c *Client) Replay(ctx context.Context, name, id, qualifier string) ([]byte, *Replayed, error) {
	path := "/api/executions/" + url.PathEscape(name) + "/" + url.PathEscape(id) + "/replay"
	if qualifier != "" {
		path += "?qualifier=" + url.QueryEscape(qualifier)
	}
	_, b, err := c.sendJSON(ctx, http.MethodPost, path, struct{}{}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("replay %s: %w", id, err)
	}
	r := new(Replayed)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, nil, fmt.Errorf("replay %s: %w", id, err)
	}
	return b, r, nil
}

// WriteVersions writes versions as a table.
func WriteVersions(w io.Writer, vs []*fn.Version) error {
	tw := table(w)
	fmt.Fprintln(tw, "VERSION\tDESCRIPTION\tPUBLISHED\tCODE")
	for _, v := range vs {
		sha := "-"
		if v.Function != nil && v.CodeInfo != nil {
			sha = v.CodeInfo.SHA256[:min(12, len(v.CodeInfo.SHA256))]
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", v.Version, orDash(v.Description), timestamp(v.PublishedAt), sha)
	}
	return tw.Flush()
}

// WriteAliases writes aliases as a table.
func WriteAliases(w io.Writer, as []*fn.Alias) error {
	tw := table(w)
	fmt.Fprintln(tw, "ALIAS\tROUTES\tROLLOUT\tUPDATED")
	for _, a := range as {
		rollout := "-"
		if r := a.Rollout; r != nil && r.State != "" {
			rollout = fmt.Sprintf("v%d %s", r.To, r.State)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, Routes(a), rollout, timestamp(a.UpdatedAt))
	}
	return tw.Flush()
}

// Routes says where an alias sends calls: "8 (90%) · 7 (10%)".
func Routes(a *fn.Alias) string {
	if len(a.AdditionalVersionWeights) == 0 {
		return strconv.Itoa(a.Version)
	}
	rest := 1.0
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(a.AdditionalVersionWeights)) {
		w := a.AdditionalVersionWeights[k]
		rest -= w
		parts = append(parts, fmt.Sprintf("%s (%g%%)", k, w*100))
	}
	return strings.Join(append([]string{fmt.Sprintf("%d (%g%%)", a.Version, rest*100)}, parts...), " · ")
}

// WriteReplay writes a replay's comparison.
func WriteReplay(w io.Writer, r *Replayed) error {
	tw := table(w)
	fmt.Fprintln(tw, "\tORIGINAL\tREPLAY")
	fmt.Fprintf(tw, "execution\t%s\t%s\n", r.Original.ID, r.Execution.ID)
	fmt.Fprintf(tw, "version\t%s\t%s\n", r.Diff.Versions[0], r.Diff.Versions[1])
	fmt.Fprintf(tw, "status\t%s\t%s\n", r.Original.Status, r.Execution.Status)
	fmt.Fprintf(tw, "duration\t%.2f ms\t%.2f ms\n", r.Diff.DurationMs[0], r.Diff.DurationMs[1])
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Diff.Same {
		_, err := fmt.Fprintln(w, "same status and result")
		return err
	}
	for _, c := range r.Diff.Result {
		path := c.Path
		if path == "" {
			path = "(the result)"
		}
		fmt.Fprintf(w, "%s: %s → %s\n", path, orDash(string(c.Before)), orDash(string(c.After)))
	}
	return nil
}

// DeadLetter is an async call kept after its last failed attempt.
type DeadLetter struct {
	ExecutionID string          `json:"executionId"`
	Reason      string          `json:"reason"`
	Attempts    int             `json:"attempts"`
	Error       *fn.ErrorInfo   `json:"error"`
	AcceptedAt  time.Time       `json:"acceptedAt"`
	DeadAt      time.Time       `json:"deadAt"`
	Event       json.RawMessage `json:"event"`
}

// DeadLetters lists a function's dead letters.
func (c *Client) DeadLetters(ctx context.Context, name string) ([]byte, []DeadLetter, error) {
	var out struct{ DeadLetters []DeadLetter }
	b, err := c.getJSON(ctx, fnPath(name)+"/dead-letters", "dead letters of "+name, &out)
	return b, out.DeadLetters, err
}

// ReplayDeadLetter queues a dead letter again; it returns the new call's
// execution id.
func (c *Client) ReplayDeadLetter(ctx context.Context, name, id string) (string, error) {
	var out struct {
		ExecutionID string `json:"executionId"`
	}
	_, err := c.sendFor(ctx, http.MethodPost, fnPath(name)+"/dead-letters/"+url.PathEscape(id)+"/replay", "replay "+id, struct{}{}, &out)
	return out.ExecutionID, err
}

// DeleteDeadLetter drops one dead letter, or all of a function's for id "".
func (c *Client) DeleteDeadLetter(ctx context.Context, name, id string) error {
	path := fnPath(name) + "/dead-letters"
	if id != "" {
		path += "/" + url.PathEscape(id)
	}
	if _, _, err := c.do(ctx, http.MethodDelete, path, nil, "", nil); err != nil {
		return fmt.Errorf("delete dead letters: %w", err)
	}
	return nil
}

// WriteDeadLetters writes dead letters as a table.
func WriteDeadLetters(w io.Writer, ds []DeadLetter) error {
	tw := table(w)
	fmt.Fprintln(tw, "EXECUTION\tREASON\tATTEMPTS\tERROR\tDEAD")
	for _, d := range ds {
		msg := "-"
		if d.Error != nil {
			msg = fn.Truncate(strings.TrimPrefix(d.Error.Type+": "+d.Error.Message, ": "), 80)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.ExecutionID, d.Reason, d.Attempts, msg, timestamp(d.DeadAt))
	}
	return tw.Flush()
}

// ScheduleRow is one schedule of one function, as `nimbus schedules`
// shows it.
type ScheduleRow struct {
	Function string `json:"function"`
	fn.Schedule
}

// Schedules lists the schedules of the function name, or of every
// function when name is "", with their next runs.
func (c *Client) Schedules(ctx context.Context, name string) ([]byte, []ScheduleRow, error) {
	var fns []*fn.Function
	if name != "" {
		_, f, err := c.GetFunction(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		fns = []*fn.Function{f}
	} else {
		var err error
		if _, fns, err = c.ListFunctions(ctx); err != nil {
			return nil, nil, err
		}
	}
	rows := []ScheduleRow{}
	for _, f := range fns {
		for _, s := range f.Schedules {
			rows = append(rows, ScheduleRow{Function: f.Name, Schedule: s})
		}
	}
	b, err := json.Marshal(map[string]any{"schedules": rows})
	return b, rows, err
}

// WriteSchedules prints schedules as a table.
func WriteSchedules(w io.Writer, rows []ScheduleRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "FUNCTION\tSCHEDULE\tWHEN\tTIMEZONE\tRUNS\tNEXT")
	for _, r := range rows {
		when := r.Cron
		if when == "" {
			when = "every " + r.Rate
		}
		tz, runs, next := r.Timezone, r.Qualifier, "-"
		if tz == "" || r.Cron == "" {
			tz = "-"
		}
		if runs == "" {
			runs = "$LATEST"
		}
		if r.Enabled != nil && !*r.Enabled {
			next = "disabled"
		} else if r.NextRun != nil {
			next = timestamp(*r.NextRun)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Function, r.Name, when, tz, runs, next)
	}
	return tw.Flush()
}
