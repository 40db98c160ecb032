package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/store"
)

// metricsStore returns the Store's optional MetricsStore, or skips.
func (h *harness) metricsStore(t *testing.T) store.MetricsStore {
	t.Helper()
	ms, ok := h.s.(store.MetricsStore)
	if !ok {
		t.Skipf("%T does not implement store.MetricsStore (optional)", h.s)
	}
	return ms
}

func minute(i int) time.Time { return epoch.Truncate(time.Minute).Add(time.Duration(i) * time.Minute) }

func assertMinutes(t *testing.T, got, want []store.MetricMinute) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d minutes, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	key := func(m store.MetricMinute) string { return m.FunctionID + "@" + m.Start.UTC().String() }
	wanted := make(map[string][]byte, len(want))
	for _, m := range want {
		wanted[key(m)] = m.Data
	}
	for i, m := range got {
		if i > 0 && m.Start.Before(got[i-1].Start) {
			t.Errorf("minute %d (%v) is older than the one before it (%v): want oldest first", i, m.Start, got[i-1].Start)
		}
		data, ok := wanted[key(m)]
		if !ok {
			t.Errorf("unexpected minute %q at %v", m.FunctionID, m.Start)
			continue
		}
		if !bytes.Equal(m.Data, data) {
			t.Errorf("minute %q at %v: data %q, want %q", m.FunctionID, m.Start, m.Data, data)
		}
		delete(wanted, key(m))
	}
}

func testMetricMinutes(t *testing.T, h *harness) {
	ms := h.metricsStore(t)
	binary := []byte{0, 1, 2, 0xff, 0xfe, '"', '\\', 0}
	saved := []store.MetricMinute{
		{FunctionID: store.SystemMetrics, Start: minute(0), Data: []byte(`{"system":0}`)},
		{FunctionID: "fa", Start: minute(0), Data: []byte(`{"a":0}`)},
		{FunctionID: "fa", Start: minute(1), Data: binary},
		{FunctionID: "fb", Start: minute(1), Data: []byte(`{"b":1}`)},
		{FunctionID: store.SystemMetrics, Start: minute(2), Data: []byte(`{"system":2}`)},
		{FunctionID: "fa", Start: minute(5), Data: []byte(`{"a":5}`)},
	}
	if err := ms.SaveMinutes(h.ctx, saved[:2]); err != nil {
		t.Fatalf("SaveMinutes: %v", err)
	}
	if err := ms.SaveMinutes(h.ctx, saved[2:]); err != nil {
		t.Fatalf("SaveMinutes: %v", err)
	}
	if err := ms.SaveMinutes(h.ctx, nil); err != nil {
		t.Errorf("SaveMinutes(empty) = %v, want nil", err)
	}

	t.Run("load since", func(t *testing.T) {
		got, err := ms.LoadMinutes(h.ctx, minute(0))
		if err != nil {
			t.Fatalf("LoadMinutes: %v", err)
		}
		assertMinutes(t, got, saved)
		got, err = ms.LoadMinutes(h.ctx, minute(1))
		if err != nil {
			t.Fatalf("LoadMinutes: %v", err)
		}
		assertMinutes(t, got, saved[2:])
		got, err = ms.LoadMinutes(h.ctx, minute(6))
		if err != nil || len(got) != 0 {
			t.Fatalf("LoadMinutes after the last = %v, %v; want none", got, err)
		}
	})

	t.Run("save replaces the same minute", func(t *testing.T) {
		again := store.MetricMinute{FunctionID: "fa", Start: minute(1), Data: []byte(`{"a":"merged"}`)}
		if err := ms.SaveMinutes(h.ctx, []store.MetricMinute{again}); err != nil {
			t.Fatalf("SaveMinutes: %v", err)
		}
		got, err := ms.LoadMinutes(h.ctx, minute(1))
		if err != nil {
			t.Fatalf("LoadMinutes: %v", err)
		}
		want := append([]store.MetricMinute{again}, saved[3:]...)
		assertMinutes(t, got, want)
		saved[2] = again
	})

	t.Run("survive a restart", func(t *testing.T) {
		h.restart(t)
		ms = h.metricsStore(t)
		got, err := ms.LoadMinutes(h.ctx, minute(0))
		if err != nil {
			t.Fatalf("LoadMinutes: %v", err)
		}
		assertMinutes(t, got, saved)
	})

	t.Run("delete one function's minutes", func(t *testing.T) {
		if err := ms.DeleteMinutes(h.ctx, "fb"); err != nil {
			t.Fatalf("DeleteMinutes: %v", err)
		}
		got, err := ms.LoadMinutes(h.ctx, minute(0))
		if err != nil {
			t.Fatalf("LoadMinutes: %v", err)
		}
		assertMinutes(t, got, []store.MetricMinute{saved[0], saved[1], saved[2], saved[4], saved[5]})
	})

	t.Run("prune before a cutoff", func(t *testing.T) {
		n, err := ms.PruneMinutes(h.ctx, minute(2))
		if err != nil || n != 3 {
			t.Fatalf("PruneMinutes = %d, %v; want 3 deleted", n, err)
		}
		got, err := ms.LoadMinutes(h.ctx, time.Time{})
		if err != nil {
			t.Fatalf("LoadMinutes: %v", err)
		}
		assertMinutes(t, got, []store.MetricMinute{saved[4], saved[5]})
	})
}
