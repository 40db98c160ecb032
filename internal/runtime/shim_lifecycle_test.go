package runtime_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// A worker's life as a process: it ends at EOF on its request pipe, keeps
// serving after the handler calls sys.exit, and its protocol pipes do not
// leak into subprocesses.

func TestWorkerExitsAtEOF(t *testing.T) {
	files := map[string]map[string]string{
		runtime.Python: {"main.py": "def handler(e, c):\n    return 1\n"},
		runtime.NodeJS: {"index.js": "setInterval(() => {}, 1000);\nexports.handler = async () => 1;\n"},
	}
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			w.result(nil)
			w.closeRequests()
			if code := w.exitCode(10 * time.Second); code != 0 {
				t.Errorf("exit status %d at EOF, want 0; stderr: %s", code, w.stderr.String())
			}
			if out := w.stdout.String(); out != "" {
				t.Errorf("worker wrote %q to stdout", out)
			}
		})
	}
}

func TestSysExitKeepsServing(t *testing.T) {
	w := startWorker(t, runtime.Python, map[string]string{"main.py": `
import sys

def handler(event, context):
    if event == "exit":
        print("bye")
        sys.exit("leaving")
    return "alive"
`}, "main.handler").mustLoad()
	resp := w.invoke("exit")
	if resp.Error == nil || resp.Error.Type != "Runtime.ExitError" || resp.Logs != "bye\n" {
		t.Fatalf("got error %+v, logs %q; want Runtime.ExitError, logs \"bye\\n\"", resp.Error, resp.Logs)
	}
	if got := w.result("again"); string(got) != `"alive"` {
		t.Errorf("after sys.exit: %s", got)
	}
}

func TestSubprocessDoesNotInheritProtocolFds(t *testing.T) {
	_, err := os.Stat("/proc/self/fd")
	testenv.Require(t, "/proc", err)
	// The child lists where its open descriptors lead. Python is asked not
	// to close them (close_fds=False): only FD_CLOEXEC keeps them out.
	script := `for f in /proc/$$/fd/*; do readlink "$f"; done; true`
	files := map[string]map[string]string{
		runtime.Python: {"main.py": `
import subprocess

def handler(event, context):
    out = subprocess.run(["sh", "-c", event], capture_output=True, text=True, close_fds=False)
    return out.stdout.split()
`},
		runtime.NodeJS: {"index.js": `
const { execFileSync } = require('child_process');
exports.handler = async (event) => execFileSync('sh', ['-c', event], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
`},
	}
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			links := decode[[]string](t, w.result(script))
			if len(links) < 3 {
				t.Fatalf("child saw only %q", links)
			}
			for _, ino := range w.pipeInodes() {
				pipe := fmt.Sprintf("pipe:[%d]", ino)
				for _, l := range links {
					if l == pipe {
						t.Errorf("child inherited protocol pipe %s: %q", pipe, links)
					}
				}
			}
		})
	}
}
