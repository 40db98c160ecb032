// Package schedule fires functions' schedules: every Nimbus server runs a
// Scheduler, which polls the functions, keeps a timer on the next tick of
// each enabled schedule and, when a tick is due, queues one async call of
// the function (trigger "schedule") with an EventBridge-style scheduled
// event.
//
// Servers sharing one NATS fire each tick once: per schedule, a JetStream
// key-value entry holds the last tick fired, and only the server that moves
// it to the new tick by compare-and-set queues the call; the queue's dedup
// by tick is the second guard. The CAS comes first: a server that dies
// between winning it and queuing loses that tick (at most once), rather
// than every server queuing every tick and leaning on a dedup window
// alone. An enqueue that fails is retried with the same dedup key.
//
// The package knows nothing of HTTP, the store or the engine: functions
// come through the Functions interface and calls leave through Enqueue.
package schedule
