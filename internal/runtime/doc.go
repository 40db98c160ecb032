// Package runtime owns the runtime table (table.go) and the wire protocol
// between Nimbus and a function's worker.
//
// The table holds one descriptor per runtime: its name and the spellings
// users write, its default handler and file extension, how its interpreter
// is found (FindInterpreters) and how its sources are checked
// (CheckSyntax), its shim and how that runs, what its images hold and its
// microVM guest agent. fn's validation, the API and the UI's list, the
// syntax checker and every driver read it rather than naming runtimes
// themselves: adding a runtime is adding an entry and a directory of this
// package holding its shim (python/, node/), embedded in the binary.
//
// It imports nothing of ours, so that everything, fn included, may import
// it: drivers carry its frames over pipes, sockets or serial ports.
package runtime
