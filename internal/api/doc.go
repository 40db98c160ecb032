// Package api is Nimbus's HTTP interface: the seed's REST routes under /api,
// JSON errors mapped from the domain's sentinel errors in one place, API-key
// authentication and health, the metrics views, the live event stream
// (Server-Sent Events at /api/events; with ?logs=1 also the output of the
// calls followed, as they print it) and the Prometheus exposition at
// /metrics, the JSON Schema of the deploy spec (GET /api/schema/spec), and
// the runtimes a function may use (GET /api/runtimes, read
// from the runtime table, which the UI's runtime list shows). Its handlers decode a request, call package functions (the
// function lifecycle and the invoke path's lookup), the engine (to run a
// function) or the store (execution history), and encode the answer; they
// hold no lifecycle of their own. It knows nothing of drivers' internals.
package api
