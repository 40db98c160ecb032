package api_test

import (
	"net/url"
	"testing"
	"time"
)

// GET /api/executions/{id}/history searches by text (q=) and time
// (since=, until=), and says how far a text search looks.
func TestHistorySearch(t *testing.T) {
	h := newHarness(t, options{})
	h.create("app", 1)
	before := time.Now().UTC()
	h.invoke("app", fakeEvent{})
	h.invoke("app", fakeEvent{Error: "BoomError"})
	h.invoke("app", fakeEvent{})
	var page struct {
		Executions []execution `json:"executions"`
		ScanLimit  int         `json:"scanLimit"`
	}
	if st := h.do("GET", "/api/executions/app/history?q=boomerror", nil, &page); st != 200 || len(page.Executions) != 1 ||
		page.Executions[0].Status != "error" || page.ScanLimit != 5000 {
		t.Errorf("q=boomerror: %d %+v", st, page)
	}
	page.ScanLimit = 0
	h.do("GET", "/api/executions/app/history?since="+url.QueryEscape(before.Format(time.RFC3339Nano)), nil, &page)
	if len(page.Executions) != 3 || page.ScanLimit != 0 {
		t.Errorf("since before the calls: %d executions, scanLimit %d; want 3 and none", len(page.Executions), page.ScanLimit)
	}
	h.do("GET", "/api/executions/app/history?until="+url.QueryEscape(before.Format(time.RFC3339Nano)), nil, &page)
	if len(page.Executions) != 0 {
		t.Errorf("until before the calls: %d executions", len(page.Executions))
	}
	for _, bad := range []struct{ query, field string }{{"since=yesterday", "since"}, {"until=1", "until"}} {
		var e struct{ Error struct{ Field string } }
		if st := h.do("GET", "/api/executions/app/history?"+bad.query, nil, &e); st != 400 || e.Error.Field != bad.field {
			t.Errorf("%s: %d %+v", bad.query, st, e)
		}
	}
}
