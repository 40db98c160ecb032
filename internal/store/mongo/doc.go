// Package mongo is the shared Store: functions, execution records and
// metric minutes kept in a MongoDB database through the official Go driver,
// so that several Nimbus servers can use one database. `nimbus serve` uses
// it when MONGODB_URI is set; it registers the "mongodb" and "mongodb+srv"
// schemes with package store.
//
// The database is the one the URI names ("mongodb://host/mydb"), "nimbus"
// when it names none. Collections:
//
//   - functions: _id is the function id; name has a unique index. Files
//     are an array of {path, content} (paths may contain dots, which field
//     names should not), env an array of {name, value}.
//   - executions: _id is the execution id, which sorts in creation order;
//     indexes (functionId, _id desc) and (functionId, status, _id desc)
//     serve history pages and status filters. Events and results are kept
//     as their JSON text, so any JSON round-trips unchanged.
//   - metricMinutes: one document per function and minute, _id
//     "functionId/unixMillis", indexed by start.
//   - updateLocks: short-lived, one per function update under way, _id
//     "functionId/newVersion" (and "alias:…", "secret:…" for alias and
//     secret updates).
//   - keys: API keys, _id the key id, indexed by (createdAt, _id); hash
//     and sealed are BSON binary.
//   - secrets: _id the secret's name; its value is only ever sealed.
//   - audit: the audit log, _id the entry id, which sorts by time; an
//     index on time serves the time filters and pruning.
//
// Indexes are created at Open when missing. No write needs a transaction
// (a standalone mongod has none): a function update is conditional on the
// stored version, and takes an update lock first because not every
// MongoDB-compatible server makes a conditional replace atomic (FerretDB v1
// does not); a batch of execution records is written unordered and
// idempotently, a record of a taken id replacing the stored one only when
// it is a later stage (see Store.InsertExecutions), so a batch retried
// after a lost reply completes without duplicates.
//
// Every call is bounded: server selection and connection set-up give up
// after 2 s and an operation after 10 s unless the URI says otherwise
// (serverSelectionTimeoutMS, connectTimeoutMS, timeoutMS). An unreachable
// server, a network error or a timeout is fn.ErrUnavailable, which the API
// answers with 503 and the record writer retries; the driver reconnects by
// itself when the server is back.
//
// It knows the domain types of package fn and nothing of HTTP or engines.
package mongo
