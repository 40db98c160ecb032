// Package bench measures Nimbus where it matters, each figure beside a
// baseline taken in the same run on the same machine: warm-call latency
// against a bare Go HTTP echo server, throughput at several concurrencies,
// cold starts against a fresh interpreter per call, and the memory an idle
// instance holds. It drives Nimbus only over its public HTTP API.
package bench
