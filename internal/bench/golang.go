package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// A Go function for the Runtime API scenarios: built by the server from
// sources at deploy (runtime "go"), with the standard library only, so
// that its build needs no module download. It answers each event with the
// event, as the no-op handlers of the other scenarios do.
const (
	goMod  = "module benchfn\n\ngo 1.22\n"
	goMain = `package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
)

func main() {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	for {
		resp, err := http.Get(base + "next")
		if err != nil {
			os.Exit(1)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		out, err := http.Post(base+id+"/response", "application/json", bytes.NewReader(event))
		if err != nil {
			os.Exit(1)
		}
		io.Copy(io.Discard, out.Body)
		out.Body.Close()
	}
}
`
)

// goBuildTimeout bounds the create of a Go function, its build included.
const goBuildTimeout = 10 * time.Minute

// goFunction creates the Go function named name with env, building it;
// it returns the function's id.
func (r *runner) goFunction(ctx context.Context, name string, env map[string]string) (string, error) {
	// The first build on a fresh server compiles the standard library's
	// packages it uses: minutes on a small machine, past the client's
	// timeout for calls.
	calls := r.client
	build := *calls
	build.Timeout = goBuildTimeout
	r.client = &build
	defer func() { r.client = calls }()
	var f struct{ ID string }
	_, err := r.create(ctx, map[string]any{
		"name": name, "runtime": "go", "files": map[string]string{"go.mod": goMod, "main.go": goMain},
		"maxInstances": 8, "timeout": 10000, "env": env,
	}, &f)
	return f.ID, err
}

// goRuntime measures a Go function through the Runtime API relay: warm
// latency against the Go echo server, interleaved as warmLatency does, and
// cold starts (the first call of a new version: the layer is built once,
// each version starts a new instance with the relay and the bootstrap). A
// server that cannot build Go functions (no go command) skips it.
func (r *runner) goRuntime(ctx context.Context) error {
	if r.cfg.SkipGo {
		r.logf("Go function through the Runtime API: skipped")
		return nil
	}
	r.logf("Go function through the Runtime API (built from sources at deploy)")
	id, err := r.goFunction(ctx, "bench-go", nil)
	if err != nil {
		r.logf("  skipped: %v", err)
		return nil
	}
	url := r.cfg.URL + "/api/executions/" + id
	nim, echo, err := r.warmAgainstEcho(ctx, url)
	if err != nil {
		return err
	}
	p50n, p50e := percentile(nim, .5), percentile(echo, .5)
	r.add(Result{Scenario: "warm call go", Metric: "p50", Unit: "ms", Nimbus: ms(p50n), Baseline: ms(p50e), BaselineName: "Go HTTP echo",
		Note: fmt.Sprintf("Nimbus adds %.3f ms (target ≤ 0.25)", ms(p50n-p50e))})
	r.add(Result{Scenario: "warm call go", Metric: "p99", Unit: "ms", Nimbus: ms(percentile(nim, .99)), Baseline: ms(percentile(echo, .99)), BaselineName: "Go HTTP echo"})

	var cold []time.Duration
	for i := range r.cfg.Colds {
		time.Sleep(250 * time.Millisecond) // at rest, as coldStarts
		id, err := r.goFunction(ctx, "bench-go-cold", map[string]string{"N": strconv.Itoa(i)})
		if err != nil {
			return err
		}
		d, _, err := r.call(ctx, r.cfg.URL+"/api/executions/"+id, event)
		if err != nil {
			return err
		}
		cold = append(cold, d)
	}
	r.add(Result{Scenario: "cold start go", Metric: "p50", Unit: "ms", Nimbus: ms(percentile(cold, .5)),
		Note: "first call of a new function, its layer cached (target ≤ 5)"})
	_ = r.api(ctx, "DELETE", "/api/functions/bench-go", nil, nil)
	_ = r.api(ctx, "DELETE", "/api/functions/bench-go-cold", nil, nil)
	return nil
}
