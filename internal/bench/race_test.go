//go:build race

package bench_test

// raceEnabled: the race detector slows the server several times over, so
// its ratios mean nothing; make test runs the benchmark again without it.
const raceEnabled = true
