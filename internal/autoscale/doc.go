// Package autoscale decides how long a function's warm instances live after
// it goes idle, from the function's own history of idle times, and proves the
// decision by replaying synthetic traces.
//
// The policy follows the hybrid histogram policy of "Serverless in the Wild"
// (Shahrad et al., USENIX ATC 2020): a Tracker keeps a histogram of one
// function's idle times and turns it into Windows — release at once and
// pre-warm one instance shortly before the next call is expected, or keep the
// warm instances for a while — falling back to a fixed keep-alive while the
// history says nothing useful, and to a predictor when most idle times are
// longer than the histogram's range. docs/autoscaling.md describes the rules.
//
// The simulator (Simulate) replays a trace of arrivals and execution times by
// event time under any Policy, asking Windows.Warm exactly as the engine does,
// and counts cold starts and the memory warm instances hold while idle.
//
// The package is pure computation: it knows nothing of the engine, drivers,
// stores or the clock, and takes every time as a duration.
package autoscale
