// Package bench measures Nimbus where it matters, each figure beside a
// baseline taken in the same run on the same machine: warm-call latency
// against a bare Go HTTP echo server, throughput at several concurrencies,
// cold starts against a fresh interpreter per call, the memory an idle
// instance holds, a deploy whose dependency layer is already built
// against a deploy without dependencies, and cold starts with a 20 MB
// uploaded layer against the same function without it. It drives Nimbus
// only over its public HTTP API; the one dependency its deploys declare is
// a wheel it writes itself into the server's find-links directory.
package bench
