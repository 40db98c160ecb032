// Package store defines the Store interface through which Nimbus keeps
// functions and execution records, and the registry its implementations
// (sqlite, mongo) join by name. It knows the domain types of package fn and
// nothing of HTTP, engines or drivers.
package store
