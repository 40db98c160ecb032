package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// Live event stream defaults; Config overrides them.
const (
	defaultEventBuffer        = 256
	defaultSnapshotInterval   = time.Second
	defaultHeartbeatInterval  = 15 * time.Second
	defaultStreamWriteTimeout = 30 * time.Second
	// maxBatch is how many queued events one flush carries.
	maxBatch = 64
)

// snapshot is the "metrics" event of the live stream: the last minute of
// the function followed (or of the system), and what this stream missed.
type snapshot struct {
	Time       time.Time `json:"time"`
	FunctionID string    `json:"functionId,omitempty"`
	metrics.Summary
	InFlight  int            `json:"inFlight"`
	Instances instanceTotals `json:"instances"`
	// Dropped is how many execution events this stream lost because the
	// client read too slowly; DroppedTotal counts every stream's.
	Dropped      uint64 `json:"dropped"`
	DroppedTotal uint64 `json:"droppedTotal"`
}

// buildEvent is the "build" event of the live stream: a function's build
// changed state or printed a line.
type buildEvent struct {
	FunctionID string `json:"functionId"`
	Function   string `json:"function"`
	State      string `json:"state"`
	Line       string `json:"line,omitempty"`
}

// logEvent is the "log" event of the live stream: a part of a running
// execution's output (whole lines, but for a long line's pieces).
type logEvent struct {
	ExecutionID string `json:"executionId"`
	FunctionID  string `json:"functionId"`
	Function    string `json:"function"`
	Data        string `json:"data"`
}

// events serves GET /api/events as Server-Sent Events: an "execution" event
// for each finished execution, a "metrics" snapshot every second and a
// heartbeat comment every 15 seconds, for proxies that close streams they
// think idle. ?function=
// (an id or a name) follows one function. ?logs=1 adds a "log" event for
// each part of the output of the calls followed, as their handlers print
// it: only then do workers stream it. A client that reads too slowly
// loses events, counted in its snapshots, and one that stops reading for
// StreamWriteTimeout is disconnected; neither ever slows a call.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	var logs bool
	if v := r.URL.Query().Get("logs"); v != "" {
		var err error
		if logs, err = strconv.ParseBool(v); err != nil {
			writeError(w, fn.Invalid("logs", "want 1 or 0, true or false"))
			return
		}
	}
	var functionID string
	if v := r.URL.Query().Get("function"); v != "" {
		f, err := s.cfg.Functions.Get(r.Context(), v)
		if err == nil {
			err = mayFunction(r, f.Name)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		functionID = f.ID
	}
	// A key limited to some functions sees only their events.
	p := principal(r)
	limited := !p.AllFunctions()
	var sub *metrics.Subscription
	if logs {
		sub = s.cfg.Metrics.Events().SubscribeLogs(functionID, s.cfg.EventBuffer)
	} else {
		sub = s.cfg.Metrics.Events().Subscribe(functionID, s.cfg.EventBuffer)
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	send := func() bool {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout)); err != nil {
			s.log.Debug("event stream: no write deadline", "error", err)
		}
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		if err == nil {
			err = rc.Flush()
		}
		return err == nil
	}
	event := func(name string, v any) {
		buf.WriteString("event: " + name + "\ndata: ")
		_ = enc.Encode(v) // ends with the newline that ends the data line
		buf.WriteString("\n")
	}
	// emit writes an execution, a build step as a "build" event, or
	// output as a "log" event.
	emit := func(ev metrics.Event) {
		if limited && !p.MayFunction(ev.Function) {
			return
		}
		if l := ev.Log; l != nil {
			event("log", &logEvent{ExecutionID: ev.ExecutionID, FunctionID: ev.FunctionID, Function: ev.Function, Data: l.Data})
			return
		}
		if b := ev.Build; b != nil {
			event("build", &buildEvent{FunctionID: ev.FunctionID, Function: ev.Function, State: b.State, Line: b.Line})
			return
		}
		event("execution", &ev)
	}
	snap := func() {
		sn := snapshot{Time: time.Now().UTC(), FunctionID: functionID, Dropped: sub.Dropped(), DroppedTotal: s.cfg.Metrics.Events().Dropped()}
		if functionID == "" {
			sn.Summary = s.cfg.Metrics.System(time.Minute)
			sn.InFlight = s.cfg.Engine.InFlight()
			for _, c := range s.cfg.Engine.AllInstances(false) {
				sn.Instances.add(c)
			}
		} else {
			sn.Summary = s.cfg.Metrics.Function(functionID, time.Minute)
			sn.Instances.add(s.cfg.Engine.Instances(functionID))
		}
		event("metrics", &sn)
	}

	buf.WriteString("retry: 2000\n\n")
	snap()
	if !send() {
		return
	}
	snapshots := time.NewTicker(s.cfg.SnapshotInterval)
	defer snapshots.Stop()
	heartbeat := time.NewTicker(s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case ev := <-sub.C():
			emit(ev)
		more:
			for range maxBatch - 1 {
				select {
				case ev := <-sub.C():
					emit(ev)
				default:
					break more
				}
			}
		case <-snapshots.C:
			snap()
		case <-heartbeat.C:
			buf.WriteString(": heartbeat\n\n")
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
		if !send() {
			return
		}
	}
}
