package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Names and places the drivers and the relay agree on.
const (
	// ProcessName is the argv[0] (its base name) under which the server's
	// binary runs as the relay.
	ProcessName = "nimbus-runtime-api"
	// RelayPath is where a driver shows an instance the server's binary,
	// read-only: run under this path, its base name is ProcessName. Not in
	// /var/nimbus, the docker driver's protocol directory.
	RelayPath = "/var/lib/nimbus/" + ProcessName
	// DefaultAddr is where the relay serves the Runtime API, in the
	// instance's own network namespace: Lambda's own address.
	DefaultAddr = "127.0.0.1:9001"
	// EnvAddr overrides DefaultAddr (":0" style addresses pick a port); it
	// is the relay's, never passed to the bootstrap.
	EnvAddr = "NIMBUS_RUNTIME_API_ADDR"
	// RuntimeDir is LAMBDA_RUNTIME_DIR, as Lambda's.
	RuntimeDir = "/var/runtime"
)

// Lambda's error types for the runtime's mistakes, as its Runtime API
// answers them.
const (
	errInvalidRequestID  = "InvalidRequestID"
	errInvalidTransition = "InvalidStateTransition"
	errTooLarge          = "RequestEntityTooLarge"
)

// Config is what a Relay needs. Main fills it from the process: fds 3 and
// 4, EnvAddr, os.Environ.
type Config struct {
	Requests  io.Reader // request frames from the server (fd 3)
	Responses io.Writer // response frames to the server (fd 4)
	Addr      string    // where to listen; DefaultAddr when ""
	Environ   []string  // the bootstrap's environment before the function's
	Log       *slog.Logger
	// Stderr receives what the bootstrap prints outside any call and
	// before its init (nil: discarded).
	Stderr io.Writer
}

// Relay serves one instance's Runtime API to its bootstrap.
type Relay struct {
	cfg Config
	log *slog.Logger

	wmu sync.Mutex // one frame at a time on cfg.Responses

	init        runtime.Init
	logLimit    int
	resultLimit int
	arn         string

	queue      chan *runtime.Request // requests not yet handed to a …/next
	serverGone chan struct{}         // closed when the request stream ends
	initFailed chan struct{}         // closed after a POST …/init/error
	// initFailedOnce closes initFailed: two POSTs may race past the check
	// that init is not over.
	initFailedOnce sync.Once
	stop           chan struct{} // closed when Run returns

	mu       sync.Mutex
	ready    bool             // the ready frame is sent
	initLogs *logBuf          // what the bootstrap printed before it was ready
	calls    map[string]*call // handed out by …/next, not answered yet
	order    []*call          // the same, oldest first: the oldest gets the output
	answered map[string]bool  // ids answered, for a second answer's 403
	out      *output          // the bootstrap's stdout and stderr; nil before it starts
	child    *os.Process

	childStatus *os.File // the bootstrap's /proc/<pid>/status, for maxRSSKiB
	statusBuf   [4096]byte
}

// call is one invocation handed to the bootstrap.
type call struct {
	req  *runtime.Request
	logs *logBuf
}

// New returns a relay; Run runs it.
func New(cfg Config) *Relay {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	return &Relay{
		cfg:        cfg,
		log:        cfg.Log,
		queue:      make(chan *runtime.Request, 256),
		serverGone: make(chan struct{}),
		initFailed: make(chan struct{}),
		stop:       make(chan struct{}),
		calls:      map[string]*call{},
		answered:   map[string]bool{},
	}
}

// Exit is how Run ended: the relay's process should end the same way.
type Exit struct {
	Code   int
	Signal syscall.Signal // the bootstrap was killed by it; 0 if not
}

// maxInitFrame bounds the Init frame (the function's environment is in it).
const maxInitFrame = 16 << 20

