package e2e_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/store/mongo/mongotest"
)

// history lists a function's executions, newest first, or returns the
// status when the call fails.
func (n *nimbus) history(id string, limit int) ([]execution, int) {
	n.t.Helper()
	var out struct{ Executions []execution }
	st := n.do("GET", fmt.Sprintf("/api/executions/%s/history?limit=%d", id, limit), nil, &out)
	return out.Executions, st
}

func (n *nimbus) recordsDropped() int64 {
	n.t.Helper()
	var m struct{ RecordsDropped int64 }
	if st := n.do("GET", "/api/metrics/system", nil, &m); st != http.StatusOK {
		n.t.Fatalf("GET /api/metrics/system: status %d", st)
	}
	return m.RecordsDropped
}

// eventually polls cond every 100ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const echoPy = "def handler(event, context):\n    return {\"n\": event.get(\"n\")}\n"

// TestMongoDBOutage stops the database under a running Nimbus and starts it
// again: API calls that need it fail fast with 503, warm calls go on, their
// records wait in memory (the oldest dropped past NIMBUS_RECORD_BUFFER and
// counted) and are written once the database is back.
func TestMongoDBOutage(t *testing.T) {
	const buffer = 20
	db := mongotest.Start(t)
	n := start(t, "MONGODB_URI="+db.NewDatabase(t), fmt.Sprintf("NIMBUS_RECORD_BUFFER=%d", buffer))
	n.create(function{Name: "steady", Runtime: "python", Code: echoPy})
	before := n.invoke("steady", map[string]int{"n": -1})
	if got, st := n.history("steady", 100); st != http.StatusOK || len(got) != 1 {
		t.Fatalf("history before the outage: status %d, %d records", st, len(got))
	}

	db.Stop(t)

	t.Run("calls that need the database fail fast with 503", func(t *testing.T) {
		n.t = t
		defer func() { n.t = t }()
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/functions"},
			{"GET", "/api/executions/steady/history"},
			{"POST", "/api/functions"},
		} {
			var e apiError
			begin := time.Now()
			var body any
			if c.method == "POST" {
				body = function{Name: "later", Runtime: "python", Code: echoPy}
			}
			st := n.do(c.method, c.path, body, &e)
			took := time.Since(begin)
			if st != http.StatusServiceUnavailable || e.Error.Code != "unavailable" || !strings.Contains(e.Error.Message, "MongoDB at 127.0.0.1:") {
				t.Errorf("%s %s = %d %+v, want 503 unavailable naming MongoDB", c.method, c.path, st, e.Error)
			}
			// Server selection gives up after 2 s; a loaded machine may add some.
			if took > 10*time.Second {
				t.Errorf("%s %s took %v to fail", c.method, c.path, took)
			}
		}
	})
	n.t = t

	var during []string
	for i := range 30 {
		ex := n.invoke("steady", map[string]int{"n": i})
		if ex.Status != "success" || ex.ColdStart {
			t.Fatalf("call %d during the outage: status %s, cold start %v, error %+v", i, ex.Status, ex.ColdStart, ex.Error)
		}
		during = append(during, ex.ExecutionID)
	}
	// 30 records for a buffer of 20: the 10 oldest go.
	eventually(t, 30*time.Second, "recordsDropped never reached 10", func() bool { return n.recordsDropped() >= 10 })
	if d := n.recordsDropped(); d != 10 {
		t.Errorf("recordsDropped = %d during the outage, want 10", d)
	}

	db.Restart(t)

	var got []execution
	eventually(t, 60*time.Second, "the records kept were not written after the restart", func() bool {
		var st int
		got, st = n.history("steady", 100)
		return st == http.StatusOK && len(got) == 1+buffer
	})
	var ids []string
	for _, ex := range got {
		ids = append(ids, ex.ExecutionID)
	}
	want := append([]string{before.ExecutionID}, during[len(during)-buffer:]...)
	slices.Reverse(want) // history is newest first
	if !slices.Equal(ids, want) {
		t.Errorf("history after the restart:\n got %v\nwant %v (the first call and the newest %d of the outage)", ids, want, buffer)
	}
	if d := n.recordsDropped(); d != 10 {
		t.Errorf("recordsDropped = %d after the restart, want 10", d)
	}
	// Everything works again.
	n.create(function{Name: "after", Runtime: "python", Code: echoPy})
	if ex := n.invoke("after", map[string]int{"n": 7}); ex.Status != "success" {
		t.Errorf("call after the restart: %+v", ex)
	}
}

// TestMongoDBSharedByTwoServers runs two servers on one database: what one
// creates, changes, runs or deletes, the other sees. Within seconds (a 2 s
// refresh, then the next call); the test allows a minute, which a loaded
// machine with FerretDB under the race detector does not cross (15 s did).
func TestMongoDBSharedByTwoServers(t *testing.T) {
	uri := mongotest.Start(t).NewDatabase(t)
	a := start(t, "MONGODB_URI="+uri)
	b := start(t, "MONGODB_URI="+uri)

	created := a.create(function{Name: "shared", Runtime: "python", Code: echoPy})
	ex := b.invoke("shared", map[string]int{"n": 1})
	if ex.Status != "success" || ex.Version != 0 {
		t.Fatalf("call on b: %+v", ex)
	}
	if got, st := a.history("shared", 10); st != http.StatusOK || len(got) != 1 || got[0].ExecutionID != ex.ExecutionID {
		// b writes its records in batches: wait for them.
		eventually(t, 60*time.Second, "a never saw b's record", func() bool {
			got, st = a.history("shared", 10)
			return st == http.StatusOK && len(got) == 1 && got[0].ExecutionID == ex.ExecutionID
		})
	}

	// A change made on a reaches b's warm path.
	var updated function
	if st := a.do("PUT", "/api/functions/shared", map[string]any{"code": "def handler(event, context):\n    return \"v2\"\n"}, &updated); st != http.StatusOK || updated.Revision != 2 {
		t.Fatalf("update on a: %d %+v", st, updated)
	}
	eventually(t, 60*time.Second, "b still runs version 1", func() bool {
		ex := b.invoke("shared", nil)
		return string(ex.Result) == `"v2"`
	})

	// Names stay unique across servers.
	var e apiError
	if st := b.do("POST", "/api/functions", function{Name: "shared", Runtime: "python", Code: echoPy}, &e); st != http.StatusConflict {
		t.Errorf("second create of the name on b: %d %+v, want 409", st, e.Error)
	}

	// A deletion on a stops b serving it.
	if st := a.do("DELETE", "/api/functions/"+created.ID, nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete on a: %d", st)
	}
	eventually(t, 60*time.Second, "b still serves the deleted function", func() bool {
		return b.do("POST", "/api/executions/shared", map[string]int{}, nil) == http.StatusNotFound
	})
}
