package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// A request with streamLogs gets what the handler prints in log frames as
// it is printed, before the result, which still carries the whole logs.

var streamHandlers = map[string]map[string]string{
	runtime.Python: {"main.py": `
import os, sys, time

def handler(event, context):
    print("started")
    sys.stderr.write("partial ")
    sys.stderr.write("line\n")
    while not os.path.exists(event["release"]):
        time.sleep(0.01)
    print("x" * event["long"])
    sys.stdout.write("no newline at the end")
    return "done"
`},
	runtime.NodeJS: {"index.js": `
const fs = require('fs');
exports.handler = async (event) => {
  console.log('started');
  process.stderr.write('partial ');
  process.stderr.write('line\n');
  while (!fs.existsSync(event.release)) await new Promise((r) => setTimeout(r, 10));
  console.log('x'.repeat(event.long));
  process.stdout.write('no newline at the end');
  return 'done';
};
`},
}

func streamHandler(rt string) string {
	if rt == runtime.Python {
		return "main.handler"
	}
	return "index.handler"
}

func TestStreamedLogs(t *testing.T) {
	for _, rt := range []string{runtime.Python, runtime.NodeJS} {
		t.Run(rt, func(t *testing.T) {
			const limit = 20000
			w := startWorker(t, rt, streamHandlers[rt], streamHandler(rt), withLimits(limit, 0)).mustLoad()
			release := filepath.Join(t.TempDir(), "release")
			w.send(t, "s1", true, map[string]any{"release": release, "long": 30000})

			// The first lines come while the handler waits for the test.
			first := w.read()
			if first.Type != runtime.TypeLog || first.ID != "s1" || first.Data != "started\n" {
				t.Fatalf("first frame %+v, want the log frame of the first line", first)
			}
			streamed := first.Data
			for !strings.Contains(streamed, "partial line\n") {
				f := w.read()
				if f.Type != runtime.TypeLog {
					t.Fatalf("frame %+v before the handler was released", f)
				}
				streamed += f.Data
			}
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			for {
				f := w.read()
				if f.Type == runtime.TypeResult {
					if string(f.Result) != `"done"` {
						t.Fatalf("result %+v", f)
					}
					if !f.LogsTruncated || f.Logs != streamed {
						t.Fatalf("result logs (%d bytes, truncated %v) are not what was streamed (%d bytes)", len(f.Logs), f.LogsTruncated, len(streamed))
					}
					break
				}
				if f.Type != runtime.TypeLog || f.ID != "s1" {
					t.Fatalf("unexpected frame %+v", f)
				}
				streamed += f.Data
			}
			if len(streamed) != limit {
				t.Fatalf("streamed %d bytes, want the %d-byte limit", len(streamed), limit)
			}

			// Without streamLogs, the result is the only frame.
			w.send(t, "s2", false, map[string]any{"release": release, "long": 3})
			if f := w.read(); f.Type != runtime.TypeResult || f.Logs != "started\npartial line\nxxx\nno newline at the end" {
				t.Fatalf("unstreamed call answered %+v", f)
			}

			// The unterminated last line goes out before the result.
			w.send(t, "s3", true, map[string]any{"release": release, "long": 3})
			var got []string
			for {
				f := w.read()
				if f.Type == runtime.TypeResult {
					break
				}
				got = append(got, f.Data)
			}
			if last := got[len(got)-1]; last != "no newline at the end" {
				t.Fatalf("log frames %q: the last is not the unterminated line", got)
			}
		})
	}
}

// send writes a request without waiting for its answer.
func (w *worker) send(t *testing.T, id string, stream bool, event any) {
	t.Helper()
	ev, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	req := runtime.Request{Type: runtime.TypeInvoke, ID: id, Event: ev, DeadlineMs: 1 << 50, StreamLogs: stream}
	if err := runtime.WriteFrame(w.reqW, req); err != nil {
		t.Fatalf("write request: %v\nstderr: %s", err, w.stderr.String())
	}
}