// Run reads Init, starts the bootstrap and relays until the bootstrap
// exits, its init fails, or the server closes the request stream.
func (r *Relay) Run(ctx context.Context) Exit {
	defer close(r.stop)
	defer func() {
		r.mu.Lock()
		if r.childStatus != nil {
			r.childStatus.Close()
		}
		r.mu.Unlock()
	}()
	b, err := runtime.ReadFrame(r.cfg.Requests, maxInitFrame)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			r.log.Warn("read init", "error", err)
			return Exit{Code: 2}
		}
		return Exit{} // a spare never used
	}
	if err := json.Unmarshal(b, &r.init); err != nil {
		r.log.Warn("decode init", "error", err)
		return Exit{Code: 2}
	}
	r.logLimit = cmpOr(r.init.LogLimit, runtime.DefaultLogLimit)
	r.resultLimit = cmpOr(r.init.ResultLimit, runtime.DefaultResultLimit)
	r.arn = "arn:nimbus:function:" + r.init.FunctionName // as the Python and Node shims'
	r.initLogs = newLogBuf(r.logLimit)

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", r.cfg.Addr)
	if err != nil {
		r.initError(&runtime.Error{Type: "Runtime.RelayError", Message: fmt.Sprintf("serve the Runtime API on %s: %v", r.cfg.Addr, err)})
		return Exit{Code: 1}
	}
	srv := &http.Server{Handler: r.routes(), ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	exited, cleanup, err := r.startBootstrap(ln.Addr().String())
	defer cleanup()
	if err != nil {
		var re *runtime.Error
		if !errors.As(err, &re) {
			re = &runtime.Error{Type: "Runtime.InvalidEntrypoint", Message: err.Error()}
		}
		r.initError(re)
		return Exit{Code: 1}
	}
	go r.readRequests()

	select {
	case st := <-exited:
		return r.bootstrapExited(st)
	case <-r.initFailed:
		r.kill()
		<-exited
		return Exit{Code: 1}
	case <-r.serverGone:
		r.kill()
		<-exited
		return Exit{}
	}
}

// bootstrapExited ends the relay after the bootstrap exited with st: an
// init error if it never asked for an invocation, else the same end.
func (r *Relay) bootstrapExited(st *os.ProcessState) Exit {
	ex := Exit{Code: st.ExitCode()}
	how := "exited with status " + strconv.Itoa(ex.Code)
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ex = Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
		how = "was killed by signal " + ws.Signal().String()
	}
	r.mu.Lock()
	r.drainLocked()
	ready := r.ready
	inFlight := len(r.calls)
	r.mu.Unlock()
	if !ready {
		r.initError(&runtime.Error{Type: "Runtime.ExitError", Message: "bootstrap " + how + " before it asked for an invocation"})
		return Exit{Code: 1}
	}
	if inFlight > 0 {
		r.log.Warn("bootstrap ended under a call", "how", how, "calls", inFlight)
	}
	if ex.Code == 0 && ex.Signal == 0 {
		// Exiting cleanly is no way for a runtime to end: the instance
		// must still be seen to die.
		ex.Code = 1
	}
	return ex
}

// readRequests queues the server's requests until the stream ends.
func (r *Relay) readRequests() {
	defer close(r.serverGone)
	for {
		b, err := runtime.ReadFrame(r.cfg.Requests, runtime.MaxResponseFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.log.Warn("read request", "error", err)
			}
			return
		}
		req := new(runtime.Request)
		if err := json.Unmarshal(b, req); err != nil || req.Type != runtime.TypeInvoke || req.ID == "" {
			r.log.Warn("bad request frame", "error", err, "type", req.Type)
			return
		}
		select {
		case r.queue <- req:
		case <-r.stop:
			return
		}
	}
}

// initError answers Init with err and the output of the init so far.
func (r *Relay) initError(err *runtime.Error) {
	r.mu.Lock()
	if r.ready {
		r.mu.Unlock()
		return
	}
	r.ready = true
	r.drainLocked()
	logs := r.initLogs
	r.initLogs = nil
	r.mu.Unlock()
	resp := &runtime.Response{Type: runtime.TypeReady, Error: err, MaxRSSKiB: r.maxRSSKiB()}
	logs.into(resp)
	r.send(resp)
}

// send writes one response frame.
func (r *Relay) send(resp *runtime.Response) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if err := runtime.WriteFrame(r.cfg.Responses, resp); err != nil {
		r.log.Warn("write response", "error", err)
	}
}

func (r *Relay) kill() {
	r.mu.Lock()
	p := r.child
	r.mu.Unlock()
	if p != nil {
		_ = p.Kill()
	}
}

// bootstrapPath finds the bootstrap: the entry in the code's directory,
// else in a layer (Lambda's /opt/bootstrap).
func (r *Relay) bootstrapPath() (string, error) {
	dirs := append([]string{r.init.TaskDir}, r.init.Layers...)
	var tried []string
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, entry)
		tried = append(tried, p)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", &runtime.Error{Type: "Runtime.InvalidEntrypoint", Message: fmt.Sprintf("Couldn't find valid bootstrap(s): %q", tried)}
}

// entry is the executable a relayed runtime runs (runtime.Runtime.Entry).
const entry = "bootstrap"

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
