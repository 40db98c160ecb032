package api_test

import (
	"fmt"
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

// TestServerErrorsNameNoHostPaths: an error of the server's own (here a
// driver that cannot start, naming where its files are) reaches the API's
// caller without the host's directories, in the reply and in the record.
func TestServerErrorsNameNoHostPaths(t *testing.T) {
	h := newHarness(t, options{startErr: fmt.Errorf("start worker: open /var/lib/nimbus/data/sandbox/instances/abc/main.py: no space left on device: %w", fn.ErrUnavailable)})
	h.create("pathy", 1)
	var e struct {
		Error struct{ Code, Message string }
	}
	if st := h.do("POST", "/api/executions/pathy", fakeEvent{}, &e); st != http.StatusServiceUnavailable {
		t.Fatalf("status %d %+v", st, e)
	}
	if strings.Contains(e.Error.Message, "/var/lib") || !strings.Contains(e.Error.Message, "…/main.py: no space left on device") {
		t.Errorf("message %q names the host's directories, or lost what went wrong", e.Error.Message)
	}
	for _, ex := range h.history("pathy") {
		if ex.Error != nil && strings.Contains(ex.Error.Type+ex.Error.Message, "/var/lib") {
			t.Errorf("the record names the host's directories: %+v", ex.Error)
		}
	}
}
