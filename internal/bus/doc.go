// Package bus owns Nimbus's connection to NATS JetStream: by default a NATS
// server embedded in the process (JetStream files under <dataDir>/nats,
// reached through an in-process connection, with no network listener), or
// an external NATS cluster when a URL is configured. It creates streams
// and key-value buckets for the packages that need them and reports the
// engine's health and metrics.
//
// Nothing else in Nimbus talks to NATS directly. The bus knows nothing of
// functions, executions or triggers: what a stream carries is its user's
// business.
package bus
