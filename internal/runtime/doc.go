// Package runtime owns the wire protocol between Nimbus and a function's
// worker, and the language shims (python/bootstrap.py, node/bootstrap.js)
// embedded in the binary that speak it. It imports nothing of ours: drivers
// carry its frames over pipes, sockets or serial ports.
package runtime
