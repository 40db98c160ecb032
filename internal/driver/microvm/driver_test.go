package microvm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

func TestSmoke(t *testing.T) {
	d := sharedDriver(t)
	f := function("smoke", fn.Python, "import os, sys\ndef handler(event, context):\n    print('hi', event)\n    return {'echo': event, 'env': os.environ.get('GREETING'), 'uid': os.getuid(), 'py': sys.version}\n")
	f.Env = map[string]string{"GREETING": "hello"}
	t0 := time.Now()
	inst := start(t, d, f)
	t.Logf("started in %s", time.Since(t0))
	for i := 0; i < 3; i++ {
		t1 := time.Now()
		resp, err := invoke(t, inst, `{"n": 1}`, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("call %d in %s: %s logs %q", i, time.Since(t1), resp.Result, resp.Logs)
		if !strings.Contains(string(resp.Result), `"hello"`) {
			t.Fatalf("result %s", resp.Result)
		}
	}
}
