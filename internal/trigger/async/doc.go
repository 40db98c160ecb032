// Package async runs functions asynchronously: a call is accepted once
// JetStream has stored it, then run by whichever server pulls it, retried
// with a backoff when it fails, and sent to the function's dead letters
// when it fails for the last time or waited too long. Destinations
// receive the outcome.
//
// One stream (NIMBUS_ASYNC, work-queue retention) holds every queued
// call under nimbus.async.<function id>; each function has its own
// durable pull consumer, whose MaxAckPending is the function's capacity,
// so a backlog waits in the stream instead of in memory and one
// function's backlog never delays another's. A message is acknowledged
// only after its final execution record is written (at-least-once: a
// server killed mid-call leaves the message unacknowledged, and it runs
// again, with the next attempt number, once its ack wait passes).
// Dead letters live in their own stream (NIMBUS_DEAD_LETTERS), one
// message per call under nimbus.dlq.<function id>.<execution id>.
package async
