package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Scenarios of the triggers: function URLs and async calls.
const (
	urlScenario = "function URL"
	// pyConst answers a plain value, which a function URL turns into a
	// 200 JSON body: the call's answer is as small both ways, while the
	// event a URL builds (HTTP API payload 2.0) is part of what it costs.
	pyConst = "def handler(event, context):\n    return {\"ok\": True}\n"
)

// asyncHeader makes a POST /api/executions/{id} an async call.
var asyncHeader = http.Header{"X-Nimbus-Invocation-Type": {"Event"}}

// functionURL times sequential warm calls of one function through its URL
// (/fn/{name}) against the same calls through POST /api/executions/{id},
// interleaved three times as warmLatency does.
func (r *runner) functionURL(ctx context.Context) error {
	r.logf("%s (no-op Python handler, sequential, against POST /api/executions of the same function)", urlScenario)
	const name = "bench-url"
	var f struct{ ID string }
	if _, err := r.create(ctx, map[string]any{
		"name": name, "runtime": runtime.Python, "code": pyConst, "maxInstances": 8, "timeout": 10000,
		"url": map[string]any{"enabled": true, "auth": "none"},
	}, &f); err != nil {
		return fmt.Errorf("%s: %w", urlScenario, err)
	}
	defer r.api(context.WithoutCancel(ctx), "DELETE", "/api/functions/"+name, nil, nil)
	api, url := r.cfg.URL+"/api/executions/"+f.ID, r.cfg.URL+"/fn/"+name
	for range 200 { // warm up connections, the instance, the caches
		if _, _, err := r.call(ctx, api, event); err != nil {
			return err
		}
		_, out, err := r.call(ctx, url, event)
		if err != nil {
			return err
		}
		var ans struct{ OK bool }
		if err := json.Unmarshal(out, &ans); err != nil || !ans.OK {
			return fmt.Errorf("%s: %s answered %q, want {\"ok\": true}", urlScenario, url, out)
		}
	}
	var viaURL, viaAPI []time.Duration
	for range 3 {
		a, err := r.sequential(ctx, url)
		if err != nil {
			return err
		}
		b, err := r.sequential(ctx, api)
		if err != nil {
			return err
		}
		viaURL, viaAPI = append(viaURL, a...), append(viaAPI, b...)
	}
	for _, q := range []float64{.5, .99} {
		u, a := percentile(viaURL, q), percentile(viaAPI, q)
		r.add(Result{Scenario: urlScenario, Metric: fmt.Sprintf("p%.0f", q*100), Unit: "ms", Nimbus: ms(u), Baseline: ms(a),
			BaselineName: "POST /api/executions", Note: fmt.Sprintf("the URL adds %.3f ms", ms(u-a))})
	}
	return nil
}

// loadConcurrency is the concurrencies of the async scenarios: those of
// the configuration above 1 (16 if none).
func (r *runner) loadConcurrency() []int {
	var out []int
	for _, c := range r.cfg.Concurrency {
		if c > 1 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = []int{16}
	}
	return out
}

// asyncFunction creates a no-op Python function for async calls, with the
// default maxInstances (10) as throughput uses, and starts its instances
// and its queue's consumer.
func (r *runner) asyncFunction(ctx context.Context, name string) (string, error) {
	id, err := r.function(ctx, name, runtime.Python, pyNoop, 0)
	if err != nil {
		return "", err
	}
	var wg sync.WaitGroup
	errs := make([]error, fn.DefaultMaxInstances)
	for i := range fn.DefaultMaxInstances { // start the instances
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, _, err := r.call(ctx, r.cfg.URL+"/api/executions/"+id, event); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return "", err
		}
	}
	for range 100 { // the consumer, the connections
		if _, _, err := r.post(ctx, r.cfg.URL+"/api/executions/"+id, event, asyncHeader); err != nil {
			return "", err
		}
	}
	_, err = r.drain(ctx, id)
	return id, err
}

// depth is GET /api/functions/{id}/async.
type depth struct {
	Queued      uint64 `json:"queued"`
	InFlight    int    `json:"inFlight"`
	DeadLetters int    `json:"deadLetters"`
}

