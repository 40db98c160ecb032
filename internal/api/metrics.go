package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// window reads the ?window= parameter (default 15m, at most 24h).
func window(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return 15 * time.Minute, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > metrics.MaxWindow {
		return 0, fn.Invalid("window", fmt.Sprintf("must be a duration from 1s to %s, such as 5m or 1h", metrics.MaxWindow))
	}
	return d, nil
}

// seriesStep reads ?series= and ?step=: no series (0) unless series is
// true, 1 or a step such as 10s or 1m; a true series takes ?step=, or
// picks about 60 points.
func seriesStep(r *http.Request, win time.Duration) (time.Duration, error) {
	q := r.URL.Query()
	v := q.Get("series")
	var step time.Duration
	switch on, err := strconv.ParseBool(v); {
	case v == "" || (err == nil && !on):
		return 0, nil
	case err == nil: // series=true: the step is ?step= or picked
		if sv := q.Get("step"); sv != "" {
			if step, err = time.ParseDuration(sv); err != nil {
				return 0, fn.Invalid("step", "must be a duration such as 10s or 1m")
			}
		}
	default:
		if step, err = time.ParseDuration(v); err != nil {
			return 0, fn.Invalid("series", "must be true, or a step such as 10s or 1m")
		}
	}
	step, err := metrics.SeriesStep(win, step)
	if err != nil {
		return 0, fn.Invalid("step", err.Error())
	}
	return step, nil
}

// instanceTotals counts instances by state.
type instanceTotals struct {
	Idle     int `json:"idle"`
	Busy     int `json:"busy"`
	Starting int `json:"starting"`
	Queued   int `json:"queued"` // calls waiting for an instance
	Active   int `json:"active"` // idle, busy and starting
}

func (t *instanceTotals) add(c metrics.InstanceCount) {
	t.Idle += c.Idle
	t.Busy += c.Busy
	t.Starting += c.Starting
	t.Queued += c.Queued
	t.Active += c.Idle + c.Busy + c.Starting
}

// systemView is GET /api/metrics/system: the window's summary at the top
// level, then the rest of the picture.
type systemView struct {
	metrics.Summary
	Rates     metrics.Rates `json:"rates"` // invocations per second
	InFlight  int           `json:"inFlight"`
	Instances struct {
		instanceTotals
		ByDriver map[string]*instanceTotals `json:"byDriver"`
	} `json:"instances"`
	Drivers        map[string]driver.Availability `json:"drivers"`
	Host           hostView                       `json:"host"`
	Process        metrics.ProcessUse             `json:"process"`
	UptimeSeconds  int                            `json:"uptimeSeconds"`
	RecordsDropped int64                          `json:"recordsDropped"`
	EventsDropped  uint64                         `json:"eventsDropped"`
	Series         []metrics.Point                `json:"series,omitempty"`
}

type hostView struct {
	CPU    metrics.CPUUse      `json:"cpu"`
	Memory metrics.MemoryStats `json:"memory"`
	Load   metrics.LoadAverage `json:"load"`
}

func (s *Server) systemMetrics(w http.ResponseWriter, r *http.Request) {
	win, err := window(r)
	if err != nil {
		writeError(w, err)
		return
	}
	step, err := seriesStep(r, win)
	if err != nil {
		writeError(w, err)
		return
	}
	v := systemView{
		Summary:        s.cfg.Metrics.System(win),
		Rates:          s.cfg.Metrics.Rates(""),
		InFlight:       s.cfg.Engine.InFlight(),
		Drivers:        map[string]driver.Availability{},
		UptimeSeconds:  int(time.Since(s.started).Seconds()),
		RecordsDropped: s.cfg.Engine.Dropped(),
		EventsDropped:  s.cfg.Metrics.Events().Dropped(),
	}
	v.Instances.ByDriver = map[string]*instanceTotals{}
	for _, name := range s.cfg.Engine.Drivers() {
		v.Drivers[name] = s.cfg.Engine.Availability(r.Context(), name)
		v.Instances.ByDriver[name] = new(instanceTotals)
	}
	for _, c := range s.cfg.Engine.AllInstances(false) {
		v.Instances.add(c)
		if t := v.Instances.ByDriver[c.Driver]; t != nil {
			t.add(c)
		}
	}
	host, err := s.host.Sample()
	if err != nil {
		s.log.Debug("host figures incomplete", "error", err)
	}
	v.Host = hostView{CPU: host.CPU, Memory: host.Memory, Load: host.Load}
	v.Process = host.Process
	if step > 0 {
		v.Series = s.cfg.Metrics.Series("", win, step)
	}
	writeJSON(w, http.StatusOK, &v)
}

