// Package transfer moves a deployment's functions, and optionally their
// execution records, out of one store and into another: as a stream of
// JSON lines (`nimbus export`, `nimbus import`) or directly from store to
// store (`nimbus migrate`). It works on any store.Store and knows nothing
// of HTTP or engines.
//
// The stream starts with a header line, {"format": "nimbus-export",
// "version": 2}, then has one line per function, {"function": {...}},
// each followed by one line per published version of it, oldest first,
// {"publishedVersion": {...}}, one per alias, by name, {"alias": {...}},
// and, when executions are exported, one line per execution record of
// that function, {"execution": {...}}, with its event. Stored code and
// layers come as {"blob": {...}} lines before the first function or
// version that uses them. Version 1 streams (no versions or aliases) are
// still read. Functions, versions, aliases and records keep their ids,
// numbers, revisions and times, so history stays with its function. Raw
// JSON (events, results) is kept by meaning, not byte for byte.
package transfer
