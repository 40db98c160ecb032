// Package transfer moves a deployment's functions, and optionally their
// execution records, out of one store and into another: as a stream of
// JSON lines (`nimbus export`, `nimbus import`) or directly from store to
// store (`nimbus migrate`). It works on any store.Store and knows nothing
// of HTTP or engines.
//
// The stream starts with a header line, {"format": "nimbus-export",
// "version": 1}, then has one line per function, {"function": {...}},
// each followed, when executions are exported, by one line per execution
// record of that function, {"execution": {...}}, with its event. Functions
// and records keep their ids, versions and times, so history stays with its
// function. Raw JSON (events, results) is kept by meaning, not byte for byte.
package transfer
