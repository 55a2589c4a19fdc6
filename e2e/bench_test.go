package e2e

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// TestBenchProduceAgreesWithTopic: bench produce's record count equals the
// growth of the topic's end offsets, read independently.
func TestBenchProduceAgreesWithTopic(t *testing.T) {
	t.Parallel()
	for _, size := range []string{"0", "512"} {
		r := run(t, nil, "bench", "produce", brokersFlag(t), "--records", "20000", "--warmup-records", "1000",
			"--record-size", size, "--keep", "--output", "json")
		if r.code != 0 {
			t.Fatal(r)
		}
		var res struct {
			Records       int64   `json:"records"`
			RecordsPerSec float64 `json:"records_per_sec"`
			MBPerSec      float64 `json:"mb_per_sec"`
			Warmup        int64   `json:"warmup_records"`
			TopicRecords  int64   `json:"topic_records"`
			Topic         string  `json:"topic"`
			Latency       struct {
				Avg, Max, P50, P95, P99, P999 float64
			} `json:"latency_ms"`
			Machine struct {
				CPUs  int    `json:"cpus"`
				Kafka string `json:"kafka"`
			} `json:"machine"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, r)
		}
		var grew int64
		for _, o := range testenv.EndOffsets(t, res.Topic) {
			grew += o
		}
		if res.Records != 20000 || res.Warmup != 1000 || grew != 21000 || res.TopicRecords != grew {
			t.Errorf("record size %s: records %d + warmup %d, reported topic growth %d, actual growth %d; want 20000 + 1000 = 21000",
				size, res.Records, res.Warmup, res.TopicRecords, grew)
		}
		l := res.Latency
		if !(l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) || l.Max <= 0 || res.RecordsPerSec <= 0 || res.MBPerSec <= 0 {
			t.Errorf("record size %s: implausible figures %+v", size, res)
		}
		if res.Machine.CPUs == 0 || res.Machine.Kafka == "" {
			t.Errorf("machine facts missing: %+v", res.Machine)
		}
		if _, err := testenv.Admin(t).DeleteTopic(context.Background(), res.Topic); err != nil {
			t.Log(err)
		}
	}
}

// TestBenchSinkAgreesWithCount: bench sink's rows equal SELECT count(*),
// and it cleans up after itself.
func TestBenchSinkAgreesWithCount(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "bench", "sink", brokersFlag(t), "--database-url", testenv.DatabaseURL(t),
		"--records", "20000", "--batch-rows", "1000", "--output", "json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var res struct {
		Records, Rows, RowsCounted, Batches, RawRows int64
		RowsPerSec, RawPerSec, Ratio                 float64
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	num := func(k string) float64 { f, _ := raw[k].(float64); return f }
	res.Records, res.Rows, res.RowsCounted = int64(num("records")), int64(num("rows")), int64(num("rows_counted"))
	res.Batches, res.RawRows = int64(num("batches")), int64(num("raw_copy_rows"))
	res.RowsPerSec, res.RawPerSec, res.Ratio = num("rows_per_sec"), num("raw_copy_rows_per_sec"), num("ratio_to_raw_copy")
	if res.Rows != 20000 || res.RowsCounted != 20000 || res.RawRows != 20000 {
		t.Errorf("rows %d, counted %d, raw copy %d: want 20000 each", res.Rows, res.RowsCounted, res.RawRows)
	}
	if res.Batches < 20 || res.RowsPerSec <= 0 || res.RawPerSec <= 0 || res.Ratio <= 0 {
		t.Errorf("implausible figures %+v", res)
	}
}

// TestBenchE2E: every stored row has a latency, read back from PostgreSQL.
func TestBenchE2E(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "bench", "e2e", brokersFlag(t), "--database-url", testenv.DatabaseURL(t),
		"--rate", "200", "--duration", "5s", "--output", "json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var res struct {
		Produced     int64  `json:"produced"`
		Stored       int64  `json:"stored"`
		LatencyCount int64  `json:"latency_samples"`
		LatencyTo    string `json:"latency_to"`
		MaxLag       int64  `json:"max_lag"`
		Latency      struct {
			Avg, Max, P50, P99 float64
		} `json:"latency_ms"`
		TxStart struct {
			Avg, Max, P50, P99 float64
		} `json:"latency_to_transaction_start_ms"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	if res.Produced < 900 || res.Stored != res.Produced || res.LatencyCount != res.Stored {
		t.Errorf("produced %d, stored %d, latencies %d: want about 1000, all stored, one latency each", res.Produced, res.Stored, res.LatencyCount)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("implausible latency %+v", res.Latency)
	}
	// The test bed keeps commit times: latency is measured to the commit,
	// which comes after the transaction's start for every row.
	if res.LatencyTo != "commit" || res.TxStart.P50 <= 0 || res.TxStart.P50 > res.Latency.P50 || res.TxStart.Max > res.Latency.Max {
		t.Errorf("latency to %q %+v, to the transaction start %+v: want commit, later than the start", res.LatencyTo, res.Latency, res.TxStart)
	}
	if r := run(t, nil, "bench", "e2e", "--rate", "100"); r.code != 2 {
		t.Errorf("bench e2e without --duration: want exit 2\n%s", r)
	}
}
