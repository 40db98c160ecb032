// Package mongotest gives tests a real MongoDB wire-protocol server: the
// mongod that NIMBUS_TEST_MONGODB_URI names, or else FerretDB v1 on its
// SQLite backend, built from the helper module tools/ferretdb (kept out of
// the main module so none of its dependencies reach the nimbus binary) and
// run as a subprocess on a free 127.0.0.1 port.
//
// The helper binary is built once per machine and kept under the user's
// cache directory, keyed by a hash of the helper's sources and go.sum and
// of the Go version; test binaries running in parallel build it only once.
// Outside CI a helper that cannot be built or started skips the test, with
// the reason; in CI (CI set) it fails it.
package mongotest
