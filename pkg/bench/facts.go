package bench

import (
	"bufio"
	"os"
	"runtime"
	"strings"
)

// Machine is what a result must be read with.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	OS       string `json:"os"`
	Go       string `json:"go"`
	Kafka    string `json:"kafka,omitempty"`
	Postgres string `json:"postgres,omitempty"`
}

// Facts returns the machine facts; broker and database versions are
// filled in by the caller, who knows the services.
func Facts() Machine {
	return Machine{
		CPUs:     runtime.NumCPU(),
		CPUModel: cpuModel(),
		OS:       runtime.GOOS + "/" + runtime.GOARCH,
		Go:       runtime.Version(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
