package api

import (
	_ "embed"
	"net/http"
)

// specSchema is the JSON Schema of nimbus.yaml, the spec nimbus deploy
// reads: the same bytes as docs/nimbus.schema.json (a test holds them
// equal), so that editors can fetch it from any server.
//
//go:embed spec.schema.json
var specSchema []byte

// schemaSpec serves GET /api/schema/spec.
func (s *Server) schemaSpec(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(specSchema)
}
