// Package soak runs a real `nimbus serve` under a steady mix of calls and
// function changes for a long time (NIMBUS_SOAK: an hour with `make soak`,
// a short run inside `make test`), samples what the server holds (memory,
// heap, goroutines, fds, threads, child processes, cgroups) and fails when
// one of them grows. docs/soak.md explains it and keeps the figures.
//
// It knows Nimbus only through its HTTP API, /metrics and /proc.
package soak
