//go:build unix

package bench

import (
	"syscall"
	"time"
)

// markCPU reads the process's own rusage: user and system time of all its
// threads.
func markCPU() cpuMark {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuMark{}
	}
	return cpuMark{user: time.Duration(ru.Utime.Nano()), system: time.Duration(ru.Stime.Nano())}
}
