// Package api is Nimbus's HTTP interface: the seed's REST routes under /api,
// JSON errors mapped from the domain's sentinel errors in one place, API-key
// authentication and health. It calls the engine to run functions and the
// store to keep them; it knows nothing of drivers' internals.
package api
