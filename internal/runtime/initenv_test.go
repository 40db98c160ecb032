package runtime_test

import (
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// withInitEnv sets Init's env, the environment a generic worker learns only
// when it is handed its function.
func withInitEnv(env map[string]string) workerOption {
	return func(c *workerConfig) { c.init.Env = env }
}

// TestInitEnv checks that Init's env is in the environment before the
// handler's module is imported, and overrides what the worker started with.
func TestInitEnv(t *testing.T) {
	files := map[string]map[string]string{
		runtime.Python: {"main.py": `
import os, time
AT_IMPORT = os.environ.get("GREETING")

def handler(event, context):
    return [AT_IMPORT, os.environ.get("GREETING"), os.environ.get("TZ"), os.environ.get("EMPTY"),
            str(-time.timezone // 60)]
`},
		runtime.NodeJS: {"index.js": `
const atImport = process.env.GREETING;
exports.handler = async () => [atImport, process.env.GREETING, process.env.TZ, process.env.EMPTY,
  String(-new Date(Date.UTC(2024, 0, 15)).getTimezoneOffset())];
`},
	}
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
	env := map[string]string{"GREETING": "from init", "TZ": "Europe/Paris", "EMPTY": ""}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt], withInitEnv(env)).mustLoad()
			got := decode[[]*string](t, w.result(nil))
			// Europe/Paris is UTC+1 in January: the time zone applies too.
			want := []string{"from init", "from init", "Europe/Paris", "", "60"}
			if len(got) != len(want) {
				t.Fatalf("got %d values, want %d", len(got), len(want))
			}
			for i, v := range got {
				if v == nil || *v != want[i] {
					t.Errorf("value %d: got %v, want %q", i, v, want[i])
				}
			}
		})
	}
}