// drain waits until the function's queue holds nothing queued or in
// flight, polling every 10 ms, and returns how long that took.
func (r *runner) drain(ctx context.Context, id string) (time.Duration, error) {
	t0 := time.Now()
	for deadline := t0.Add(5 * time.Minute); ; {
		var d depth
		if err := r.api(ctx, "GET", "/api/functions/"+id+"/async", nil, &d); err != nil {
			return 0, err
		}
		if d.Queued == 0 && d.InFlight == 0 {
			if d.DeadLetters > 0 {
				return 0, fmt.Errorf("async calls of %s: %d dead letters", id, d.DeadLetters)
			}
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("async calls of %s: still %d queued, %d in flight after %v", id, d.Queued, d.InFlight, time.Since(t0))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// postAsync makes an async call of id and checks its answer: 202, queued.
func (r *runner) postAsync(ctx context.Context, id string) (time.Duration, string, error) {
	d, out, err := r.post(ctx, r.cfg.URL+"/api/executions/"+id, event, asyncHeader)
	if err != nil {
		return 0, "", err
	}
	var a struct{ ExecutionID, Status string }
	if err := json.Unmarshal(out, &a); err != nil || a.Status != string(fn.StatusQueued) || a.ExecutionID == "" {
		return 0, "", fmt.Errorf("async call: answered %q, want an executionId and status queued", out)
	}
	return d, a.ExecutionID, nil
}

// asyncAccept measures how many async calls the server accepts (202 once
// the call is stored in the queue) with c concurrent clients for the
// duration, and the time to each 202, beside synchronous calls of the same
// function at the same concurrency. The accepted calls run meanwhile, on
// the same cores: the figure is what a server that also runs its queue
// accepts, not the queue's enqueue alone.
func (r *runner) asyncAccept(ctx context.Context) error {
	r.logf("async accept (no-op Python handler, maxInstances 10, keep-alive clients posting async calls; the calls run meanwhile)")
	const name = "bench-async"
	id, err := r.asyncFunction(ctx, name)
	if err != nil {
		return fmt.Errorf("async accept: %w", err)
	}
	defer r.api(context.WithoutCancel(ctx), "DELETE", "/api/functions/"+name, nil, nil)
	url := r.cfg.URL + "/api/executions/" + id
	syncCall := func(ctx context.Context) (time.Duration, error) { d, _, err := r.call(ctx, url, event); return d, err }
	asyncCall := func(ctx context.Context) (time.Duration, error) { d, _, err := r.postAsync(ctx, id); return d, err }
	for _, c := range r.loadConcurrency() {
		syncRate, syncLat, err := r.loadLatencies(ctx, c, syncCall)
		if err != nil {
			return err
		}
		rate, lat, err := r.loadLatencies(ctx, c, asyncCall)
		if err != nil {
			return err
		}
		backlog, err := r.drain(ctx, id)
		if err != nil {
			return err
		}
		scenario := fmt.Sprintf("async accept c=%d", c)
		r.add(Result{Scenario: scenario, Metric: "calls/s", Unit: "1/s", Nimbus: rate, Baseline: syncRate,
			BaselineName: "sync calls, same function",
			Note:         fmt.Sprintf("%d accepted; they ran meanwhile and the rest drained %.2f s after", len(lat), backlog.Seconds())})
		for _, q := range []float64{.5, .99} {
			r.add(Result{Scenario: scenario, Metric: fmt.Sprintf("p%.0f", q*100), Unit: "ms", Nimbus: ms(percentile(lat, q)), Baseline: ms(percentile(syncLat, q)),
				BaselineName: "sync call, same function", Note: "time to the 202"})
		}
	}
	return nil
}

// loadLatencies runs conc workers making calls with do for the duration;
// it returns calls/s and the time of each call.
func (r *runner) loadLatencies(ctx context.Context, conc int, do func(context.Context) (time.Duration, error)) (float64, []time.Duration, error) {
	lat := make([][]time.Duration, conc)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	end := t0.Add(r.cfg.Duration)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				d, err := do(ctx)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[w] = append(lat[w], d)
			}
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, nil, err
	}
	all := slices.Concat(lat...)
	return float64(len(all)) / took.Seconds(), all, nil
}

// asyncEndToEnd posts n async calls from c clients as fast as they go and
// times until every one is done (nothing queued or in flight), against
// synchronous calls of the same function at the same concurrency, in two
// interleaved rounds; n is what the sync calls did in the duration, so
// that both sides run about as long. Some records of each round are then
// read back: each must have succeeded.
func (r *runner) asyncEndToEnd(ctx context.Context) error {
	c := r.loadConcurrency()[0]
	r.logf("async end-to-end (no-op Python handler, maxInstances 10, c=%d: calls posted async until all are done, against sync calls)", c)
	const name = "bench-async-e2e"
	id, err := r.asyncFunction(ctx, name)
	if err != nil {
		return fmt.Errorf("async end-to-end: %w", err)
	}
	defer r.api(context.WithoutCancel(ctx), "DELETE", "/api/functions/"+name, nil, nil)
	var syncRates []float64
	var calls int
	var async, posting time.Duration
	for range 2 {
		rate, err := r.load(ctx, r.cfg.URL+"/api/executions/"+id, c)
		if err != nil {
			return err
		}
		syncRates = append(syncRates, rate)
		// Records past the retention (10000 a function) are pruned: keep
		// a round's below it, so that its records can be read back.
		n := min(max(int(rate*r.cfg.Duration.Seconds()), 300), 10000)
		ids := make([]string, n)
		var next atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		t0 := time.Now()
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					_, eid, err := r.postAsync(ctx, id)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					ids[i] = eid
				}
			}()
		}
		wg.Wait()
		posted := time.Since(t0)
		if err, _ := firstErr.Load().(error); err != nil {
			return err
		}
		if _, err := r.drain(ctx, id); err != nil {
			return err
		}
		async += time.Since(t0)
		posting += posted
		calls += n
		if err := r.checkDone(ctx, id, ids); err != nil {
			return fmt.Errorf("async end-to-end: %w", err)
		}
	}
	syncRate := (syncRates[0] + syncRates[1]) / 2
	r.add(Result{Scenario: fmt.Sprintf("async end-to-end c=%d", c), Metric: "calls/s", Unit: "1/s", Nimbus: float64(calls) / async.Seconds(), Baseline: syncRate,
		BaselineName: "sync calls, same function",
		Note:         fmt.Sprintf("%d calls in 2 rounds, all done in %.2f s, posting them took %.2f s", calls, async.Seconds(), posting.Seconds())})
	return nil
}

// checkDone reads back 20 of the records ids, spread over them, the last
// one included: each must have succeeded (a record may take a moment to
// be written after the queue lets go of its call).
func (r *runner) checkDone(ctx context.Context, fid string, ids []string) error {
	for k := range 20 {
		eid := ids[(len(ids)-1)*k/19]
		var ex struct{ Status string }
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if err := r.api(ctx, "GET", "/api/executions/"+fid+"/"+eid, nil, &ex); err != nil {
				return err
			}
			if fn.Status(ex.Status).Final() || time.Now().After(deadline) {
				break
			}
		}
		if ex.Status != string(fn.StatusSuccess) {
			return fmt.Errorf("execution %s of %s: status %q, want success", eid, fid, ex.Status)
		}
	}
	return nil
}
