package e2e_test

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownCutsAColdStartShort: a function whose handler takes 30 s to
// load is starting when the server is told to stop. The drain ends at
// NIMBUS_SHUTDOWN_TIMEOUT (2 s), or at a second signal, and the start is
// stopped like a busy instance: the server is gone long before the 30 s.
func TestShutdownCutsAColdStartShort(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout string
		signals int
	}{
		{"drain timeout", "2s", 1},
		{"second signal", "10m", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := start(t, "NIMBUS_SHUTDOWN_TIMEOUT="+tc.timeout)
			n.create(function{Name: "slow-load", Runtime: "python", Timeout: 60_000,
				Code: "import time\ntime.sleep(30)\ndef handler(e, c):\n    return 1\n"})
			go func() { // answered or cut off by the shutdown; either is fine
				resp, err := http.Post(n.url+"/api/executions/slow-load", "application/json", strings.NewReader("{}"))
				if err == nil {
					resp.Body.Close()
				}
			}()
			var m struct{ Instances struct{ Starting int } }
			for deadline := time.Now().Add(20 * time.Second); m.Instances.Starting == 0; {
				if time.Now().After(deadline) {
					t.Fatal("the cold start never began")
				}
				time.Sleep(20 * time.Millisecond)
				n.do("GET", "/api/metrics/functions/slow-load", nil, &m)
			}
			t0 := time.Now()
			n.cmd.Process.Signal(syscall.SIGTERM)
			if tc.signals == 2 {
				// The first signal closes the listener; then the second.
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if _, err := http.Get(n.url + "/healthz"); err != nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("still serving 10 s after SIGTERM")
					}
				}
				n.cmd.Process.Signal(syscall.SIGTERM)
			}
			select {
			case <-n.exited:
			case <-time.After(20 * time.Second):
				t.Fatal("still running 20 s after being told to stop, with a 30 s start in flight")
			}
			// Well within the 30 s start: the drain (2 s) or the second
			// signal ends it, and stopping the start is quick.
			if took := time.Since(t0); took > 15*time.Second {
				t.Errorf("stopped %v after SIGTERM", took.Round(time.Millisecond))
			}
		})
	}
}
