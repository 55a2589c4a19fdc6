//go:build unix

package main

import (
	"os"
	"syscall"
	"time"
)

// raise sends sig to this process, whose handler for it is the default
// again, and gives it a moment to take effect.
func raise(sig os.Signal) {
	if s, ok := sig.(syscall.Signal); ok && syscall.Kill(os.Getpid(), s) == nil {
		time.Sleep(time.Second)
	}
}
