package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// versionCall is what a call answers, with the version that ran.
type versionCall struct {
	Status  string          `json:"status"`
	Version int             `json:"version"`
	Result  json.RawMessage `json:"result"`
}

// answer calls name (with its qualifier) and returns the ANSWER of the
// version that ran, and that version.
func (h *harness) answer(target string) (string, int) {
	h.t.Helper()
	var c versionCall
	if st := h.do("POST", "/api/executions/"+target, map[string]any{"answer": true}, &c); st != 200 || c.Status != "success" {
		h.t.Fatalf("call %s: %d %+v", target, st, c)
	}
	var s string
	json.Unmarshal(c.Result, &s)
	return s, c.Version
}

// send sends a request with headers and returns the status, the ETag
// and the body.
func (h *harness) sendWith(method, path string, body any, hdr ...string) (int, string, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), data
}

type versionView struct {
	Version     int    `json:"version"`
	Revision    int    `json:"revision"`
	ConfigHash  string `json:"configHash"`
	Description string `json:"description"`
	Env         map[string]string
}

type aliasView struct {
	Name                     string             `json:"name"`
	Version                  int                `json:"version"`
	AdditionalVersionWeights map[string]float64 `json:"additionalVersionWeights"`
	Revision                 int                `json:"revision"`
	History                  []struct {
		Version int    `json:"version"`
		Reason  string `json:"reason"`
	} `json:"history"`
}

