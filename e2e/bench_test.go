package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/internal/testenv"
	"github.com/jackc/pgx/v5"
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
			CPU struct {
				User       float64 `json:"user_seconds"`
				System     float64 `json:"system_seconds"`
				PerMillion float64 `json:"seconds_per_million_records"`
			} `json:"cpu"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, r)
		}
		// 21,000 records cost CPU: a zero would be a figure never measured.
		if c := res.CPU; c.User+c.System <= 0 || c.PerMillion <= 0 {
			t.Errorf("record size %s: CPU %+v, want the process's own, above zero", size, c)
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

// TestBenchSinkAgreesWithCount: bench sink's rows are what a SELECT
// count(*) of our own finds in its kept schema; without --keep it leaves no
// schema and no topic behind (asked of the catalogs, not of the bench).
func TestBenchSinkAgreesWithCount(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{true, false} {
		args := []string{"bench", "sink", brokersFlag(t), "--database-url", testenv.DatabaseURL(t),
			"--records", "20000", "--batch-rows", "1000", "--output", "json"}
		if keep {
			args = append(args, "--keep")
		}
		r := run(t, nil, args...)
		if r.code != 0 {
			t.Fatal(r)
		}
		var res struct {
			Rows        int64   `json:"rows"`
			RowsCounted int64   `json:"rows_counted"`
			Batches     int64   `json:"batches"`
			RawRows     int64   `json:"raw_copy_rows"`
			RowsPerSec  float64 `json:"rows_per_sec"`
			RawPerSec   float64 `json:"raw_copy_rows_per_sec"`
			Ratio       float64 `json:"ratio_to_raw_copy"`
			CPU         struct {
				PerMillion float64 `json:"seconds_per_million_records"`
			} `json:"cpu"`
			Topic  string `json:"topic"`
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, r)
		}
		if res.Rows != 20000 || res.RowsCounted != 20000 || res.RawRows != 20000 {
			t.Errorf("rows %d, counted %d, raw copy %d: want 20000 each", res.Rows, res.RowsCounted, res.RawRows)
		}
		if res.Batches < 20 || res.RowsPerSec <= 0 || res.RawPerSec <= 0 || res.Ratio <= 0 || res.CPU.PerMillion <= 0 {
			t.Errorf("implausible figures %+v", res)
		}
		conn, err := pgx.Connect(t.Context(), testenv.DatabaseURL(t))
		if err != nil {
			t.Fatal(err)
		}
		var schemas int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", res.Schema).Scan(&schemas); err != nil {
			t.Fatal(err)
		}
		td, err := testenv.Admin(t).ListTopics(t.Context(), res.Topic, res.Topic+".dlq")
		if err != nil {
			t.Fatal(err)
		}
		topics := 0
		for _, d := range td {
			if d.Err == nil {
				topics++
			}
		}
		if keep {
			var rows int64
			q := "SELECT count(*) FROM " + pgx.Identifier{res.Schema, "orders"}.Sanitize()
			if err := conn.QueryRow(t.Context(), q).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != res.Rows || schemas != 1 || topics != 2 || !groupExists(t, res.Topic) {
				t.Errorf("--keep: our count %d, bench says %d; %d schema and %d topics kept (want 1 and 2), group kept: %v",
					rows, res.Rows, schemas, topics, groupExists(t, res.Topic))
			}
			_, _ = conn.Exec(t.Context(), "DROP SCHEMA "+pgx.Identifier{res.Schema}.Sanitize()+" CASCADE")
			_, _ = testenv.Admin(t).DeleteTopics(t.Context(), res.Topic, res.Topic+".dlq")
			_, _ = testenv.Admin(t).DeleteGroup(t.Context(), res.Topic)
		} else if schemas != 0 || topics != 0 || groupExists(t, res.Topic) {
			t.Errorf("without --keep, %d schema and %d topics are left, group left: %v", schemas, topics, groupExists(t, res.Topic))
		}
		conn.Close(t.Context())
	}
}

// TestBenchTextOutput: the text summaries say what they should, in the
// words they should, whatever the numbers (masked).
func TestBenchTextOutput(t *testing.T) {
	t.Parallel()
	mask := regexp.MustCompile(`\d+(\.\d+)?`)
	machine := regexp.MustCompile(`(?m)^machine: .*$`)
	bench := regexp.MustCompile(`foodpipe-bench-[0-9a-f-]+`)
	tests := []struct {
		args   []string
		golden string
	}{
		{[]string{"bench", "produce", "--records", "2000", "--record-size", "100"}, `N records sent, N records/sec (N MB/sec), N ms avg latency, N ms max latency, N ms 50th, N ms 95th, N ms 99th, N ms 99.9th.
