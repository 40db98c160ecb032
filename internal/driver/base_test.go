package driver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// fakeWorker is a worker on a pair of pipes, under a driver.Base, that
// answers each request after delay with logs "ran\n", or, when mute,
// never. Killing it closes its pipes and, unless it ignores kills, ends
// it with exit code 137.
type fakeWorker struct {
	*driver.Base
	reqR, respR *io.PipeReader
	reqW, respW *io.PipeWriter
	delay       time.Duration
	mute        bool
	ignoreKills bool
	mu          sync.Mutex
	kills       int
	once        sync.Once
	readyErr    *runtime.Error // the init answer's error, if any
	dieOnInit   bool           // exit (code 1) instead of answering Init
}

func newFakeWorker(t *testing.T, w *fakeWorker, grace time.Duration) *fakeWorker {
	w.reqR, w.reqW = io.Pipe()
	w.respR, w.respW = io.Pipe()
	t.Cleanup(func() { w.reqW.Close(); w.respW.Close() })
	w.Base = driver.NewBase(w.kill, grace)
	w.Connect(w.respR, w.reqW)
	go w.serve()
	return w
}

func (w *fakeWorker) kill() error {
	w.mu.Lock()
	w.kills++
	w.mu.Unlock()
	if !w.ignoreKills {
		w.exit(driver.ExitInfo{Code: -1, Signal: "SIGKILL"})
	}
	return nil
}

func (w *fakeWorker) exit(info driver.ExitInfo) {
	w.once.Do(func() {
		w.reqR.Close()
		w.respW.Close()
		w.Exited(info)
	})
}

func (w *fakeWorker) killCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kills
}

func (w *fakeWorker) serve() {
	var wmu sync.Mutex
	for {
		b, err := runtime.ReadFrame(w.reqR, 1<<20)
		if err != nil {
			return
		}
		var req runtime.Request
		json.Unmarshal(b, &req)
		if req.Type == runtime.TypeInit {
			if w.dieOnInit {
				w.exit(driver.ExitInfo{Code: 1})
				return
			}
			wmu.Lock()
			runtime.WriteFrame(w.respW, runtime.Response{Type: runtime.TypeReady, Error: w.readyErr, Logs: "loaded\n"})
			wmu.Unlock()
			continue
		}
		if w.mute {
			continue
		}
		go func() {
			time.Sleep(w.delay)
			wmu.Lock()
			defer wmu.Unlock()
			runtime.WriteFrame(w.respW, runtime.Response{Type: runtime.TypeResult, ID: req.ID, Result: json.RawMessage(`1`), Logs: "ran\n", LogTimes: []int{7}})
		}()
	}
}

func TestInvokeKillsOnTimeout(t *testing.T) {
	w := newFakeWorker(t, &fakeWorker{delay: time.Second}, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := w.Invoke(ctx, driver.NewRequest("a", nil, 0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the worker was not killed")
	}
	if e := w.Exit(); e.Reason != "timeout" || e.Signal != "SIGKILL" {
		t.Fatalf("exit %+v, want SIGKILL for timeout", e)
	}
}

func TestInitLogsGoToOneResponse(t *testing.T) {
	w := newFakeWorker(t, &fakeWorker{delay: 5 * time.Millisecond}, time.Second)
	if err := w.Load(context.Background(), runtime.Init{}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *runtime.Response, 4)
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c", "d"} { // calls sharing an instance
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := w.Invoke(context.Background(), driver.NewRequest(id, nil, 0))
			if err != nil {
				t.Error(err)
				return
			}
			got <- resp
		}()
	}
	wg.Wait()
	close(got)
	with := 0
	for r := range got {
		switch {
		case r.Logs == "loaded\nran\n" && slices.Equal(r.LogTimes, []int{0, 7}): // the load's line at the call's start
			with++
		case r.Logs == "ran\n" && slices.Equal(r.LogTimes, []int{7}):
		default:
			t.Errorf("logs %q, times %v", r.Logs, r.LogTimes)
		}
	}
	if with != 1 {
		t.Fatalf("%d responses carry the load's logs, want exactly 1", with)
	}
}

