package api

import (
	"net/http"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// runtimeInfo is one runtime as GET /api/runtimes shows it: what a client
// (the UI's runtime list above all) needs to offer it.
type runtimeInfo struct {
	Name           string   `json:"name"`
	Label          string   `json:"label"`
	Spellings      []string `json:"spellings"`
	DefaultHandler string   `json:"defaultHandler"`
	Extension      string   `json:"extension"`
	Available      bool     `json:"available"` // its interpreter is on this host (or it needs none)
	Version        string   `json:"version,omitempty"`
}

// runtimes answers GET /api/runtimes: every runtime of the runtime table,
// in its order.
func (s *Server) runtimes(w http.ResponseWriter, r *http.Request) {
	out := []runtimeInfo{}
	for _, rt := range runtime.All() {
		out = append(out, runtimeInfo{
			Name:           rt.Name,
			Label:          rt.Label,
			Spellings:      append([]string{}, rt.Spellings...),
			DefaultHandler: rt.DefaultHandler,
			Extension:      rt.Ext,
			// A relayed runtime runs the function's own executable: the
			// relay is this binary, always there.
			Available: rt.Relayed() || s.cfg.Interpreters.Path(rt.Name) != "",
			Version:   s.cfg.Interpreters.Version(rt.Name),
		})
	}
	writeJSON(w, http.StatusOK, out)
}
