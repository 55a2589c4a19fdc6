package bench

import "time"

// CPU is the processor time this process (not the broker, not the
// database) spent on a measured span: the cost of a record that holds on a
// shared machine, where rates do not.
type CPU struct {
	UserSeconds       float64 `json:"user_seconds"`
	SystemSeconds     float64 `json:"system_seconds"`
	SecondsPerMillion float64 `json:"seconds_per_million_records"`
}

// cpuMark is the process's CPU time at one moment.
type cpuMark struct{ user, system time.Duration }

// since is the CPU spent from m to now, and per million of records.
func (m cpuMark) since(records int64) CPU {
	now := markCPU()
	c := CPU{UserSeconds: Round3((now.user - m.user).Seconds()), SystemSeconds: Round3((now.system - m.system).Seconds())}
	if records > 0 {
		c.SecondsPerMillion = Round3((c.UserSeconds + c.SystemSeconds) * 1e6 / float64(records))
	}
	return c
}