// The first reason given wins, a kill after the end records nothing, and
// the reason replaces the one the driver read.
func TestFirstKillReasonWins(t *testing.T) {
	w := newFakeWorker(t, &fakeWorker{ignoreKills: true}, time.Second)
	w.Kill("idle")
	w.Kill("new version")
	if r := w.Reason(); r != "idle" {
		t.Fatalf("reason %q, want idle", r)
	}
	w.exit(driver.ExitInfo{Code: -1, Signal: "SIGKILL", Reason: "the driver's own"})
	w.Kill("after the end")
	if e := w.Exit(); e.Reason != "idle" || e.Signal != "SIGKILL" {
		t.Fatalf("exit %+v, want SIGKILL with reason idle", e)
	}
	if n := w.killCount(); n != 3 {
		t.Fatalf("the driver's kill ran %d times, want every Kill (3)", n)
	}
}

// Without a kill, the driver's reason stands.
func TestDriverReasonStands(t *testing.T) {
	w := newFakeWorker(t, &fakeWorker{}, time.Second)
	w.exit(driver.ExitInfo{Code: -1, Reason: "virtual machine stopped"})
	if e := w.Exit(); e.Reason != "virtual machine stopped" {
		t.Fatalf("exit %+v", e)
	}
}

// A worker that dies under a call gives an ExitError saying how it ended.
func TestDiedUnderACall(t *testing.T) {
	w := newFakeWorker(t, &fakeWorker{mute: true}, time.Second)
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.exit(driver.ExitInfo{Code: 3})
	}()
	_, err := w.Invoke(context.Background(), driver.NewRequest("a", nil, 0))
	var ee *driver.ExitError
	if !errors.As(err, &ee) || ee.Exit.Code != 3 || ee.Exit.Reason != "" {
		t.Fatalf("err = %v, want an ExitError with code 3", err)
	}
	if n := w.killCount(); n != 0 {
		t.Fatalf("a worker that exited by itself was killed %d times", n)
	}
}

// A worker whose stream broke but that lives on is killed after the grace
// period, and the call learns why.
func TestBrokenStreamKillsAfterGrace(t *testing.T) {
	w := newFakeWorker(t, &fakeWorker{mute: true}, 50*time.Millisecond)
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.respW.Write([]byte{0, 0, 0, 1, '{'}) // not a response
	}()
	t0 := time.Now()
	_, err := w.Invoke(context.Background(), driver.NewRequest("a", nil, 0))
	var ee *driver.ExitError
	if !errors.As(err, &ee) || ee.Exit.Signal != "SIGKILL" {
		t.Fatalf("err = %v, want an ExitError of a killed worker", err)
	}
	if !strings.HasPrefix(ee.Exit.Reason, "broke the protocol") {
		t.Errorf("reason %q, want it to say the protocol broke", ee.Exit.Reason)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}

func TestFailStart(t *testing.T) {
	t.Run("handler failed to load", func(t *testing.T) {
		w := newFakeWorker(t, &fakeWorker{readyErr: &runtime.Error{Type: "Runtime.ImportModuleError", Message: "no"}}, time.Second)
		err := w.Load(context.Background(), runtime.Init{})
		var ie *driver.InitError
		if !errors.As(err, &ie) || ie.Logs != "loaded\n" || ie.Err.Type != "Runtime.ImportModuleError" {
			t.Fatalf("err = %v, want an InitError with the load's logs", err)
		}
		<-w.Done()
		if e := w.Exit(); e.Reason != "handler failed to load" {
			t.Errorf("exit %+v", e)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		w := newFakeWorker(t, &fakeWorker{}, time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := w.FailStart(ctx, errors.New("write: broken pipe"), ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the context's", err)
		}
		if e := w.Exit(); e.Reason != "cancelled" {
			t.Errorf("exit %+v", e)
		}
	})
	t.Run("died", func(t *testing.T) {
		w := newFakeWorker(t, &fakeWorker{dieOnInit: true}, time.Second)
		err := w.Load(context.Background(), runtime.Init{})
		var ee *driver.ExitError
		if !errors.As(err, &ee) || ee.Exit.Code != 1 {
			t.Fatalf("err = %v, want the ExitError of a worker that exited with 1", err)
		}
		if n := w.killCount(); n != 0 {
			t.Errorf("a worker that exited by itself was killed %d times", n)
		}
	})
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
