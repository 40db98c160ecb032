package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// deployScenario names the deploy figure.
const deployScenario = "deploy, dependencies cached"

// benchWheel is the dependency the deploy scenario declares, written into
// the server's find-links directory: nothing comes from a package index.
var benchWheel = Wheel{Name: "nimbusbench", Version: "1.0", Files: map[string]string{
	"nimbusbench/__init__.py": "def answer():\n    return 42\n",
}}

// deployed is a function as POST /api/functions answers it.
type deployed struct {
	ID          string `json:"id"`
	BuildStatus *struct {
		State      string    `json:"state"`
		Layer      string    `json:"layer"`
		Cached     bool      `json:"cached"`
		Error      string    `json:"error"`
		Log        string    `json:"log"`
		StartedAt  time.Time `json:"startedAt"`
		FinishedAt time.Time `json:"finishedAt"`
	} `json:"buildStatus"`
}

// check says what is wrong with a deploy answered as d: not ready, or
// (when a layer is wanted) without a layer or, when cached is wanted, one
// built afresh.
func (d *deployed) check(name string, layer, cached bool) error {
	b := d.BuildStatus
	switch {
	case b == nil:
		return fmt.Errorf("deploy %s: no buildStatus in the answer", name)
	case b.State != "ready":
		return fmt.Errorf("deploy %s: build %s: %s\n%s", name, b.State, b.Error, b.Log)
	case layer != (b.Layer != ""):
		return fmt.Errorf("deploy %s: dependency layer %q, want one: %t", name, b.Layer, layer)
	case layer && b.Cached != cached:
		return fmt.Errorf("deploy %s: build cached %t, want %t:\n%s", name, b.Cached, cached, b.Log)
	}
	return nil
}

// deploySpec is a Python function whose handler imports the bench's
// package, with the requirements.txt naming it or without; n makes its
// code new, as each deploy of a changed function is.
func deploySpec(name string, n int, requirements bool) map[string]any {
	files := map[string]string{
		"main.py": fmt.Sprintf("def handler(event, context):\n    import nimbusbench\n    return {'answer': nimbusbench.answer()}\n# deploy %d\n", n),
	}
	if requirements {
		files["requirements.txt"] = benchWheel.Name + "==" + benchWheel.Version + "\n"
	}
	return map[string]any{"name": name, "runtime": runtime.Python, "files": files, "timeout": 60000}
}

// deployCached times creating a Python function with a requirements.txt
// whose layer is already built (by a first function with the same
// requirements), against the same function without dependencies: each
// create is POST /api/functions until its 201 with buildStatus "ready".
// Both store new code (the code differs on each deploy), so what they
// differ by is the dependency step: reading requirements.txt, the layer's
// key, finding the layer built.
func (r *runner) deployCached(ctx context.Context) error {
	const scenario = deployScenario
	if r.cfg.PipFindLinks == "" {
		r.logf("%s: skipped: the server's NIMBUS_PIP_FIND_LINKS directory is unknown (with --url, pass --pip-find-links with the directory it names)", scenario)
		return nil
	}
	r.logf("%s (Python, requirements.txt of a local wheel; %d deploys each)", scenario, r.cfg.Deploys)
	if _, err := benchWheel.Write(r.cfg.PipFindLinks); err != nil {
		return fmt.Errorf("%s: write the wheel into %s: %w", scenario, r.cfg.PipFindLinks, err)
	}
	var names []string
	defer func() {
		for _, n := range names {
			_ = r.api(context.WithoutCancel(ctx), "DELETE", "/api/functions/"+n, nil, nil)
		}
	}()

	// The first function with these requirements builds the layer (or
	// finds it from an earlier run against the same server); its call
	// shows the layer serves.
	names = append(names, "bench-deploy-first")
	var first deployed
	firstTook, err := r.create(ctx, deploySpec("bench-deploy-first", 0, true), &first)
	if err != nil {
		return fmt.Errorf("%s: %w", scenario, err)
	}
	if err := first.check("bench-deploy-first", true, first.BuildStatus != nil && first.BuildStatus.Cached); err != nil {
		return fmt.Errorf("%s: %w", scenario, err)
	}
	_, out, err := r.call(ctx, r.cfg.URL+"/api/executions/"+first.ID, event)
	var ans struct{ Result struct{ Answer int } }
	if err == nil {
		err = json.Unmarshal(out, &ans)
	}
	if err != nil || ans.Result.Answer != 42 {
		return fmt.Errorf("%s: the first function did not import its dependency: %v %s", scenario, err, out)
	}

	var with, without []time.Duration
	for i := range r.cfg.Deploys {
		// Alternate which goes first, so that neither always follows the
		// other's background work.
		for _, deps := range []bool{i%2 == 0, i%2 != 0} {
			name := fmt.Sprintf("bench-deploy-plain-%d", i)
			if deps {
				name = fmt.Sprintf("bench-deploy-deps-%d", i)
			}
			names = append(names, name)
			var d deployed
			took, err := r.create(ctx, deploySpec(name, i+1, deps), &d)
			if err == nil {
				err = d.check(name, deps, true)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", scenario, err)
			}
			if deps {
				with = append(with, took)
			} else {
				without = append(without, took)
			}
		}
	}
	note := fmt.Sprintf("first deploy %.0f ms (cached: %t)", ms(firstTook), first.BuildStatus.Cached)
	r.add(Result{Scenario: scenario, Metric: "p50", Unit: "ms", Nimbus: ms(percentile(with, .5)), Baseline: ms(percentile(without, .5)),
		BaselineName: "deploy without dependencies", Note: note})
	return nil
}
