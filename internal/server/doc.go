// Package server assembles a running Nimbus from its configuration: store,
// drivers, engine, metrics and HTTP API, and takes them down again in order.
// It is what `nimbus serve` runs and what in-process tests start.
package server