func TestPublishVersionsAndCallThem(t *testing.T) {
	h := newHarness(t, options{})
	if st := h.do("POST", "/api/functions", map[string]any{"name": "app", "runtime": "python", "code": "x = 1\n", "env": map[string]string{"ANSWER": "one"}}, nil); st != 201 {
		t.Fatalf("create: %d", st)
	}
	var v1 versionView
	if st := h.do("POST", "/api/functions/app/versions", map[string]any{"description": "first"}, &v1); st != 201 || v1.Version != 1 || v1.ConfigHash == "" || v1.Description != "first" {
		t.Fatalf("publish: %d %+v", st, v1)
	}
	// Nothing changed: the same version, not a new one.
	var again versionView
	if st := h.do("POST", "/api/functions/app/versions", nil, &again); st != 200 || again.Version != 1 {
		t.Errorf("publish of an unchanged draft: %d %+v, want 200 and version 1", st, again)
	}
	// A scaling change is not a change of behaviour either.
	h.do("PUT", "/api/functions/app", map[string]any{"maxInstances": 3}, nil)
	if st := h.do("POST", "/api/functions/app/versions", nil, &again); st != 200 || again.Version != 1 {
		t.Errorf("publish after a scaling change: %d %+v, want version 1", st, again)
	}

	var draft struct {
		Revision int `json:"revision"`
		Version  int `json:"version"`
	}
	if st := h.do("PUT", "/api/functions/app", map[string]any{"env": map[string]string{"ANSWER": "two"}}, &draft); st != 200 || draft.Revision != 3 || draft.Version != 0 {
		t.Fatalf("update: %d %+v, want revision 3 and no version", st, draft)
	}
	// The version keeps its code and settings; the draft has the new ones.
	if a, v := h.answer("app:1"); a != "one" || v != 1 {
		t.Errorf("app:1 ran %q (version %d), want one (1)", a, v)
	}
	if a, v := h.answer("app"); a != "two" || v != 0 {
		t.Errorf("app ran %q (version %d), want two ($LATEST, 0)", a, v)
	}
	if a, _ := h.answer("app:$LATEST"); a != "two" {
		t.Errorf("app:$LATEST ran %q", a)
	}
	if a, _ := h.answer("app?qualifier=1"); a != "one" {
		t.Errorf("?qualifier=1 ran %q", a)
	}
	// Calls after a publish never reach the old code's instances, and
	// the version's instances stay its own.
	for range 5 {
		if a, _ := h.answer("app"); a != "two" {
			t.Fatalf("the draft answered %q", a)
		}
		if a, _ := h.answer("app:1"); a != "one" {
			t.Fatalf("version 1 answered %q", a)
		}
	}

	// expectedHash guards what is published.
	if st, _, body := h.sendWith("POST", "/api/functions/app/versions", map[string]any{"expectedHash": v1.ConfigHash}); st != http.StatusPreconditionFailed {
		t.Errorf("publish with a stale expectedHash: %d %s", st, body)
	}
	var v2 versionView
	if st := h.do("POST", "/api/functions/app/versions", nil, &v2); st != 201 || v2.Version != 2 || v2.Env["ANSWER"] != "two" {
		t.Fatalf("publish 2: %d %+v", st, v2)
	}
	var list struct{ Versions []versionView }
	if st := h.do("GET", "/api/functions/app/versions", nil, &list); st != 200 || len(list.Versions) != 2 || list.Versions[0].Version != 1 || list.Versions[1].Version != 2 {
		t.Errorf("versions: %d %+v", st, list)
	}
	if st := h.do("GET", "/api/functions/app/versions/1", nil, &again); st != 200 || again.Env["ANSWER"] != "one" {
		t.Errorf("version 1: %d %+v", st, again)
	}
	for _, bad := range []string{"app:9", "app:nope", "app:0"} {
		if st := h.do("POST", "/api/executions/"+bad, map[string]any{}, nil); st != 404 {
			t.Errorf("call %s: %d, want 404", bad, st)
		}
	}
	// Its code, as a zip.
	st, _, data := h.sendWith("GET", "/api/functions/app/versions/1/code", nil)
	if st != 200 {
		t.Fatalf("version code: %d", st)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "main.py" {
		t.Errorf("version code: %v", err)
	}
}

func TestAliasesWeightsRollbackAndConcurrency(t *testing.T) {
	h := newHarness(t, options{})
	h.do("POST", "/api/functions", map[string]any{"name": "app", "runtime": "python", "code": "x = 1\n", "env": map[string]string{"ANSWER": "one"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)
	h.do("PUT", "/api/functions/app", map[string]any{"env": map[string]string{"ANSWER": "two"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)

	var live aliasView
	if st := h.do("POST", "/api/functions/app/aliases", map[string]any{"name": "live", "version": 1}, &live); st != 201 || live.Version != 1 || live.Revision != 1 {
		t.Fatalf("create alias: %d %+v", st, live)
	}
	if st := h.do("POST", "/api/functions/app/aliases", map[string]any{"name": "live", "version": 2}, nil); st != 409 {
		t.Errorf("a second alias live: %d, want 409", st)
	}
	for _, bad := range []map[string]any{{"name": "7", "version": 1}, {"name": "x", "version": 9}, {"name": "y", "version": 1, "additionalVersionWeights": map[string]float64{"2": 1.5}}} {
		if st := h.do("POST", "/api/functions/app/aliases", bad, nil); st != 400 {
			t.Errorf("alias %v: %d, want 400", bad, st)
		}
	}
	if a, v := h.answer("app:live"); a != "one" || v != 1 {
		t.Errorf("live ran %q (%d)", a, v)
	}

	// Move it to 2 with 10% still on 1.
	st, tag, body := h.sendWith("PUT", "/api/functions/app/aliases/live", map[string]any{"version": 2, "additionalVersionWeights": map[string]float64{"1": 0.1}}, "If-Match", `"1"`)
	if st != 200 || tag != `"2"` {
		t.Fatalf("move live: %d %s %s", st, tag, body)
	}
	const calls = 2000
	ones := 0
	for range calls {
		if a, v := h.answer("app:live"); a == "one" && v == 1 {
			ones++
		} else if a != "two" || v != 2 {
			t.Fatalf("live ran %q (%d)", a, v)
		}
	}
	// 10% ± 3% of 2,000: 4.5 standard deviations either side.
	if ones < 140 || ones > 260 {
		t.Errorf("%d of %d calls went to version 1, want about 10%%", ones, calls)
	}

	// A stale If-Match is refused with the current state.
	st, _, body = h.sendWith("PUT", "/api/functions/app/aliases/live", map[string]any{"version": 1}, "If-Match", `"1"`)
	var refused struct {
		Error   struct{ Code string }
		Current aliasView
	}
	json.Unmarshal(body, &refused)
	if st != http.StatusPreconditionFailed || refused.Error.Code != "precondition_failed" || refused.Current.Revision != 2 || refused.Current.Version != 2 {
		t.Errorf("stale If-Match: %d %s", st, body)
	}
	if st, _, _ := h.sendWith("DELETE", "/api/functions/app/aliases/live", nil, "If-Match", `"1"`); st != http.StatusPreconditionFailed {
		t.Errorf("delete with a stale If-Match: %d", st)
	}

	// A version an alias uses cannot go.
	if st := h.do("DELETE", "/api/functions/app/versions/1", nil, nil); st != 409 {
		t.Errorf("delete version 1 while live splits onto it: %d, want 409", st)
	}

	// Rollback: back to where it was, once.
	var back aliasView
	if st := h.do("POST", "/api/functions/app/aliases/live/rollback", nil, &back); st != 200 || back.Version != 1 || back.AdditionalVersionWeights != nil {
		t.Fatalf("rollback: %d %+v", st, back)
	}
	if n := len(back.History); n != 3 || back.History[0].Reason != "create" || back.History[1].Reason != "update" || back.History[2].Reason != "rollback" {
		t.Errorf("history %+v", back.History)
	}
	if a, _ := h.answer("app:live"); a != "one" {
		t.Errorf("after the rollback live ran %q", a)
	}
	if st := h.do("POST", "/api/functions/app/aliases/live/rollback", nil, nil); st != 409 {
		t.Errorf("a second rollback with nothing before: %d, want 409", st)
	}
	var list struct{ Aliases []aliasView }
	if st := h.do("GET", "/api/functions/app/aliases", nil, &list); st != 200 || len(list.Aliases) != 1 || list.Aliases[0].Name != "live" {
		t.Errorf("aliases: %d %+v", st, list)
	}

	// Version 2 is free now; version 1 is not.
	if st := h.do("DELETE", "/api/functions/app/versions/2", nil, nil); st != 204 {
		t.Errorf("delete version 2: %d", st)
	}
	if st := h.do("POST", "/api/executions/app:2", map[string]any{}, nil); st != 404 {
		t.Errorf("call a deleted version: %d", st)
	}
	if st := h.do("DELETE", "/api/functions/app/aliases/live", nil, nil); st != 204 {
		t.Errorf("delete alias: %d", st)
	}
	if st := h.do("POST", "/api/executions/app:live", map[string]any{}, nil); st != 404 {
		t.Errorf("call a deleted alias: %d", st)
	}
}

func TestFunctionIfMatch(t *testing.T) {
	h := newHarness(t, options{})
	h.do("POST", "/api/functions", map[string]any{"name": "app", "runtime": "python", "code": "x = 1\n"}, nil)
	st, tag, _ := h.sendWith("GET", "/api/functions/app", nil)
	if st != 200 || tag != `"1"` {
		t.Fatalf("GET: %d ETag %s", st, tag)
	}
	if st, tag, _ := h.sendWith("PUT", "/api/functions/app", map[string]any{"timeout": 1000}, "If-Match", `"1"`); st != 200 || tag != `"2"` {
		t.Fatalf("PUT with the current ETag: %d %s", st, tag)
	}
	st, _, body := h.sendWith("PUT", "/api/functions/app", map[string]any{"timeout": 2000}, "If-Match", `"1"`)
	var refused struct {
		Current struct {
			Revision int `json:"revision"`
			Timeout  int `json:"timeout"`
		}
	}
	json.Unmarshal(body, &refused)
	if st != http.StatusPreconditionFailed || refused.Current.Revision != 2 || refused.Current.Timeout != 1000 {
		t.Errorf("PUT with a stale ETag: %d %s", st, body)
	}
	if st, _, _ := h.sendWith("DELETE", "/api/functions/app", nil, "If-Match", `W/"1"`); st != http.StatusPreconditionFailed {
		t.Errorf("DELETE with a stale ETag: %d", st)
	}
	if st, _, body := h.sendWith("GET", "/api/functions/app", nil); st != 200 || !strings.Contains(string(body), `"timeout":1000`) {
		t.Errorf("after the refused changes: %d %s", st, body)
	}
	if st, _, _ := h.sendWith("DELETE", "/api/functions/app", nil, "If-Match", `"2"`); st != 204 {
		t.Errorf("DELETE with the current ETag: %d", st)
	}
}

// A function URL names a version or an alias as /fn/{name}:{qualifier};
// who may call it is the function's setting, whatever runs.
func TestFunctionURLOfAVersion(t *testing.T) {
	h := newHarness(t, options{})
	h.createURL("site", map[string]any{"enabled": true, "auth": "none"}, map[string]any{"env": map[string]string{"ANSWER": "one"}})
	h.do("POST", "/api/functions/site/versions", nil, nil)
	h.do("PUT", "/api/functions/site", map[string]any{"env": map[string]string{"ANSWER": "two"}}, nil)
	h.do("POST", "/api/functions/site/aliases", map[string]any{"name": "live", "version": 1}, nil)
	for path, want := range map[string]string{"/fn/site": `"two"`, "/fn/site:1/x": `"one"`, "/fn/site:live": `"one"`, "/fn/site:$LATEST": `"two"`} {
		resp, body := h.call("GET", path, http.Header{"X-Fake": {`{"answer": true}`}}, nil)
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s: %d %s, want %s", path, resp.StatusCode, body, want)
		}
	}
	if resp, _ := h.call("GET", "/fn/site:9", nil, nil); resp.StatusCode != 404 {
		t.Errorf("GET /fn/site:9: %d, want 404", resp.StatusCode)
	}
}

// A recorded call runs again against another version, and the answer
// says how the two runs differ.
func TestReplayAgainstAnotherVersion(t *testing.T) {
	h := newHarness(t, options{})
	h.do("POST", "/api/functions", map[string]any{"name": "app", "runtime": "python", "code": "x = 1\n", "env": map[string]string{"ANSWER": "one"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)
	h.do("PUT", "/api/functions/app", map[string]any{"env": map[string]string{"ANSWER": "two"}}, nil)
	var orig struct {
		ExecutionID string `json:"executionId"`
	}
	if st := h.do("POST", "/api/executions/app:1", map[string]any{"answer": true}, &orig); st != 200 {
		t.Fatalf("call: %d", st)
	}
	type change struct {
		Path          string
		Before, After json.RawMessage
	}
	var got struct {
		Execution struct {
			Status  string
			Version int
			Trigger string
			Result  json.RawMessage
		}
		Original struct{ ExecutionID string }
		Diff     struct {
			Same     bool
			Status   *[2]string
			Result   []change
			Versions [2]string
		}
	}
	if st := h.do("POST", "/api/executions/app/"+orig.ExecutionID+"/replay", nil, &got); st != 200 {
		t.Fatalf("replay: %d", st)
	}
	if got.Execution.Status != "success" || string(got.Execution.Result) != `"two"` || got.Execution.Version != 0 || got.Execution.Trigger != "replay" ||
		got.Original.ExecutionID != orig.ExecutionID || got.Diff.Same || got.Diff.Status != nil || got.Diff.Versions != [2]string{"1", "$LATEST"} ||
		len(got.Diff.Result) != 1 || got.Diff.Result[0].Path != "" || string(got.Diff.Result[0].Before) != `"one"` || string(got.Diff.Result[0].After) != `"two"` {
		t.Errorf("replay against the draft: %+v", got)
	}
	var same struct {
		Diff struct {
			Same   bool
			Result []change
		}
	}
	if st := h.do("POST", "/api/executions/app/"+orig.ExecutionID+"/replay?qualifier=1", nil, &same); st != 200 || !same.Diff.Same || len(same.Diff.Result) != 0 {
		t.Errorf("replay against version 1: %d %+v", st, same.Diff)
	}
	if st := h.do("POST", "/api/executions/app/nope/replay", nil, nil); st != 404 {
		t.Errorf("replay of an unknown execution: %d", st)
	}
}

func TestHistoryByVersion(t *testing.T) {
	h := newHarness(t, options{})
	h.do("POST", "/api/functions", map[string]any{"name": "app", "runtime": "python", "code": "x = 1\n", "env": map[string]string{"ANSWER": "one"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)
	for _, target := range []string{"app:1", "app", "app:1"} {
		h.answer(target)
	}
	for q, want := range map[string]int{"1": 2, "$LATEST": 1, "": 3} {
		var page struct{ Executions []versionCall }
		if st := h.do("GET", "/api/executions/app/history?version="+q, nil, &page); st != 200 || len(page.Executions) != want {
			t.Errorf("history of version %q: %d, %d records, want %d", q, st, len(page.Executions), want)
		}
	}
	if st := h.do("GET", "/api/executions/app/history?version=x", nil, nil); st != 400 {
		t.Errorf("version=x: %d", st)
	}
}

type rolloutView struct {
	Version                  int                `json:"version"`
	AdditionalVersionWeights map[string]float64 `json:"additionalVersionWeights"`
	Rollout                  *struct {
		To, From, Step int
		State, Reason  string
	} `json:"rollout"`
	History []struct {
		Version int
		Reason  string
	} `json:"history"`
}

// A rollout shifts the alias step by step and ends on the new version;
// one whose new version fails too often goes back by itself.
func TestRollouts(t *testing.T) {
	h := newHarness(t, options{})
	h.do("POST", "/api/functions", map[string]any{"name": "app", "runtime": "python", "code": "x = 1\n", "env": map[string]string{"ANSWER": "one"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)
	h.do("POST", "/api/functions/app/aliases", map[string]any{"name": "live", "version": 1}, nil)
	h.do("PUT", "/api/functions/app", map[string]any{"env": map[string]string{"ANSWER": "two"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)

	rollout := map[string]any{"to": 2, "steps": []float64{0.5, 1}, "interval": "1m", "maxErrorRate": 0.2}
	for _, bad := range []map[string]any{
		{"to": 2, "steps": []float64{0.5, 0.4}, "interval": "1m"},
		{"to": 2, "steps": []float64{0.5}, "interval": "1ms"},
		{"to": 1, "steps": []float64{0.5}, "interval": "1m"},
		{"to": 9, "steps": []float64{0.5}, "interval": "1m"},
	} {
		if st := h.do("PUT", "/api/functions/app/aliases/live", map[string]any{"rollout": bad}, nil); st != 400 {
			t.Errorf("rollout %v: %d, want 400", bad, st)
		}
	}
	var a rolloutView
	if st := h.do("PUT", "/api/functions/app/aliases/live", map[string]any{"rollout": rollout}, &a); st != 200 ||
		a.Version != 1 || a.AdditionalVersionWeights["2"] != 0.5 || a.Rollout == nil || a.Rollout.State != "running" || a.Rollout.From != 1 {
		t.Fatalf("start a rollout: %d %+v", st, a)
	}
	if st := h.do("PUT", "/api/functions/app/aliases/live", map[string]any{"rollout": rollout}, nil); st != 409 {
		t.Errorf("a second rollout while one runs: %d, want 409", st)
	}
	for range 20 {
		h.answer("app:live") // both versions answer
	}
	ctx := context.Background()
	// Before its interval, nothing moves; after it, the next step.
	if err := h.fns.StepRollouts(ctx, time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	a = rolloutView{}
	h.do("GET", "/api/functions/app/aliases/live", nil, &a)
	if a.Rollout.Step != 0 || a.Version != 1 {
		t.Errorf("before the interval: %+v", a)
	}
	if err := h.fns.StepRollouts(ctx, time.Now().Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	a = rolloutView{}
	h.do("GET", "/api/functions/app/aliases/live", nil, &a)
	if a.Version != 2 || a.AdditionalVersionWeights != nil || a.Rollout.State != "completed" {
		t.Fatalf("after the last step: %+v", a)
	}
	if ans, v := h.answer("app:live"); ans != "two" || v != 2 {
		t.Errorf("live after the rollout: %q (%d)", ans, v)
	}

	// Version 3 fails every call.
	h.do("PUT", "/api/functions/app", map[string]any{"env": map[string]string{"ANSWER": "three", "FAIL": "1"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)
	rollout["to"] = 3
	a = rolloutView{}
	if st := h.do("PUT", "/api/functions/app/aliases/live", map[string]any{"rollout": rollout}, &a); st != 200 || a.AdditionalVersionWeights["3"] != 0.5 {
		t.Fatalf("start the second rollout: %d %+v", st, a)
	}
	failed := 0
	for range 40 {
		var c versionCall
		h.do("POST", "/api/executions/app:live", map[string]any{"answer": true}, &c)
		if c.Status != "success" {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no call reached version 3")
	}
	if err := h.fns.StepRollouts(ctx, time.Now().Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	a = rolloutView{}
	h.do("GET", "/api/functions/app/aliases/live", nil, &a)
	if a.Version != 2 || a.AdditionalVersionWeights != nil || a.Rollout.State != "rolled-back" || !strings.Contains(a.Rollout.Reason, "version 3 failed") {
		t.Errorf("after a failing step: %+v", a)
	}
	if last := a.History[len(a.History)-1]; last.Version != 2 || last.Reason != "rollout-rollback" {
		t.Errorf("history ends with %+v", last)
	}
	for range 10 {
		if ans, _ := h.answer("app:live"); ans != "two" {
			t.Fatalf("live after the rollback ran %q", ans)
		}
	}
}

// The metrics of one version: what a rollout's steps are judged by.
func TestMetricsByVersion(t *testing.T) {
	h := newHarness(t, options{})
	h.do("POST", "/api/functions", map[string]any{"name": "app", "runtime": "python", "code": "x = 1\n", "env": map[string]string{"ANSWER": "one"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)
	h.do("PUT", "/api/functions/app", map[string]any{"env": map[string]string{"ANSWER": "two", "FAIL": "1"}}, nil)
	h.do("POST", "/api/functions/app/versions", nil, nil)
	for range 3 {
		h.answer("app:1")
	}
	for range 2 {
		h.do("POST", "/api/executions/app:2", map[string]any{"answer": true}, nil)
	}
	type view struct {
		Version     int `json:"version"`
		Invocations int `json:"invocations"`
		ByStatus    map[string]int
		Series      []struct{ Invocations int } `json:"series"`
	}
	for q, want := range map[string][2]int{"": {5, 2}, "?version=1": {3, 0}, "?version=2": {2, 2}, "?version=3": {0, 0}} {
		var v view
		sep := "?"
		if q != "" {
			sep = "&"
		}
		if st := h.do("GET", "/api/metrics/functions/app"+q+sep+"series=1m", nil, &v); st != 200 || v.Invocations != want[0] || v.ByStatus["error"] != want[1] {
			t.Errorf("metrics%s: %d %+v, want %d calls and %d errors", q, st, v, want[0], want[1])
		}
		total := 0
		for _, p := range v.Series {
			total += p.Invocations
		}
		if total != want[0] {
			t.Errorf("metrics%s: series add up to %d calls, want %d", q, total, want[0])
		}
	}
}
