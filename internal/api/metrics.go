package api

import (
	"fmt"
	"net/http"
	"time"

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

func (s *Server) systemMetrics(w http.ResponseWriter, r *http.Request) {
	win, err := window(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		metrics.Summary
		UptimeSeconds  int   `json:"uptimeSeconds"`
		RecordsDropped int64 `json:"recordsDropped"`
	}{s.cfg.Metrics.System(win), int(time.Since(s.started).Seconds()), s.cfg.Engine.Dropped()})
}

func (s *Server) functionMetrics(w http.ResponseWriter, r *http.Request) {
	win, err := window(r)
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := s.function(r.Context(), r.PathValue("functionId"))
	if err != nil {
		writeError(w, err)
		return
	}
	in := s.cfg.Engine.Instances(f.ID)
	idle, busy := in.Idle, in.Busy
	writeJSON(w, http.StatusOK, struct {
		FunctionID string `json:"functionId"`
		Name       string `json:"name"`
		metrics.Summary
		Instances map[string]int `json:"instances"`
	}{f.ID, f.Name, s.cfg.Metrics.Function(f.ID, win), map[string]int{"idle": idle, "busy": busy}})
}
