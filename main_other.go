//go:build !unix

package main

import "os"

// raise does nothing where a process cannot signal itself: main exits with
// the signal's status instead.
func raise(os.Signal) {}
