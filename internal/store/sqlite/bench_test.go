package sqlite_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// BenchmarkInsertExecutions measures the cost of writing one small record
// in batches of 256 (and of 1000, the size the target is stated for); ns/op
// is per record, ms/1000rec the same scaled to a thousand.
func BenchmarkInsertExecutions(b *testing.B) {
	for _, batch := range []int{256, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchInsert(b, batch) })
	}
}

func benchInsert(b *testing.B, batch int) {
	ctx := b.Context()
	s := openClosing(b, filepath.Join(b.TempDir(), "bench.db"))
	f := testFunction("bench")
	if err := s.CreateFunction(ctx, f); err != nil {
		b.Fatalf("CreateFunction: %v", err)
	}
	execs := make([]*fn.Execution, b.N)
	now := time.Now()
	for i := range execs {
		execs[i] = &fn.Execution{
			ID: fn.NewID(), FunctionID: f.ID, Version: 1, Status: fn.StatusSuccess,
			Event:  json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
			Result: json.RawMessage(`{"ok":true}`), Logs: "hello\n",
			StartedAt: now, DurationMs: 1.5, QueueMs: 0.1,
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < len(execs); i += batch {
		if err := s.InsertExecutions(ctx, execs[i:min(i+batch, len(execs))]); err != nil {
			b.Fatalf("InsertExecutions: %v", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*1000/1e6, "ms/1000rec")
}