payload: random bytes, acks=all, compression=snappy, linger=Nms, batch bytes=N; warmup records: N
cpu: N s of this process per million records (user N s + system N s in all)
check: the topic grew by N records (N measured + N warmup + N failed)
machine
`},
		{[]string{"bench", "sink", "--records", "2000", "--database-url", testenv.DatabaseURL(t)}, `sink      N rows in Ns: N rows/s       (N batches, N rows on average; group join Ns not counted)
raw COPY  N rows in Ns: N rows/s       (same rows, identical empty table, one COPY, no Kafka)
ratio     N of the raw COPY ceiling
cpu       N s of this process per million rows  (user N s + system N s while draining; PostgreSQL's own is not in it)
check     SELECT count(*) = N
machine
`},
	}
	for _, tt := range tests {
		r := run(t, nil, append(tt.args, brokersFlag(t))...)
		if r.code != 0 {
			t.Fatal(r)
		}
		got := machine.ReplaceAllString(r.stdout, "machine")
		got = mask.ReplaceAllString(bench.ReplaceAllString(got, "B"), "N")
		got = regexp.MustCompile(`[ \t]+\n`).ReplaceAllString(got, "\n")
		want := mask.ReplaceAllString(tt.golden, "N")
		// Column widths follow the numbers: compare words, not spaces.
		if strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(want), " ") {
			t.Errorf("%v:\n%s\nwant the form\n%s", tt.args[:2], got, want)
		}
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
		Stages []struct {
			Stage   string
			Latency struct{ Avg, Max, P50, P99 float64 } `json:"latency_ms"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	// How many are produced in 5 s depends on the machine; that each is
	// stored and measured does not.
	if res.Produced == 0 || res.Stored != res.Produced || res.LatencyCount != res.Stored {
		t.Errorf("produced %d, stored %d, latencies %d: want some, all stored, one latency each", res.Produced, res.Stored, res.LatencyCount)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("implausible latency %+v", res.Latency)
	}
	// The test bed keeps commit times: latency is measured to the commit,
	// which comes after the transaction's start for every row.
	if res.LatencyTo != "commit" || res.TxStart.P50 <= 0 || res.TxStart.P50 > res.Latency.P50 || res.TxStart.Max > res.Latency.Max {
		t.Errorf("latency to %q %+v, to the transaction start %+v: want commit, later than the start", res.LatencyTo, res.Latency, res.TxStart)
	}
	// The stages, by the consumer's clock, add up to the latency to the
	// commit: never less than the database's own figure (the consumer sees
	// the commit after it happened; 1 ms for the clocks' rounding).
	var sum float64
	for _, st := range res.Stages {
		sum += st.Latency.Avg
	}
	if len(res.Stages) != 3 || res.Stages[0].Latency.P50 <= 0 || res.Stages[2].Latency.P50 <= 0 || sum < res.Latency.Avg-1 {
		t.Errorf("stages %+v add up to %.2f ms on average, the latency to the commit is %.2f ms", res.Stages, sum, res.Latency.Avg)
	}
	if r := run(t, nil, "bench", "e2e", "--rate", "100"); r.code != 2 {
		t.Errorf("bench e2e without --duration: want exit 2\n%s", r)
	}
}

// TestBenchProduceSaysWhyRecordsFailed: records larger than the broker
// takes fail, and bench produce says why, as produce does.
func TestBenchProduceSaysWhyRecordsFailed(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "bench", "produce", brokersFlag(t), "--records", "3", "--record-size", "2000000")
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "3 records not delivered") ||
		!strings.Contains(line, "MESSAGE_TOO_LARGE") {
		t.Errorf("want exit 1 saying why the records failed:\n%s", r)
	}
}
