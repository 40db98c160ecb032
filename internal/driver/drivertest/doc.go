// Package drivertest is the conformance suite every driver passes: Run
// checks what the engine relies on (invoke, environment, logs, errors,
// timeouts, out-of-memory kills, crashes, concurrency, cleanup, code
// directories that arrive byte for byte and read-only, layers, none of the
// host's own packages) with the real Python and Node runtimes, and RunIsolation checks the confinement a
// sandboxing driver promises (read-only file system outside /tmp, no
// network but loopback, a bounded number of processes, no privileges).
// Each driver's tests call them with a factory for a ready driver.
package drivertest
