package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// bodyReadSignal wraps a handler: reading the first request body of a
// POST to path closes the returned channel.
func bodyReadSignal(path string) (func(http.Handler) http.Handler, <-chan struct{}) {
	reading := make(chan struct{})
	var once sync.Once
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == path {
				r.Body = &signalReader{ReadCloser: r.Body, first: func() { once.Do(func() { close(reading) }) }}
			}
			next.ServeHTTP(w, r)
		})
	}
	return wrap, reading
}

type signalReader struct {
	io.ReadCloser
	first func()
}

func (r *signalReader) Read(p []byte) (int, error) {
	r.first()
	return r.ReadCloser.Read(p)
}

// TestDeleteDuringASlowUploadWins: a call whose function is deleted while
// its event is still arriving gets 404, and leaves no instance of the
// deleted function behind.
func TestDeleteDuringASlowUploadWins(t *testing.T) {
	wrap, reading := bodyReadSignal("/api/executions/doomed")
	h := newHarness(t, options{server: func(s *httptest.Server) { s.Config.Handler = wrap(s.Config.Handler) }})
	f := h.create("doomed", 0)

	body, upload := io.Pipe()
	req, err := http.NewRequest("POST", h.srv.URL+"/api/executions/doomed", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	type reply struct {
		status int
		body   string
	}
	done := make(chan reply, 1)
	go func() {
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			done <- reply{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- reply{resp.StatusCode, string(b)}
	}()
	if _, err := upload.Write([]byte(`{"sleepMs":`)); err != nil {
		t.Fatal(err)
	}
	select { // the handler has found the function and reads the event
	case <-reading:
	case got := <-done:
		t.Fatalf("answered before reading the event: %d %s", got.status, got.body)
	case <-time.After(20 * time.Second):
		t.Fatal("the handler never read the event")
	}

	if st := h.do("DELETE", "/api/functions/doomed", nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	if _, err := upload.Write([]byte(`0}`)); err != nil {
		t.Fatal(err)
	}
	upload.Close()
	got := <-done
	if got.status != http.StatusNotFound || !strings.Contains(got.body, "not_found") {
		t.Errorf("call whose function was deleted during its upload: %d %s; want 404 not_found", got.status, got.body)
	}
	if c := h.engine.Instances(f.ID); c.Idle+c.Busy+c.Starting != 0 {
		t.Errorf("instances of the deleted function: %+v", c)
	}
	if all := h.engine.AllInstances(false); len(all) != 0 {
		t.Errorf("the engine still reports %+v", all)
	}
}

// TestNamesThatLookLikeIDsAreRefused: such a name is a 400 saying why,
// and a function stored with one anyway (before the rule, or by an
// import) never receives the calls made by the id it spells.
func TestNamesThatLookLikeIDsAreRefused(t *testing.T) {
	h := newHarness(t, options{})
	victim := h.create("victim", 0)

	var e struct {
		Error struct{ Code, Field, Message string }
	}
	if st := h.do("POST", "/api/functions", function{Name: victim.ID, Runtime: "python", Code: "x = 1\n"}, &e); st != http.StatusBadRequest ||
		e.Error.Field != "name" || !strings.Contains(e.Error.Message, "id") {
		t.Fatalf("create named like an id: %d %+v; want 400 on name", st, e.Error)
	}
	if st := h.do("PUT", "/api/functions/victim", map[string]string{"name": fn.NewID()}, &e); st != http.StatusBadRequest || e.Error.Field != "name" {
		t.Fatalf("rename to an id: %d %+v; want 400 on name", st, e.Error)
	}

	impostor := &fn.Function{ID: fn.NewID(), Name: victim.ID, Runtime: runtime.Python, Handler: "main.handler",
		Files: map[string]string{"main.py": "x = 1\n"}, Env: map[string]string{},
		Timeout: 1000, Memory: 128, Driver: fn.DefaultDriver, MaxInstances: 2, Concurrency: 1, Revision: 1}
	if err := h.store.CreateFunction(t.Context(), impostor); err != nil {
		t.Fatal(err)
	}
	h.do("POST", "/api/executions/"+impostor.ID, fakeEvent{}, nil) // whatever it answers, it must not take the victim's id
	for range 2 {
		var ex execution
		if st := h.do("POST", "/api/executions/"+victim.ID, fakeEvent{}, &ex); st != http.StatusOK || ex.FunctionID != victim.ID {
			t.Fatalf("call by the victim's id: %d, ran function %q; want the victim %s", st, ex.FunctionID, victim.ID)
		}
	}
}

// TestStoredFunctionsThatAreInvalidDoNotRun: a function the store holds
// but the API would have refused (a file outside its directory) is a 400
// naming the field, and no instance of it starts.
func TestStoredFunctionsThatAreInvalidDoNotRun(t *testing.T) {
	h := newHarness(t, options{})
	bad := &fn.Function{ID: fn.NewID(), Name: "escape", Runtime: runtime.Python, Handler: "main.handler",
		Files: map[string]string{"main.py": "x = 1\n", "../outside.py": "x = 2\n"}, Env: map[string]string{},
		Timeout: 1000, Memory: 128, Driver: fn.DefaultDriver, MaxInstances: 2, Concurrency: 1, Revision: 1}
	if err := h.store.CreateFunction(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Code, Field, Message string }
	}
	if st := h.do("POST", "/api/executions/escape", fakeEvent{}, &e); st != http.StatusBadRequest || e.Error.Field != "files" {
		t.Errorf("call of an invalid stored function: %d %+v; want 400 on files", st, e.Error)
	}
	if c := h.engine.Instances(bad.ID); c.Idle+c.Busy+c.Starting != 0 {
		t.Errorf("instances of the invalid function: %+v", c)
	}
	if st := h.do("GET", "/api/functions/escape", nil, nil); st != http.StatusOK {
		t.Errorf("get of the invalid function: %d, want 200 (it can be seen and deleted)", st)
	}
	if st := h.do("DELETE", "/api/functions/escape", nil, nil); st != http.StatusNoContent {
		t.Errorf("delete of the invalid function: %d", st)
	}
}
