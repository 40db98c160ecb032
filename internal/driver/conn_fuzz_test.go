package driver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

func frame(s string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

// FuzzConn feeds a Conn whatever a worker might write: a call ends with
// its own response or an error, never a panic, and never waits past the
// end of the stream.
func FuzzConn(f *testing.F) {
	ok := `{"type":"result","id":"1","result":42,"logs":"hi\n"}`
	f.Add(frame(ok))
	f.Add(append(frame(`{"type":"ready"}`), frame(ok)...))
	f.Add(frame(ok)[:10]) // half a frame, then the worker dies
	f.Add(frame(`{"type":"result","id":"2","result":1}`))
	f.Add(frame(`{"type":"result","id":"1","error":{"type":"Boom","message":"x","stack":["a"]}}`))
	f.Add(frame(`[1,2,3]`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'x'})
	f.Add(append(frame(`{"type":"ready"}`), frame(`{"type":"ready"}`)...))
	f.Fuzz(func(t *testing.T, out []byte) {
		broken := make(chan error, 1)
		c := driver.NewConn(bytes.NewReader(out), io.Discard, func(err error) { broken <- err })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.Invoke(ctx, driver.NewRequest("1", []byte(`{}`), 0))
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			t.Fatal("the call outlived the worker's stream")
		case err == nil && (resp.ID != "1" || resp.Type != runtime.TypeResult):
			t.Fatalf("answered with %+v", resp)
		}
		select {
		case <-broken:
		case <-time.After(10 * time.Second):
			t.Fatal("the end of the stream was not noticed")
		}
	})
}
