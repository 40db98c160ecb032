package bench

import "runtime"

// NumCPU is the number of CPUs the benchmark shares.
func NumCPU() int { return runtime.NumCPU() }
