package cmd

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/pipeline"
	"github.com/foodpipe/foodpipe/pkg/store"
)

func TestDemoOptions(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		rate      float64
		duration  time.Duration
		realKafka bool
		postgres  string // "" for the embedded server
		pgBin     string
		keep      bool
		consumers int
	}{
		{name: "the demo's defaults", args: []string{"demo"}, rate: 50, duration: 30 * time.Second},
		{name: "flags win", args: []string{"demo", "--rate", "7", "--duration", "1m"}, rate: 7, duration: time.Minute},
		{name: "a rate of 0 given is kept", args: []string{"demo", "--rate", "0"}, rate: 0, duration: 30 * time.Second},
		{name: "environment counts as set", env: map[string]string{"FOODPIPE_RATE": "12", "FOODPIPE_DURATION": "0"},
			args: []string{"demo"}, rate: 12, duration: 0},
		{name: "real services when given", args: []string{"demo", "--brokers", "k1:9092", "--database-url", "postgres://u@db/x",
			"--pg-bin", "/usr/lib/postgresql/15/bin", "--keep"},
			rate: 50, duration: 30 * time.Second, realKafka: true, postgres: "postgres://u@db/x", pgBin: "/usr/lib/postgresql/15/bin", keep: true},
		{name: "database from the environment", env: map[string]string{"FOODPIPE_DATABASE_URL": "host=db"},
			args: []string{"demo"}, rate: 50, duration: 30 * time.Second, postgres: "host=db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, e := loaded(t, tt.env, tt.args...)
			o := demoOptionsFrom(app, e)
			d := o.demo
			if d.Rate != tt.rate || d.Duration != tt.duration {
				t.Errorf("rate %g, duration %v; want %g, %v", d.Rate, d.Duration, tt.rate, tt.duration)
			}
			if d.RealKafka != tt.realKafka {
				t.Errorf("real Kafka %v, want %v", d.RealKafka, tt.realKafka)
			}
			got := ""
			if d.Postgres != nil {
				got = d.Postgres.DatabaseURL
			}
			if got != tt.postgres {
				t.Errorf("postgres %q, want %q", got, tt.postgres)
			}
			if d.Embedded.BinDir != tt.pgBin || o.keep != tt.keep || d.Keep != tt.keep {
				t.Errorf("pg-bin %q, keep %v/%v; want %q, %v", d.Embedded.BinDir, o.keep, d.Keep, tt.pgBin, tt.keep)
			}
			if d.Consumers != 3 || d.Consume.Group != "orders" || d.Kafka.Topic != "food-orders" || d.Topics.Partitions != 3 {
				t.Errorf("consumers %d, group %q, topic %q, partitions %d", d.Consumers, d.Consume.Group, d.Kafka.Topic, d.Topics.Partitions)
			}
			if !strings.HasSuffix(d.Embedded.CacheDir, "foodpipe") {
				t.Errorf("cache dir %q", d.Embedded.CacheDir)
			}
		})
	}
	// produce keeps its own defaults.
	app, e := loaded(t, nil, "produce")
	if p := produceOptionsFrom(app, e).produce; p.Rate != 10 || p.Duration != 0 {
		t.Errorf("produce rate %g, duration %v: the demo's defaults leaked", p.Rate, p.Duration)
	}
}

func TestDemoCheckLine(t *testing.T) {
	poison := make([]pipeline.Poison, 4)
	tests := []struct {
		res  pipeline.DemoResult
		want string
	}{
		{pipeline.DemoResult{Produced: 104, Orders: 100, Poison: poison, Rows: 100, DeadLetters: 4, Drained: true},
			"produced 104 = stored 100 + dead-lettered 4: every order stored exactly once"},
		{pipeline.DemoResult{Produced: 104, Orders: 100, Poison: poison, Rows: 99, DeadLetters: 4, Drained: true},
			"FAILED: produced 100 orders + 4 poison, stored 99, dead-lettered 4"},
		{pipeline.DemoResult{Produced: 104, Orders: 100, Poison: poison, Rows: 90, DeadLetters: 4},
			"stopped before every record was stored: produced 104, stored + dead-lettered 94"},
		// Stopped before the poison went out: nothing to claim about it.
		{pipeline.DemoResult{Produced: 50, Orders: 50, Rows: 50, Drained: true},
			"produced 50 = stored 50: every order stored exactly once (stopped before the poison records were sent)"},
	}
	for _, tt := range tests {
		if got := demoCheck(tt.res); !strings.HasPrefix(got, tt.want) {
			t.Errorf("demoCheck = %q, want it to start %q", got, tt.want)
		}
	}
}

// TestDemoRefusals: settings the demo cannot honour are usage errors
// before anything starts: --keep with no end, a --pg-bin without pg_ctl.
func TestDemoRefusals(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--duration", "0", "--keep"}, "--keep needs a --duration"},
		{[]string{"demo", "--pg-bin", t.TempDir()}, "invalid pg-bin"},
	} {
		app, e := loaded(t, nil, tt.args...)
		if err := demoOptionsFrom(app, e).check(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.args, err, tt.want)
		}
	}
	app, e := loaded(t, nil, "demo", "--keep", "--pg-bin", "/usr/lib/postgresql/15/bin", "--database-url", "postgres://u@db/x")
	if err := demoOptionsFrom(app, e).check(); err != nil {
		t.Errorf("--keep with the default duration, --pg-bin unused beside --database-url: %v", err)
	}
}

