package cmd

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// addProfileFlags adds the hidden --cpu-profile and --mem-profile flags: a
// developer profiles any command of the real binary against real services
// (go tool pprof FILE), e.g. produce at --rate 0 or bench sink.
func addProfileFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.String("cpu-profile", "", "write a CPU profile of the command to this file")
	pf.String("mem-profile", "", "write an allocation profile of the command to this file")
	_ = pf.MarkHidden("cpu-profile")
	_ = pf.MarkHidden("mem-profile")
	var stop func() error
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		cpu, _ := c.Flags().GetString("cpu-profile")
		mem, _ := c.Flags().GetString("mem-profile")
		var err error
		stop, err = startProfiles(cpu, mem)
		return err
	}
	root.PersistentPostRunE = func(*cobra.Command, []string) error {
		if stop == nil {
			return nil
		}
		return stop()
	}
}

// startProfiles starts what was asked; stop writes the profiles.
func startProfiles(cpu, mem string) (stop func() error, err error) {
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, usage(fmt.Errorf("cpu profile: %w", err))
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	return func() error {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
		}
		if mem == "" {
			return nil
		}
		f, err := os.Create(mem)
		if err != nil {
			return fmt.Errorf("mem profile: %w", err)
		}
		defer f.Close()
		runtime.GC()
		return pprof.Lookup("allocs").WriteTo(f, 0)
	}, nil
}
