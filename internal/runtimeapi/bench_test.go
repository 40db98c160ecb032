package runtimeapi_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// BenchmarkRelayWarmCall is a warm call through the relay alone, in this
// process, its streams in pipes (no sandbox, no engine, no HTTP front):
// the frame to the relay, the bootstrap's …/next answered, its response
// POSTed, the result frame back.
func BenchmarkRelayWarmCall(b *testing.B) {
	r := startRelayB(b)
	ctx := context.Background()
	event := json.RawMessage(`{"value":{"hello":"world","n":1}}`)
	b.ResetTimer()
	for i := range b.N {
		resp, err := r.conn.Invoke(ctx, driver.NewRequest("b-"+strconv.Itoa(i), event, time.Now().Add(time.Minute).UnixMilli()))
		if err != nil || resp.Error != nil {
			b.Fatalf("invoke: %v %+v", err, resp)
		}
	}
}