// TestDemoMetricsAddr: the demo serves metrics on its own default address
// (falling back to a free port when taken) unless told otherwise; an empty
// --metrics-addr turns them off.
func TestDemoMetricsAddr(t *testing.T) {
	tests := []struct {
		args      []string
		env       map[string]string
		addr      string
		fallsBack bool
	}{
		{args: []string{"demo"}, addr: demoMetricsAddr, fallsBack: true},
		{args: []string{"demo", "--metrics-addr", "127.0.0.1:9999"}, addr: "127.0.0.1:9999"},
		{args: []string{"demo", "--metrics-addr", ""}, addr: ""},
		{args: []string{"demo"}, env: map[string]string{"FOODPIPE_METRICS_ADDR": ":9000"}, addr: ":9000"},
	}
	for _, tt := range tests {
		app, e := loaded(t, tt.env, tt.args...)
		o := demoOptionsFrom(app, e)
		if o.metricsAddr != tt.addr || o.metricsDefault != tt.fallsBack {
			t.Errorf("%q %v: metrics %q (default %v), want %q (%v)", tt.args, tt.env, o.metricsAddr, o.metricsDefault, tt.addr, tt.fallsBack)
		}
	}
}

// TestDemoMetricsFallBack: the demo's own address, taken, gives way to a
// free port; an address the user gave, taken, is an error.
func TestDemoMetricsFallBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	d := pipeline.DemoOptions{Log: slog.New(slog.DiscardHandler)}
	at, stop, err := demoMetrics(t.Context(), demoOptions{metricsAddr: taken, metricsDefault: true}, &d)
	if err != nil || at == "" || at == taken || d.Observer == nil || d.KafkaMetrics == nil {
		t.Fatalf("default address taken: served at %q, err %v, observer %v", at, err, d.Observer)
	}
	stop()
	if _, _, err := demoMetrics(t.Context(), demoOptions{metricsAddr: taken}, &pipeline.DemoOptions{Log: d.Log}); err == nil {
		t.Errorf("a taken address the user gave: no error")
	}
}

// TestPrintDemo: the text summary states the check (produced = stored +
// dead-lettered) and prints the database's answers as tables under their
// headings, a row for each answer in the order the database gave them.
func TestPrintDemo(t *testing.T) {
	hour := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	res := pipeline.DemoResult{Brokers: []string{"127.0.0.1:9092"}, Postgres: "embedded", Stopped: "duration",
		Group: "orders", DLQTopic: "food-orders.dlq", Produced: 604, Orders: 600, Rows: 600, DeadLetters: 4, Drained: true,
		Poison: []pipeline.Poison{{Class: "invalid_json"}, {Class: "invalid_json"}, {Class: "invalid_order"}, {Class: "invalid_order"}},
		Consumers: []pipeline.ConsumerView{{Name: "consumer-1", Partitions: []int32{0, 1, 2}, Stored: 600,
			DeadLettered: map[string]int64{"invalid_json": 2, "invalid_order": 2}}},
		ByStatus: []store.StatusCount{{Status: "pending", Orders: 590, Revenue: 1234567}, {Status: "paid", Orders: 10, Revenue: 2000}},
		TopItems: []store.ItemSales{{ItemID: "ITEM-001", Name: "Classic Burger", Quantity: 210, Orders: 100, Revenue: 188790},
			{ItemID: "ITEM-011", Name: "Coke", Quantity: 200, Orders: 99, Revenue: 49800}},
		RevenueByHour: []store.HourRevenue{{Hour: hour, Orders: 400, Revenue: 800000}, {Hour: hour.Add(time.Hour), Orders: 200, Revenue: 436567}},
	}
	var out bytes.Buffer
	if err := printDemo(&out, res); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "\ncheck          produced 604 = stored 600 + dead-lettered 4: every order stored exactly once") {
		t.Errorf("no check line stating produced = stored + dead-lettered:\n%s", got)
	}
	for _, tt := range []struct {
		heading string
		rows    [][]string // each row's fields
	}{
		{"orders by status:", [][]string{{"STATUS", "ORDERS", "REVENUE"}, {"pending", "590", "$12345.67"}, {"paid", "10", "$20.00"}}},
		{"the 5 best-selling items:", [][]string{{"ITEM", "NAME", "QUANTITY", "ORDERS", "REVENUE"},
			{"ITEM-001", "Classic", "Burger", "210", "100", "$1887.90"}, {"ITEM-011", "Coke", "200", "99", "$498.00"}}},
		{"revenue by hour (UTC):", [][]string{{"HOUR", "ORDERS", "REVENUE"},
			{"2026-03-01", "14:00", "400", "$8000.00"}, {"2026-03-01", "15:00", "200", "$4365.67"}}},
	} {
		lines := section(got, tt.heading)
		if len(lines) != len(tt.rows) {
			t.Errorf("%q: %d lines, want %d:\n%s", tt.heading, len(lines), len(tt.rows), got)
			continue
		}
		for i, want := range tt.rows {
			if f := strings.Fields(lines[i]); strings.Join(f, "|") != strings.Join(want, "|") {
				t.Errorf("%q line %d: %q, want the fields %q", tt.heading, i, lines[i], want)
			}
		}
	}
}

// section is the lines under heading, up to the next blank line.
func section(out, heading string) []string {
	_, after, ok := strings.Cut(out, "\n"+heading+"\n")
	if !ok {
		return nil
	}
	block, _, _ := strings.Cut(after, "\n\n")
	return strings.Split(strings.TrimRight(block, "\n"), "\n")
}
