// Package sandbox is the default driver: each instance is a long-lived
// worker process on the host, in its own process group and working
// directory, with an environment holding only its function's variables,
// speaking the runtime protocol over dedicated pipes (fds 3 and 4) so that
// what user code prints never corrupts it. It needs no daemon.
package sandbox
