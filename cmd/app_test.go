package cmd

import (
	"os"
	"testing"
)

// TestDevNullIsNotATerminal: /dev/null is a character device, but nobody
// reads a live view there.
func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("/dev/null counts as a terminal")
	}
}
