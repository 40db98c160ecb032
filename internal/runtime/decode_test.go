package runtime_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// An event the shim cannot decode (nested 9,000 deep, past Python's
// recursion limit; or not JSON at all) fails its own call with
// Runtime.UnmarshalError, and the worker serves the next call, with
// concurrency 1 and with concurrency > 1, where a dead worker would fail
// every call sharing it.
func TestDecodeFailureFailsOnlyItsCall(t *testing.T) {
	const depth = 9000
	deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	handlers := map[string]struct {
		files   map[string]string
		handler string
	}{
		runtime.Python: {map[string]string{"main.py": "def handler(event, context):\n    return {'ok': isinstance(event, dict)}\n"}, "main.handler"},
		runtime.NodeJS: {map[string]string{"index.js": "exports.handler = async (event) => ({ ok: !Array.isArray(event) && typeof event === 'object' });\n"}, "index.handler"},
	}
	for _, rt := range runtimes {
		for _, conc := range []int{1, 4} {
			for _, frame := range []struct{ name, body string }{
				{"nested 9000 deep", deep},
				{"not JSON", `{"a": [1, 2`},
			} {
				t.Run(fmt.Sprintf("%s/concurrency %d/%s", rt, conc, frame.name), func(t *testing.T) {
					h := handlers[rt]
					w := startWorker(t, rt, h.files, h.handler, withConcurrency(conc)).mustLoad()
					// Written by hand: the server validates events, so only
					// this can put such a frame on the pipe.
					raw := fmt.Sprintf(`{"type":"invoke","id":"bad-1","event":%s,"deadlineMs":%d}`, frame.body, time.Now().Add(30*time.Second).UnixMilli())
					if err := runtime.WriteRaw(w.reqW, []byte(raw)); err != nil {
						t.Fatal(err)
					}
					resp := w.read()
					if resp.Type != runtime.TypeResult || resp.ID != "bad-1" {
						t.Fatalf("answer %+v, want the result of bad-1\nstderr: %s", resp, w.stderr.String())
					}
					// Node decodes any depth; Python must say why it cannot.
					if resp.Error == nil && (rt == runtime.Python || frame.name == "not JSON") {
						t.Fatalf("bad-1 succeeded: %s", resp.Result)
					}
					if resp.Error != nil && resp.Error.Type != "Runtime.UnmarshalError" {
						t.Errorf("bad-1 failed with %+v, want Runtime.UnmarshalError", resp.Error)
					}
					if got := string(w.result(map[string]int{"a": 1})); got != `{"ok":true}` {
						t.Errorf("next call: %s, want {\"ok\":true}", got)
					}
					select {
					case <-w.exited:
						t.Fatalf("worker exited: %v\nstderr: %s", w.waitErr, w.stderr.String())
					default:
					}
				})
			}
		}
	}
}

// What the API lets through (512 levels, api.MaxJSONDepth) decodes, and
// comes back when the handler returns it.
func TestDecodeAtTheAPIsDepthLimit(t *testing.T) {
	const depth = 512
	event := strings.Repeat(`{"a":`, depth-1) + "[]" + strings.Repeat("}", depth-1)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			files, handler := map[string]string{"main.py": "def handler(event, context):\n    return event\n"}, "main.handler"
			if rt == runtime.NodeJS {
				files, handler = map[string]string{"index.js": "exports.handler = async (event) => event;\n"}, "index.handler"
			}
			w := startWorker(t, rt, files, handler).mustLoad()
			if got := string(w.result(json.RawMessage(event))); got != event {
				t.Errorf("a %d-deep event came back as %.100s…", depth, got)
			}
		})
	}
}
