// Package cli owns the client side of the nimbus binary: an HTTP client of
// the REST API (Client), the named connections kept in the user's config
// file (Contexts), the deploy spec (nimbus.yaml) and the plan that applies
// it, packing a code directory the way the server stores it, the output
// formats of the read commands, following the live event stream (logs -f,
// top, build progress), the metrics views and their sparklines, the
// settings document of `nimbus fn edit`, and the templates of `nimbus init`.
//
// It speaks to a server only through the REST API, with package fn's types
// and package build's canonical packing (so that a local directory hashes
// as the server's copy of it does). It knows nothing of cobra: cmd/nimbus
// turns flags into calls of this package, and its errors into exit codes.
package cli
