package runtime_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// What a handler prints: captured per invocation, limited, and kept apart
// from the protocol under a flood.

func TestLogs(t *testing.T) {
	tests := []struct {
		runtime    string
		name       string
		files      map[string]string
		handler    string
		logLimit   int
		wantReady  string
		wantLogs   string // exact, unless truncated
		wantPrefix string // for truncated logs
		truncated  bool
	}{
		{runtime.Python, "stdout stderr logging", map[string]string{"main.py": `
import logging
import sys

print("import-time hello")
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
log = logging.getLogger("fn")

def handler(event, context):
    print("out", 1)
    sys.stderr.write("err 2\n")
    log.info("log %d", 3)
    sys.stdout.buffer.write(b"bytes 4\n")
    print("out 5 ✓", file=sys.stderr, flush=True)
    return None
`}, "main.handler", 0, "import-time hello\n", "out 1\nerr 2\nINFO log 3\nbytes 4\nout 5 ✓\n", "", false},
		{runtime.Python, "truncated", map[string]string{"main.py": `
def handler(event, context):
    for i in range(100):
        print("%04d" % i + "x" * 45)
`}, "main.handler", 1000, "", "", "0000" + strings.Repeat("x", 45) + "\n0001", true},
		{runtime.Python, "truncated inside a character", map[string]string{"main.py": `
def handler(event, context):
    print("é" * 1000)
`}, "main.handler", 1001, "", "", "éé", true},
		{runtime.NodeJS, "console and streams", map[string]string{"index.js": `
console.log('import-time hello');
exports.handler = async () => {
  console.log('out', 1);
  console.error('err 2');
  process.stdout.write('write 3\n');
  process.stderr.write(Buffer.from('bytes 4\n'));
  console.warn({ a: 5 });
  console.info('info ✓');
  return null;
};
`}, "index.handler", 0, "import-time hello\n", "out 1\nerr 2\nwrite 3\nbytes 4\n{ a: 5 }\ninfo ✓\n", "", false},
		{runtime.NodeJS, "truncated", map[string]string{"index.js": `
exports.handler = async () => {
  for (let i = 0; i < 100; i++) console.log(String(i).padStart(4, '0') + 'x'.repeat(45));
};
`}, "index.handler", 1000, "", "", "0000" + strings.Repeat("x", 45) + "\n0001", true},
		{runtime.NodeJS, "truncated inside a character", map[string]string{"index.js": `
exports.handler = async () => { console.log('é'.repeat(1000)); };
`}, "index.handler", 1001, "", "", "éé", true},
	}
	for _, tt := range tests {
		t.Run(tt.runtime+"/"+tt.name, func(t *testing.T) {
			w := startWorker(t, tt.runtime, tt.files, tt.handler, withLimits(tt.logLimit, 0)).mustLoad()
			if w.Ready.Logs != tt.wantReady {
				t.Errorf("ready logs %q, want %q", w.Ready.Logs, tt.wantReady)
			}
			limit := tt.logLimit
			if limit == 0 {
				limit = runtime.DefaultLogLimit
			}
			for i := 0; i < 2; i++ {
				resp := w.invoke(nil)
				if resp.Error != nil {
					t.Fatalf("handler failed: %+v", resp.Error)
				}
				if resp.LogsTruncated != tt.truncated {
					t.Errorf("logsTruncated %v, want %v", resp.LogsTruncated, tt.truncated)
				}
				if !tt.truncated {
					if resp.Logs != tt.wantLogs {
						t.Errorf("logs %q, want %q", resp.Logs, tt.wantLogs)
					}
					continue
				}
				if len(resp.Logs) > limit || len(resp.Logs) < limit-4 {
					t.Errorf("%d bytes of logs, want at most %d (and nearly that)", len(resp.Logs), limit)
				}
				if !strings.HasPrefix(resp.Logs, tt.wantPrefix) {
					t.Errorf("logs start %.60q, want %q", resp.Logs, tt.wantPrefix)
				}
				if strings.ContainsRune(resp.Logs, '\uFFFD') {
					t.Errorf("logs hold a broken character: %q", resp.Logs[len(resp.Logs)-10:])
				}
			}
			if out := w.stdout.String(); out != "" {
				t.Errorf("worker wrote %q to stdout", out)
			}
		})
	}
}

