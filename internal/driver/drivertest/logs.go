package drivertest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// testStreamedLogs: under driver.WithLogs a call's output reaches the
// LogFunc while the call runs. The handler prints, then waits until a
// second call on the same instance (concurrency 2) releases it, so the
// first line must arrive while the first call is still in flight.
func testStreamedLogs(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
import threading
released = threading.Event()
def handler(event, context):
    if event.get("release"):
        released.set()
        return "released"
    print("waiting")
    released.wait(300)
    print("released")
    return "done"
`,
		runtime.NodeJS: `
let release;
const released = new Promise((r) => { release = r; });
exports.handler = async (event) => {
  if (event.release) { release(); return 'released'; }
  console.log('waiting');
  await released;
  console.log('released');
  return 'done';
};
`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	f.Concurrency = 2
	in := Start(t, d, f)

	var mu sync.Mutex
	var streamed strings.Builder
	first := make(chan struct{})
	var once sync.Once
	logs := func(data string) {
		mu.Lock()
		streamed.WriteString(data)
		if strings.Contains(streamed.String(), "waiting\n") {
			once.Do(func() { close(first) })
		}
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	deadline, _ := ctx.Deadline()
	type answer struct {
		resp *runtime.Response
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := in.Invoke(driver.WithLogs(ctx, logs), driver.NewRequest("streamed-1", json.RawMessage(`{}`), deadline.UnixMilli()))
		done <- answer{resp, err}
	}()
	select {
	case <-first:
	case a := <-done:
		t.Fatalf("the call ended before its first line was streamed: %+v %v", a.resp, a.err)
	case <-time.After(2 * time.Minute):
		t.Fatal("no streamed line in 2 minutes")
	}
	if r := MustInvoke[string](t, in, map[string]bool{"release": true}); r != "released" {
		t.Fatalf("release call: %q", r)
	}
	a := <-done
	if a.err != nil || a.resp.Error != nil {
		t.Fatalf("streamed call: %v %+v", a.err, a.resp)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := streamed.String(); got != "waiting\nreleased\n" || a.resp.Logs != got {
		t.Fatalf("streamed %q, the result's logs %q", got, a.resp.Logs)
	}
}
