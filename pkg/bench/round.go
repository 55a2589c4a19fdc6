package bench

// Round3 rounds a figure to three decimals for a report: enough for
// milliseconds and rates, short enough to read and to compare in JSON.
func Round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// Round1 rounds a figure to one decimal, for a rate a person reads.
func Round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
