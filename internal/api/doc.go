// Package api is Nimbus's HTTP interface: the seed's REST routes under /api,
// JSON errors mapped from the domain's sentinel errors in one place, API-key
// authentication and health, the metrics views, the live event stream
// (Server-Sent Events at /api/events) and the Prometheus exposition at
// /metrics. It calls the engine to run functions, the store to keep them and
// the metrics recorder for figures; it knows nothing of drivers' internals.
package api
