package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Conn speaks the runtime protocol with one worker over a pair of byte
// streams: requests out on w, responses in on r. Responses are matched to
// calls by id, so a worker may serve several calls at once. Conn does not own
// the worker: when the stream breaks it calls broken, and the driver decides
// what the worker's death means.
type Conn struct {
	w   io.Writer
	wmu sync.Mutex

	mu       sync.Mutex
	pending  map[string]*call
	ready    chan *runtime.Response
	err      error         // why the stream broke; set once
	dead     chan struct{} // closed when the stream broke
	logLimit int           // bytes of live logs passed on per call

	logsDropped atomic.Uint64 // bytes of log frames not passed on
}

// call is a request in flight: where its response goes and, when its
// caller follows its logs, where they go and how many bytes may still.
type call struct {
	ch       chan *runtime.Response
	logs     LogFunc
	logsLeft int
	logsCut  bool // over the limit: the rest is dropped
}

// LogFunc receives a call's output as its worker streams it (log frames),
// in order. It is called on the goroutine that reads the worker's
// frames, so it must return at once: hand the data on without waiting, or
// drop it.
type LogFunc func(data string)

type logFuncKey struct{}

// WithLogs returns a context under which Instance.Invoke asks the worker
// to stream what the handler prints and passes it to f as it comes, up to
// the instance's log limit per call; the response still carries the whole
// (capped) logs. A worker that does not stream logs is served as usual,
// and f is never called.
func WithLogs(ctx context.Context, f LogFunc) context.Context {
	return context.WithValue(ctx, logFuncKey{}, f)
}

// LogsOf is the LogFunc of a context from WithLogs, or nil: an instance
// that does not speak through a Conn (a test's fake) streams to it.
func LogsOf(ctx context.Context) LogFunc {
	f, _ := ctx.Value(logFuncKey{}).(LogFunc)
	return f
}

// NewConn starts reading responses from r. broken is called once, from the
// reading goroutine, when r fails or the worker sends something that is not
// a valid response.
func NewConn(r io.Reader, w io.Writer, broken func(error)) *Conn {
	c := &Conn{
		w:        w,
		pending:  make(map[string]*call),
		ready:    make(chan *runtime.Response, 1),
		dead:     make(chan struct{}),
		logLimit: runtime.DefaultLogLimit,
	}
	go c.read(r, broken)
	return c
}

func (c *Conn) read(r io.Reader, broken func(error)) {
	var err error
	for {
		var b []byte
		if b, err = runtime.ReadFrame(r, runtime.MaxResponseFrame); err != nil {
			break
		}
		resp := new(runtime.Response)
		if err = json.Unmarshal(b, resp); err != nil {
			err = fmt.Errorf("bad frame from worker: %w", err)
			break
		}
		if resp.Type == runtime.TypeReady {
			select {
			case c.ready <- resp:
				continue
			default:
			}
			err = errors.New("unexpected ready frame from worker")
			break
		}
		if resp.Type == runtime.TypeLog {
			c.log(resp.ID, resp.Data)
			continue
		}
		c.mu.Lock()
		cl, ok := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if !ok || resp.Type != runtime.TypeResult {
			err = fmt.Errorf("unexpected %q frame for request %q from worker", resp.Type, resp.ID)
			break
		}
		cl.ch <- resp
	}
	c.mu.Lock()
	c.err = err
	close(c.dead)
	c.mu.Unlock()
	if broken != nil {
		broken(err)
	}
}

// log passes data, a log frame of call id, to its caller, within the
// call's budget. A log frame of a call no one follows, or no longer in
// flight (the caller gave up on it), is dropped: it is not a protocol
// error, whatever a worker sends of them costs it only its own time.
func (c *Conn) log(id, data string) {
	c.mu.Lock()
	cl := c.pending[id]
	if cl == nil || cl.logs == nil || cl.logsCut {
		c.mu.Unlock()
		c.logsDropped.Add(uint64(len(data)))
		return
	}
	if len(data) > cl.logsLeft {
		c.logsDropped.Add(uint64(len(data) - cl.logsLeft))
		data, cl.logsCut = data[:cl.logsLeft], true
	}
	cl.logsLeft -= len(data)
	cut, limit, f := cl.logsCut, c.logLimit, cl.logs
	c.mu.Unlock()
	if data != "" {
		f(data)
	}
	if cut {
		f(fmt.Sprintf("\n[nimbus: live logs truncated at %d bytes]\n", limit))
	}
}

// LogsDropped is how many bytes of log frames the worker sent that were
// not passed on: over a call's limit, or for a call no one follows.
func (c *Conn) LogsDropped() uint64 { return c.logsDropped.Load() }

// Err is why the stream broke, or nil while it works.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Dead is closed when the response stream has broken.
func (c *Conn) Dead() <-chan struct{} { return c.dead }

// Init sends the init frame and waits for the worker to be ready. A handler
// that failed to load is returned as a *runtime.Error; its logs are returned
// either way.
func (c *Conn) Init(ctx context.Context, in runtime.Init) (logs string, err error) {
	in.Type = runtime.TypeInit
	if in.LogLimit > 0 {
		c.mu.Lock()
		c.logLimit = in.LogLimit
		c.mu.Unlock()
	}
	if err := c.write(in); err != nil {
		return "", err
	}
	var resp *runtime.Response
	select {
	case resp = <-c.ready:
	case <-c.dead:
		// A worker that answered and then exited (a handler that failed to
		// load does) closes both: the answer came first.
		select {
		case resp = <-c.ready:
		default:
			return "", c.deadErr()
		}
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if resp.Error != nil {
		return resp.Logs, resp.Error
	}
	return resp.Logs, nil
}

// Invoke sends req and waits for its response, for the stream to break, or
// for ctx to end. Under a context from WithLogs it asks the worker to
// stream the call's logs, and passes them on.
func (c *Conn) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	cl := &call{ch: make(chan *runtime.Response, 1)}
	if f := LogsOf(ctx); f != nil {
		r := *req
		r.StreamLogs = true
		req, cl.logs = &r, f
	}
	ch := cl.ch
	c.mu.Lock()
	if c.err != nil || IsClosed(c.dead) {
		c.mu.Unlock()
		return nil, c.deadErr()
	}
	cl.logsLeft = c.logLimit
	c.pending[req.ID] = cl
	c.mu.Unlock()
	if err := c.write(req); err != nil {
		c.forget(req.ID)
		return nil, err
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-c.dead:
		select { // answered, then the stream broke: the answer stands
		case resp := <-ch:
			return resp, nil
		default:
			return nil, c.deadErr()
		}
	case <-ctx.Done():
		c.forget(req.ID)
		return nil, ctx.Err()
	}
}

func (c *Conn) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Conn) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := runtime.WriteRaw(c.w, b); err != nil {
		return fmt.Errorf("write to worker: %w", err)
	}
	return nil
}

func (c *Conn) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil || errors.Is(c.err, io.EOF) {
		return io.EOF
	}
	return c.err
}

// IsClosed reports whether ch is closed, without waiting.
func IsClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
