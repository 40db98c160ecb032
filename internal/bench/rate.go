package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// asyncRates are the offered rates of the open-loop async scenario.
var asyncRates = []int{1000, 5000}

// openLoop offers calls at rate per second for the duration, whatever
// the answers take (an open loop, as clients on the internet behave):
// each call's time is counted from when it was due, so time spent
// waiting for a free client counts too. It returns the calls/s answered
// and the time of each; calls due when all clients are busy wait for one.
func (r *runner) openLoop(ctx context.Context, rate, clients int, do func(context.Context) (time.Duration, error)) (float64, []time.Duration, error) {
	due := make(chan time.Time, rate) // a second of calls at most
	lat := make([][]time.Duration, clients)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range due {
				if _, err := do(ctx); err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				lat[w] = append(lat[w], time.Since(at))
			}
		}()
	}
	t0 := time.Now()
	n := int(float64(rate) * r.cfg.Duration.Seconds())
	for i := 0; i < n; {
		now := time.Now()
		for ; i < n; i++ {
			at := t0.Add(time.Duration(i) * time.Second / time.Duration(rate))
			if at.After(now) {
				break
			}
			due <- at
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(due)
	wg.Wait()
	took := time.Since(t0)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, nil, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return float64(len(all)) / took.Seconds(), all, nil
}

// asyncRate offers async calls at fixed rates (an open loop) and reports
// the time to each 202, against sync calls of the same function offered
// at the same rate just before. The accepted calls run meanwhile.
func (r *runner) asyncRate(ctx context.Context) error {
	r.logf("async accept, open loop (no-op Python handler, maxInstances 10, calls offered at a fixed rate by up to 256 clients; the calls run meanwhile)")
	const name = "bench-async-rate"
	id, err := r.asyncFunction(ctx, name)
	if err != nil {
		return fmt.Errorf("async rate: %w", err)
	}
	defer r.api(context.WithoutCancel(ctx), "DELETE", "/api/functions/"+name, nil, nil)
	url := r.cfg.URL + "/api/executions/" + id
	syncCall := func(ctx context.Context) (time.Duration, error) { d, _, err := r.call(ctx, url, event); return d, err }
	asyncCall := func(ctx context.Context) (time.Duration, error) { d, _, err := r.postAsync(ctx, id); return d, err }
	for _, rate := range asyncRates {
		syncRate, syncLat, err := r.openLoop(ctx, rate, 256, syncCall)
		if err != nil {
			return err
		}
		got, lat, err := r.openLoop(ctx, rate, 256, asyncCall)
		if err != nil {
			return err
		}
		backlog, err := r.drain(ctx, id)
		if err != nil {
			return err
		}
		scenario := fmt.Sprintf("async accept %d/s", rate)
		r.add(Result{Scenario: scenario, Metric: "calls/s", Unit: "1/s", Nimbus: got, Baseline: syncRate,
			BaselineName: "sync calls offered at the same rate",
			Note:         fmt.Sprintf("%d accepted; they ran meanwhile and the rest drained %.2f s after", len(lat), backlog.Seconds())})
		for _, q := range []float64{.5, .99} {
			r.add(Result{Scenario: scenario, Metric: fmt.Sprintf("p%.0f", q*100), Unit: "ms", Nimbus: ms(percentile(lat, q)), Baseline: ms(percentile(syncLat, q)),
				BaselineName: "sync call offered at the same rate", Note: "time to the 202, from when the call was due"})
		}
	}
	return nil
}
