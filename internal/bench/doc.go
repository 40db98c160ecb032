// Package bench measures Nimbus where it matters, each figure beside a
// baseline taken in the same run on the same machine: warm-call latency
// against a bare Go HTTP echo server, throughput at several concurrencies,
// warm calls through a function URL against the same calls through the
// API, Invoke through the Lambda API against the same calls through the
// Nimbus API, async calls (how fast they are accepted, and how fast they are all
// done) against sync calls of the same function,
// cold starts against a fresh interpreter per call, the memory an idle
// instance holds, a deploy whose dependency layer is already built
// against a deploy without dependencies, and cold starts with a 20 MB
// uploaded layer against the same function without it. It drives Nimbus
// only over its public HTTP API; the one dependency its deploys declare is
// a wheel it writes itself into the server's find-links directory.
package bench
