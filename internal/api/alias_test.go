package api_test

import (
	"net/http"
	"testing"
)

// A function created with a driver's alias is stored, shown and counted
// under the driver's own name.
func TestDriverAliasIsStoredAsTheDriverName(t *testing.T) {
	h := newHarness(t, options{drivers: []string{"microvm"}})
	type withDriver struct {
		ID       string   `json:"id"`
		Driver   string   `json:"driver"`
		Warnings []string `json:"warnings"`
	}
	var created withDriver
	body := map[string]any{"name": "vm", "runtime": "python", "code": "x = 1\n", "driver": "firecracker"}
	if st := h.do("POST", "/api/functions", body, &created); st != http.StatusCreated {
		t.Fatalf("create: status %d", st)
	}
	if created.Driver != "microvm" || len(created.Warnings) > 0 {
		t.Errorf("created with driver %q, warnings %q; want microvm and none", created.Driver, created.Warnings)
	}
	var got withDriver
	if st := h.do("GET", "/api/functions/"+created.ID, nil, &got); st != http.StatusOK || got.Driver != "microvm" {
		t.Errorf("read back: status %d, driver %q; want microvm", st, got.Driver)
	}
	if ex := h.invoke("vm", fakeEvent{}); ex.Status != "success" {
		t.Fatalf("invoke: %s", ex.Status)
	}
	var sys struct {
		Instances struct {
			ByDriver map[string]struct{ Active int }
		}
		Drivers map[string]struct{ Available bool }
	}
	if st := h.do("GET", "/api/metrics/system", nil, &sys); st != http.StatusOK {
		t.Fatalf("system metrics: status %d", st)
	}
	if n := sys.Instances.ByDriver["microvm"].Active; n != 1 {
		t.Errorf("byDriver[microvm] has %d active instances, want 1 (byDriver %+v)", n, sys.Instances.ByDriver)
	}
	if _, ok := sys.Instances.ByDriver["firecracker"]; ok {
		t.Error("byDriver has an entry for the alias")
	}
	if !sys.Drivers["microvm"].Available {
		t.Errorf("drivers %+v: microvm not available", sys.Drivers)
	}
}
