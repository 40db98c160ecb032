package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// TestUserErrorsAreCut: an error type of a megabyte from user code is cut
// to fn.MaxErrorType where the engine receives it, so neither its record
// nor the metrics buckets (which keep error types by name) hold it whole.
func TestUserErrorsAreCut(t *testing.T) {
	h := newHarness(t, options{})
	h.create("loud", 1)
	typ := strings.Repeat("E", 1<<20)
	for range 3 {
		if ex := h.invoke("loud", fakeEvent{Error: typ}); ex.Status != "error" || ex.Error == nil || len(ex.Error.Type) > fn.MaxErrorType ||
			!strings.HasPrefix(ex.Error.Type, "EEEE") {
			t.Fatalf("execution %+v (type %d bytes)", ex.Status, len(ex.Error.Type))
		}
	}
	var sum summary
	if st := h.do("GET", "/api/metrics/system", nil, &sum); st != http.StatusOK {
		t.Fatalf("metrics: %d", st)
	}
	if len(sum.TopErrors) != 1 || len(sum.TopErrors[0].Type) > fn.MaxErrorType || sum.TopErrors[0].Count != 3 {
		t.Errorf("top errors %d, first %d bytes", len(sum.TopErrors), len(sum.TopErrors[0].Type))
	}
}
