package e2e_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/nimbusfaas/nimbus/internal/store/mongo/mongotest"
)

// startSharedNATS runs a NATS server with JetStream for several Nimbus
// servers, on loopback.
func startSharedNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(), MaxPayload: 8 << 20,
		Username: "nimbus", Password: "e2e-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv
}

// TestScheduleFiresOnceAcrossTwoServers: two servers share one NATS and
// one MongoDB; a one-second schedule fires each tick once, on time, with
// the tick's time in an EventBridge-shaped event, and stops when it is
// removed. The API shows when it fires next.
func TestScheduleFiresOnceAcrossTwoServers(t *testing.T) {
	nats := startSharedNATS(t)
	db := mongotest.Start(t)
	uri := db.NewDatabase(t)
	env := []string{"MONGODB_URI=" + uri, "NIMBUS_NATS_URL=" + nats.ClientURL(), "NIMBUS_NATS_USER=nimbus", "NIMBUS_NATS_PASSWORD=e2e-secret"}
	a := start(t, env...)
	b := start(t, env...)

	spec := map[string]any{
		"name": "ticker", "runtime": "python",
		"code":      "def handler(event, context):\n    return event['time']\n",
		"schedules": []map[string]any{{"name": "every-second", "cron": "* * * * * *", "event": map[string]any{"job": "tick"}}},
	}
	var created struct {
		ID        string `json:"id"`
		Schedules []struct {
			Name    string     `json:"name"`
			NextRun *time.Time `json:"nextRun"`
		} `json:"schedules"`
	}
	if st := a.do("POST", "/api/functions", spec, &created); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	if s := created.Schedules; len(s) != 1 || s[0].NextRun == nil || time.Until(*s[0].NextRun) > 2*time.Second {
		t.Errorf("schedules as created: %+v, want the next run within a second", s)
	}

	// Let it fire for a while on both servers, then remove it.
	time.Sleep(8 * time.Second)
	if st := b.do("PUT", "/api/functions/ticker", map[string]any{"schedules": []any{}}, nil); st != 200 {
		t.Fatalf("remove the schedule: %d", st)
	}
	removed := time.Now()
	time.Sleep(4 * time.Second) // both servers poll every 2 s

	got, st := a.history("ticker", 1000)
	if st != 200 {
		t.Fatalf("history: %d", st)
	}
	ticks := map[string]int{}
	for _, ex := range got {
		r := a.record("ticker", ex.ExecutionID)
		if r.Trigger != "schedule" {
			t.Errorf("record %s has trigger %q", r.ExecutionID, r.Trigger)
			continue
		}
		var ev struct {
			DetailType string         `json:"detail-type"`
			Time       time.Time      `json:"time"`
			Resources  []string       `json:"resources"`
			Detail     map[string]any `json:"detail"`
		}
		if err := json.Unmarshal(r.Event, &ev); err != nil || ev.DetailType != "Scheduled Event" || ev.Detail["job"] != "tick" ||
			len(ev.Resources) != 1 || ev.Resources[0] != "ticker/every-second" {
			t.Errorf("event %s", r.Event)
			continue
		}
		ticks[ev.Time.Format(time.RFC3339)]++
		started, _ := time.Parse(time.RFC3339Nano, r.StartedAt)
		// On time: a loaded CI machine gets a generous margin.
		if late := started.Sub(ev.Time); late < 0 || late > 5*time.Second {
			t.Errorf("tick %s ran at %s", ev.Time, started)
		}
		if ev.Time.After(removed.Add(3 * time.Second)) {
			t.Errorf("tick %s fired after the schedule was removed at %s", ev.Time, removed)
		}
	}
	for tick, n := range ticks {
		if n != 1 {
			t.Errorf("tick %s ran %d times", tick, n)
		}
	}
	if len(ticks) < 4 {
		t.Errorf("%d ticks in 8 s of a one-second schedule", len(ticks))
	}
}
