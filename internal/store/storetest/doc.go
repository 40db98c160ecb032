// Package storetest is the conformance suite for store.Store. Every
// implementation (sqlite, mongo) runs the same Run from its own tests, so
// that they all honour one contract: not-found and conflict errors, unique
// names under concurrency, optimistic versioning, history order, paging,
// filtering, pruning and persistence across a restart; and, for the
// store.AuthStore every Store has, API keys, secrets and the audit log.
//
// Times in the suite are whole milliseconds, the finest precision every
// backend keeps; raw JSON is compared by meaning, not byte for byte.
package storetest
