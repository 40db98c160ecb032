// Package runtimeapi is the per-instance Runtime API relay: the worker of
// a relayed runtime (runtime.Provided), which runs the function's own
// executable bootstrap and serves it AWS Lambda's Runtime API
// (/2018-06-01/runtime/…), relaying invocations to and from Nimbus over
// the instance's existing channel.
//
// # Design
//
// The relay is the server's own binary re-executed under the argv[0]
// ProcessName (the "reexec" pattern the sandbox driver uses for its init
// helper): an init function of this package sees that name and runs Main
// instead of the program. It takes the place of an interpreter and its
// shim: it speaks the runtime protocol (runtime/protocol.go) on fds 3 and
// 4 exactly as the Python and Node shims do, so every driver, the engine's
// timeouts, kills, OOM and crash statuses, logs, metrics and cold-start
// accounting work unchanged. Why not a separate program or a thread of the
// server:
//
//   - The Runtime API must be served inside the instance's isolation: a
//     listener on 127.0.0.1 of the instance's own network namespace, never
//     a port of the host. A process inside the sandbox is the only thing
//     that can listen there; a relay over the frame protocol needs no new
//     channel through the sandbox's walls.
//   - One binary: the relay ships with the server and cannot drift from
//     its protocol. The sandbox driver binds the server's executable
//     read-only into every sandbox at RelayPath.
//   - A failing or malicious bootstrap only ever talks to its own relay,
//     which knows nothing but its instance's requests.
//
// # Lifecycle
//
// Main reads the Init frame, listens on Addr (EnvAddr, default
// DefaultAddr), starts the bootstrap (the code's Entry, else a layer's)
// with AWS_LAMBDA_RUNTIME_API and the function's environment, and waits:
// the bootstrap's first GET …/invocation/next ends its init (the ready
// frame carries what it printed until then); a POST …/init/error, or an
// exit before that, is the function's init error, as a Python module that
// fails to import. Then each request frame is handed to one …/next long
// poll, and the …/response or …/error POST for its id becomes the result
// frame, with what the bootstrap printed in between as its logs. When the
// bootstrap exits the relay exits the same way (the same code, or killed
// by the same signal), so the driver sees the worker die, as it sees an
// interpreter die, and the call under way is "crashed"; when the server
// closes fd 3 the relay kills the bootstrap and exits.
//
// It imports runtime (the protocol) and fn (error capping) and nothing
// that knows a driver, the engine or HTTP routes of the server.
package runtimeapi
