// Package sqlite is the embedded Store: functions and execution records kept
// in one SQLite file through the pure-Go driver modernc.org/sqlite, so the
// binary needs no cgo.
//
// The database runs in WAL mode with synchronous=NORMAL. All writes go
// through a single connection, which serialises them without lock retries;
// reads use a separate pool of read-only connections, so a reader never
// waits behind the writer. The schema is a list of ordered migration steps
// whose count is kept in PRAGMA user_version; Open applies the missing ones
// in one transaction.
package sqlite
