package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nimbusfaas/nimbus/internal/bus"
)

// wait bounds every step that waits on the server. It is generous: the
// machine may be busy, and nothing here measures time.
const wait = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens a bus with cfg and closes it at the end of the test.
func open(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	cfg.Logger = quiet()
	b, err := bus.Open(testContext(t), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func ensureStream(t *testing.T, b *bus.Bus, name string) jetstream.Stream {
	t.Helper()
	s, err := b.EnsureStream(testContext(t), jetstream.StreamConfig{
		Name: name, Subjects: []string{strings.ToLower(name) + ".>"}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publish(t *testing.T, b *bus.Bus, subject, data string) {
	t.Helper()
	if _, err := b.JetStream().Publish(testContext(t), subject, []byte(data)); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

// next fetches the consumer's next message, failing the test if none
// comes within wait.
func next(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		return m
	}
	t.Fatalf("no message within %s: %v", wait, batch.Error())
	return nil
}

func delivered(t *testing.T, m jetstream.Msg) uint64 {
	t.Helper()
	md, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return md.NumDelivered
}

func TestEmbeddedRedeliversWhatIsNotAcked(t *testing.T) {
	ctx := testContext(t)
	b := open(t, bus.Config{DataDir: t.TempDir()})
	if b.Mode() != bus.Embedded {
		t.Fatalf("mode %q", b.Mode())
	}
	s := ensureStream(t, b, "JOBS")
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:    "worker",
		AckPolicy:  jetstream.AckExplicitPolicy,
		AckWait:    200 * time.Millisecond,
		MaxDeliver: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, "jobs.acked", "acked")
	publish(t, b, "jobs.dropped", "dropped")

	// First delivery of both, in order: one is acknowledged, one is not.
	if m := next(t, c); string(m.Data()) != "acked" || delivered(t, m) != 1 {
		t.Fatalf("first message %q, delivery %d", m.Data(), delivered(t, m))
	} else if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if m := next(t, c); string(m.Data()) != "dropped" || delivered(t, m) != 1 {
		t.Fatalf("second message %q, delivery %d", m.Data(), delivered(t, m))
	}
	// Only the unacknowledged one comes back, until MaxDeliver.
	for want := uint64(2); want <= 3; want++ {
		m := next(t, c)
		if string(m.Data()) != "dropped" || delivered(t, m) != want {
			t.Fatalf("redelivery: %q, delivery %d, want dropped, delivery %d", m.Data(), delivered(t, m), want)
		}
		if want == 2 {
			h := b.Health(ctx)
			if len(h.Streams) != 1 {
				t.Fatalf("health streams: %+v", h)
			}
			st := h.Streams[0]
			if st.Name != "JOBS" || st.Messages != 2 || st.Consumers != 1 || st.AckPending != 1 || st.Redelivered != 1 || st.Pending != 0 {
				t.Errorf("health of JOBS: %+v", st)
			}
			if h.Mode != bus.Embedded || !h.Connected || h.JetStream.Streams != 1 || h.JetStream.Messages != 2 || h.JetStream.Bytes == 0 || h.Error != "" {
				t.Errorf("health: %+v", h)
			}
		}
	}
	// Past MaxDeliver nothing more comes (a slow machine only makes this
	// easier to pass, never a false failure).
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		t.Fatalf("delivered past MaxDeliver: %q, delivery %d", m.Data(), delivered(t, m))
	}
}

func TestEmbeddedStateSurvivesRestart(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ensureStream(t, b, "EVENTS")
	publish(t, b, "events.one", "1")
	publish(t, b, "events.two", "2")
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ticks", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "job.nightly", []byte("2026-12-02T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "job.nightly"); err != nil || string(e.Value()) != "2026-12-02T00:00:00Z" {
		t.Fatalf("get before restart: %v, %v", e, err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b = open(t, bus.Config{DataDir: dir})
	s, err := b.JetStream().Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("messages after restart: %d, want 2", info.State.Msgs)
	}
	kv, err = b.JetStream().KeyValue(ctx, "ticks")
	if err != nil {
		t.Fatalf("bucket after restart: %v", err)
	}
	if e, err := kv.Get(ctx, "job.nightly"); err != nil || string(e.Value()) != "2026-12-02T00:00:00Z" {
		t.Fatalf("get after restart: %v, %v", e, err)
	}
	if _, err := kv.Get(ctx, "job.hourly"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("missing key: %v", err)
	}
}

func TestEmbeddedListensNowhereAndWantsAuth(t *testing.T) {
	b := open(t, bus.Config{DataDir: t.TempDir()})
	srv := b.EmbeddedServer()
	if srv == nil {
		t.Fatal("no embedded server")
	}
	if a := srv.Addr(); a != nil {
		t.Errorf("embedded NATS listens on %s", a)
	}
	if a := srv.MonitorAddr(); a != nil {
		t.Errorf("embedded NATS serves monitoring on %s", a)
	}
	// Even the in-process way in needs the password made up at start.
	// (Over the in-process pipe the server's "Authorization Violation"
	// is often lost: the client sees the pipe closed instead, after the
	// server's write deadline.)
	for name, opts := range map[string][]nats.Option{
		"no credentials": nil,
		"wrong password": {nats.UserInfo("nimbus", "guess")},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			nc, err := nats.Connect("", append(opts, nats.InProcessServer(srv))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
		})
	}
}

// startNATS runs a NATS server with JetStream in this process, listening
// on loopback at a free port, as an external cluster would be.
func startNATS(t *testing.T, jetStream bool) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: jetStream, StoreDir: t.TempDir(),
		Username: "alice", Password: "s3cret",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(wait) {
		t.Fatal("nats-server not ready")
	}
	return srv
}

func TestExternal(t *testing.T) {
	ctx := testContext(t)
	srv := startNATS(t, true)
	b := open(t, bus.Config{URL: srv.ClientURL(), User: "alice", Password: "s3cret", DataDir: t.TempDir()})
	if b.Mode() != bus.External || b.EmbeddedServer() != nil {
		t.Fatalf("mode %q, embedded %v", b.Mode(), b.EmbeddedServer())
	}
	s := ensureStream(t, b, "ORDERS")
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		publish(t, b, "orders."+id, "order "+id)
	}
	h := b.Health(ctx)
	if h.Mode != bus.External || !h.Connected || h.Error != "" || !strings.HasPrefix(h.URL, "nats://127.0.0.1:") || strings.Contains(h.URL, "s3cret") {
		t.Errorf("health: %+v", h)
	}
	if h.JetStream.Streams != 1 || h.JetStream.Consumers != 1 || h.JetStream.Messages != 3 {
		t.Errorf("jetstream totals: %+v", h.JetStream)
	}
	if len(h.Streams) != 1 || h.Streams[0].Name != "ORDERS" || h.Streams[0].Pending != 3 || h.Streams[0].AckPending != 0 {
		t.Errorf("streams: %+v", h.Streams)
	}

	reg := prometheus.NewRegistry()
	if err := bus.RegisterMetrics(reg, b); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP nimbus_bus_connected 1 while the connection to NATS is up.
# TYPE nimbus_bus_connected gauge
nimbus_bus_connected{mode="external"} 1
# HELP nimbus_bus_consumer_pending Messages of the stream not yet delivered to the consumer.
# TYPE nimbus_bus_consumer_pending gauge
nimbus_bus_consumer_pending{consumer="billing",stream="ORDERS"} 3
# HELP nimbus_bus_consumer_redelivered Unacknowledged messages the consumer has been given more than once.
# TYPE nimbus_bus_consumer_redelivered gauge
nimbus_bus_consumer_redelivered{consumer="billing",stream="ORDERS"} 0
# HELP nimbus_bus_stream_messages Messages held in the JetStream stream.
# TYPE nimbus_bus_stream_messages gauge
nimbus_bus_stream_messages{stream="ORDERS"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"nimbus_bus_connected", "nimbus_bus_consumer_pending", "nimbus_bus_consumer_redelivered", "nimbus_bus_stream_messages"); err != nil {
		t.Error(err)
	}
}

func TestExternalRefused(t *testing.T) {
	withJS, withoutJS := startNATS(t, true), startNATS(t, false)
	for _, tc := range []struct {
		name string
		cfg  bus.Config
	}{
		{"wrong password", bus.Config{URL: withJS.ClientURL(), User: "alice", Password: "guess"}},
		{"no jetstream", bus.Config{URL: withoutJS.ClientURL(), User: "alice", Password: "s3cret"}},
		{"missing creds file", bus.Config{URL: withJS.ClientURL(), CredsFile: "/nonexistent/nimbus.creds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet()
			ctx, cancel := context.WithTimeout(testContext(t), wait)
			defer cancel()
			b, err := bus.Open(ctx, tc.cfg)
			if err == nil {
				b.Close(ctx)
				t.Fatal("opened")
			}
		})
	}
}
