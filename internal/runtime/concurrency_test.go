package runtime_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// withConcurrency sets Init's concurrency.
func withConcurrency(n int) workerOption {
	return func(c *workerConfig) { c.init.Concurrency = n }
}

// invokeAll sends every event at once and returns the responses by id.
func (w *worker) invokeAll(events []any) map[string]runtime.Response {
	w.t.Helper()
	for _, ev := range events {
		b, _ := json.Marshal(ev)
		w.seq++
		req := runtime.Request{Type: runtime.TypeInvoke, ID: fmt.Sprintf("req-%d", w.seq), Event: b, DeadlineMs: time.Now().Add(30 * time.Second).UnixMilli()}
		if err := runtime.WriteFrame(w.reqW, req); err != nil {
			w.t.Fatalf("write request: %v", err)
		}
	}
	out := map[string]runtime.Response{}
	for range events {
		r := w.read()
		out[r.ID] = r
	}
	return out
}

// ran is what an overlapping handler returns: its event's n and when it
// ran, in seconds by the worker's clock.
type ran struct {
	N          int
	Start, End float64
}

func ranFrom(r runtime.Response) ran {
	var x ran
	json.Unmarshal(r.Result, &x)
	return x
}

var overlapping = map[string]struct {
	files   map[string]string
	handler string
}{
	runtime.NodeJS: {map[string]string{"index.js": `
console.log('loading');
exports.handler = async (e) => {
  const start = Date.now() / 1000;
  console.log('start ' + e.n);
  if (e.n === 2) throw new Error('two fails alone');
  await new Promise((r) => setTimeout(r, 400));
  setTimeout(() => console.log('late ' + e.n), 0); // still its own context
  await new Promise((r) => setTimeout(r, 20));
  console.log('end ' + e.n);
  return { n: e.n, start, end: Date.now() / 1000 };
};
`}, "index.handler"},
	runtime.Python: {map[string]string{"main.py": `
import time
print("loading")
def handler(e, c):
    start = time.time()
    print("start", e["n"])
    if e["n"] == 2:
        raise ValueError("two fails alone")
    time.sleep(0.4)
    print("late", e["n"])
    print("end", e["n"])
    return {"n": e["n"], "start": start, "end": time.time()}
`}, "main.handler"},
}

func TestConcurrentInvocationsKeepTheirOwnLogs(t *testing.T) {
	for _, rt := range []string{runtime.NodeJS, runtime.Python} {
		t.Run(rt, func(t *testing.T) {
			h := overlapping[rt]
			w := startWorker(t, rt, h.files, h.handler, withConcurrency(4)).mustLoad()
			if w.Ready.Logs != "loading\n" {
				t.Errorf("what loading printed: %q, want it in the ready frame", w.Ready.Logs)
			}
			got := w.invokeAll([]any{map[string]int{"n": 1}, map[string]int{"n": 2}, map[string]int{"n": 3}, map[string]int{"n": 4}})
			var spans []ran
			for i := 1; i <= 4; i++ {
				r := got[fmt.Sprintf("req-%d", i)]
				if i == 2 {
					if r.Error == nil || !strings.Contains(r.Error.Message, "two fails alone") || r.Logs != "start 2\n" {
						t.Errorf("call 2: error %+v logs %q, want its own error and log", r.Error, r.Logs)
					}
					continue
				}
				want := fmt.Sprintf("start %d\nlate %d\nend %d\n", i, i, i)
				res := ranFrom(r)
				if r.Error != nil || res.N != i || r.Logs != want {
					t.Errorf("call %d: result %s error %+v logs %q, want %d and logs %q", i, r.Result, r.Error, r.Logs, i, want)
				}
				spans = append(spans, res)
			}
			// All at once: every call started before any ended (one at a
			// time, each 0.4 s call would end before the next started).
			lastStart, firstEnd := spans[0].Start, spans[0].End
			for _, r := range spans[1:] {
				lastStart, firstEnd = max(lastStart, r.Start), min(firstEnd, r.End)
			}
			if lastStart >= firstEnd {
				t.Errorf("3 calls of 0.4 s with concurrency 4 ran at %+v: not at once", spans)
			}
		})
	}
}

func TestOneInvocationAtATimeByDefault(t *testing.T) {
	for _, rt := range []string{runtime.NodeJS, runtime.Python} {
		t.Run(rt, func(t *testing.T) {
			h := overlapping[rt]
			w := startWorker(t, rt, h.files, h.handler).mustLoad()
			got := w.invokeAll([]any{map[string]int{"n": 1}, map[string]int{"n": 3}})
			if a, b := ranFrom(got["req-1"]), ranFrom(got["req-2"]); a.N != 1 || b.N != 3 || b.Start < a.End {
				t.Errorf("2 calls of 0.4 s with concurrency 1 ran at %+v and %+v: they overlapped", a, b)
			}
			if r := got["req-2"]; r.Logs != "start 3\nlate 3\nend 3\n" {
				t.Errorf("second call's logs %q", r.Logs)
			}
		})
	}
}