func TestLogFlood(t *testing.T) {
	// 100 MB printed, line by line and in big writes.
	files := map[string]map[string]string{
		runtime.Python: {"main.py": `
import sys

def handler(event, context):
    line = "x" * 999
    for _ in range(50_000):
        print(line)
    block = "y" * (1 << 20)
    for _ in range(50):
        sys.stderr.write(block)
    return "done"
`},
		runtime.NodeJS: {"index.js": `
exports.handler = async () => {
  const line = 'x'.repeat(999);
  for (let i = 0; i < 50000; i++) console.log(line);
  const block = 'y'.repeat(1 << 20);
  for (let i = 0; i < 50; i++) process.stderr.write(block);
  return 'done';
};
`},
	}
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			before := w.status("VmHWM")
			start := time.Now()
			resp := w.invoke(nil)
			elapsed := time.Since(start)
			if resp.Error != nil {
				t.Fatalf("handler failed: %+v", resp.Error)
			}
			after := w.status("VmHWM")
			t.Logf("printing 100 MB took %v; peak RSS %d kB before, %d kB after", elapsed, before, after)
			if string(resp.Result) != `"done"` {
				t.Errorf("result %s", resp.Result)
			}
			if !resp.LogsTruncated || len(resp.Logs) > runtime.DefaultLogLimit {
				t.Errorf("logsTruncated %v with %d bytes of logs", resp.LogsTruncated, len(resp.Logs))
			}
			if elapsed > 20*time.Second {
				t.Errorf("printing 100 MB took %v", elapsed)
			}
			if grew := after - before; grew > 40<<10 {
				t.Errorf("peak RSS grew by %d kB while printing 100 MB", grew)
			}
		})
	}
}

// TestLogTimes: the shims say when each line of a call's logs began, in
// ms since the call began: one time per line, in order, the lines written
// after a sleep at least that much later; a partial line gets one time.
func TestLogTimes(t *testing.T) {
	files := map[string]map[string]string{
		runtime.Python: {"main.py": `
import sys, time

def handler(event, context):
    print("one")
    time.sleep(0.06)
    sys.stdout.write("two\nthree\nfour, in ")
    time.sleep(0.06)
    print("pieces")
    print("five")
`},
		runtime.NodeJS: {"index.js": `
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
exports.handler = async () => {
  console.log('one');
  await sleep(60);
  process.stdout.write('two\nthree\nfour, in ');
  await sleep(60);
  console.log('pieces');
  console.log('five');
};
`},
	}
	for rt, fs := range files {
		t.Run(rt, func(t *testing.T) {
			handler := "main.handler"
			if rt == runtime.NodeJS {
				handler = "index.handler"
			}
			w := startWorker(t, rt, fs, handler).mustLoad()
			resp := w.invoke(nil)
			if resp.Error != nil {
				t.Fatalf("handler failed: %+v", resp.Error)
			}
			if resp.Logs != "one\ntwo\nthree\nfour, in pieces\nfive\n" {
				t.Fatalf("logs %q", resp.Logs)
			}
			ts := resp.LogTimes
			if len(ts) != 5 {
				t.Fatalf("log times %v, want one for each of 5 lines", ts)
			}
			if ts[1]-ts[0] < 55 || ts[1] != ts[2] || ts[2] != ts[3] || ts[4]-ts[3] < 55 {
				t.Errorf("log times %v: the second write began 60 ms after the first and wrote three line starts at once, the last line began 60 ms after that", ts)
			}
		})
	}
}