// functionMetricsView is GET /api/metrics/functions/{functionId}.
type functionMetricsView struct {
	FunctionID string `json:"functionId"`
	Name       string `json:"name"`
	// Version, with ?version=, is the published version the figures are
	// of (rates are then left out).
	Version int `json:"version,omitempty"`
	metrics.Summary
	Rates       metrics.Rates        `json:"rates"` // invocations per second
	Instances   instanceTotals       `json:"instances"`
	Driver      string               `json:"driver"`
	DriverState *driver.Availability `json:"driverState,omitempty"` // not in the list of all

	Series []metrics.Point `json:"series,omitempty"`
}

func (s *Server) functionMetrics(w http.ResponseWriter, r *http.Request) {
	win, err := window(r)
	if err != nil {
		writeError(w, err)
		return
	}
	step, err := seriesStep(r, win)
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := s.cfg.Functions.Resolve(r.Context(), r.PathValue("functionId"))
	if err != nil {
		writeError(w, err)
		return
	}
	v := functionMetricsView{
		FunctionID: f.ID,
		Name:       f.Name,
		Summary:    s.cfg.Metrics.Function(f.ID, win),
		Rates:      s.cfg.Metrics.Rates(f.ID),
		Driver:     f.Driver,
	}
	avail := s.cfg.Engine.Availability(r.Context(), f.Driver)
	v.DriverState = &avail
	v.Instances.add(s.cfg.Engine.Instances(f.ID))
	if step > 0 {
		v.Series = s.cfg.Metrics.Series(f.ID, win, step)
	}
	if q := r.URL.Query().Get("version"); q != "" {
		// One published version's calls alone (kept in memory since the
		// server started): what a rollout's steps are judged by.
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			writeError(w, fn.Invalid("version", "must be a published version's number"))
			return
		}
		v.Version = n
		v.Summary = s.cfg.Metrics.Version(f.ID, n, win)
		v.Rates = metrics.Rates{}
		if step > 0 {
			v.Series = s.cfg.Metrics.VersionSeries(f.ID, n, win, step)
		}
	}
	writeJSON(w, http.StatusOK, &v)
}

// allFunctionMetrics is GET /api/metrics/functions: the figures (and, with
// ?series=, the series) of every function in one call, as the function
// list shows them, instead of one call per function.
func (s *Server) allFunctionMetrics(w http.ResponseWriter, r *http.Request) {
	win, err := window(r)
	if err != nil {
		writeError(w, err)
		return
	}
	step, err := seriesStep(r, win)
	if err != nil {
		writeError(w, err)
		return
	}
	fns, err := s.cfg.Functions.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]functionMetricsView, 0, len(fns))
	for _, f := range fns {
		if !visible(r, f.Name) {
			continue
		}
		out = append(out, functionMetricsView{})
		v := &out[len(out)-1]
		v.FunctionID, v.Name, v.Driver = f.ID, f.Name, f.Driver
		v.Summary = s.cfg.Metrics.Function(f.ID, win)
		v.Rates = s.cfg.Metrics.Rates(f.ID)
		v.Instances.add(s.cfg.Engine.Instances(f.ID))
		if step > 0 {
			v.Series = s.cfg.Metrics.Series(f.ID, win, step)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"window": win.String(), "functions": out})
}
