package runtime_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   any
		out  any // pointer to a zero value of in's type
	}{
		{"init", &runtime.Init{Type: runtime.TypeInit, Handler: "main.handler", TaskDir: "/task", FunctionName: "f", FunctionVersion: "2", MemoryMB: 128, LogLimit: 10, ResultLimit: 20}, &runtime.Init{}},
		{"request", &runtime.Request{Type: runtime.TypeInvoke, ID: "r1", Event: json.RawMessage(`{"a":[1,2,"é"]}`), DeadlineMs: 1700000000000}, &runtime.Request{}},
		{"result", &runtime.Response{Type: runtime.TypeResult, ID: "r1", Result: json.RawMessage(`"ok"`), Logs: "line\n", LogsTruncated: true}, &runtime.Response{}},
		{"error", &runtime.Response{Type: runtime.TypeReady, Error: &runtime.Error{Type: "Runtime.HandlerNotFound", Message: "no", Stack: "s"}}, &runtime.Response{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := runtime.WriteFrame(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			n := binary.BigEndian.Uint32(buf.Bytes()[:4])
			if int(n) != buf.Len()-4 {
				t.Fatalf("length prefix %d, body %d bytes", n, buf.Len()-4)
			}
			b, err := runtime.ReadFrame(&buf, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, tt.out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tt.in, tt.out) {
				t.Errorf("got %+v, want %+v", tt.out, tt.in)
			}
			if _, err := runtime.ReadFrame(&buf, 1<<20); err != io.EOF {
				t.Errorf("after the last frame: %v, want io.EOF", err)
			}
		})
	}
}

func TestReadFrameErrors(t *testing.T) {
	frame := func(n uint32, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		return append(b, body...)
	}
	tests := []struct {
		name    string
		data    []byte
		max     int
		wantErr error
	}{
		{"empty", nil, 100, io.EOF},
		{"truncated header", []byte{0, 0}, 100, io.ErrUnexpectedEOF},
		{"truncated body", frame(10, "abc"), 100, io.ErrUnexpectedEOF},
		{"header only", frame(10, ""), 100, io.ErrUnexpectedEOF},
		{"too large", frame(101, ""), 100, runtime.ErrFrameTooLarge},
		{"too large, huge", frame(0xffffffff, "x"), runtime.MaxResponseFrame, runtime.ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runtime.ReadFrame(bytes.NewReader(tt.data), tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadFrame: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestReadFrameAtLimit(t *testing.T) {
	var buf bytes.Buffer
	body := bytes.Repeat([]byte("x"), 100)
	if err := runtime.WriteRaw(&buf, body); err != nil {
		t.Fatal(err)
	}
	got, err := runtime.ReadFrame(&buf, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("got %d bytes, want %d", len(got), len(body))
	}
}
