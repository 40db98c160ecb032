// Package engine owns the invoke path: it finds or starts an instance of a
// function (a per-function pool with a bounded FIFO queue), enforces the
// timeout, turns what happened into an execution record with a status, and
// hands records to the store in batches and figures to the metrics recorder,
// never on the caller's critical path. A removed function stays removed: a
// call or update that read it before its deletion cannot start it again. It
// talks to drivers only through package driver and never knows which one it
// has.
package engine
