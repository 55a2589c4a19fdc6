//go:build !unix

package bench

// markCPU reports nothing where rusage is not available: the CPU figures
// read zero.
func markCPU() cpuMark { return cpuMark{} }
