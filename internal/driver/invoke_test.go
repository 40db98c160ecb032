package driver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// echoWorker answers each request on its pipes after delay, with logs "ran\n".
func echoWorker(t *testing.T, delay time.Duration) *driver.Conn {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	t.Cleanup(func() { reqW.Close(); respW.Close() })
	var wmu sync.Mutex
	go func() {
		for {
			b, err := runtime.ReadFrame(reqR, 1<<20)
			if err != nil {
				return
			}
			var req runtime.Request
			json.Unmarshal(b, &req)
			go func() {
				time.Sleep(delay)
				wmu.Lock()
				defer wmu.Unlock()
				runtime.WriteFrame(respW, runtime.Response{Type: runtime.TypeResult, ID: req.ID, Result: json.RawMessage(`1`), Logs: "ran\n"})
			}()
		}
	}()
	return driver.NewConn(respR, reqW, nil)
}

func TestInvokeKillsOnTimeout(t *testing.T) {
	conn := echoWorker(t, time.Second)
	var mu sync.Mutex
	var reasons []string
	kill := func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var logs driver.InitLogs
	_, err := driver.Invoke(ctx, conn, driver.NewRequest("a", nil, 0), &logs, kill, func(err error) error { return err })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) == 0 || reasons[0] != "timeout" {
		t.Fatalf("kill reasons %q, want timeout", reasons)
	}
}

func TestInitLogsGoToOneResponse(t *testing.T) {
	conn := echoWorker(t, 5*time.Millisecond)
	var logs driver.InitLogs
	logs.Set("loaded\n")
	got := make(chan string, 4)
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c", "d"} { // calls sharing an instance
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := driver.Invoke(context.Background(), conn, driver.NewRequest(id, nil, 0), &logs, func(string) {}, func(err error) error { return err })
			if err != nil {
				t.Error(err)
				return
			}
			got <- resp.Logs
		}()
	}
	wg.Wait()
	close(got)
	with := 0
	for l := range got {
		switch l {
		case "loaded\nran\n":
			with++
		case "ran\n":
		default:
			t.Errorf("logs %q", l)
		}
	}
	if with != 1 {
		t.Fatalf("%d responses carry the load's logs, want exactly 1", with)
	}
}

// A worker that answers and exits at once (a handler that failed to load
// does) is reported by its answer, not by its exit.
func TestAnswerBeforeExitWins(t *testing.T) {
	for range 200 {
		reqR, reqW := io.Pipe()
		respR, respW := io.Pipe()
		go io.Copy(io.Discard, reqR)
		go func() {
			runtime.WriteFrame(respW, runtime.Response{Type: runtime.TypeReady, Error: &runtime.Error{Type: "Runtime.HandlerNotFound", Message: "no"}})
			respW.Close()
		}()
		conn := driver.NewConn(respR, reqW, nil)
		<-conn.Dead() // both the answer and the end are there
		_, err := conn.Init(context.Background(), runtime.Init{})
		var rt *runtime.Error
		if !errors.As(err, &rt) {
			t.Fatalf("Init after answer and exit: %v, want the answer's error", err)
		}
	}
}
