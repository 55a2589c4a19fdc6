package cmd

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

// aView is a demo 12 s in: 600 orders and 4 poison records acknowledged,
// 590 stored and 3 dead-lettered by three consumers, 11 records behind.
func aView() pipeline.DemoView {
	return pipeline.DemoView{Elapsed: 12*time.Second + 300*time.Millisecond, Duration: 30 * time.Second,
		Phase: "producing", Produced: 600, Poisoned: 4, Consumers: []pipeline.ConsumerView{
			{Name: "consumer-1", Partitions: []int32{0}, Stored: 200, DeadLettered: map[string]int64{"invalid_json": 1}, Lag: 5},
			{Name: "consumer-2", Partitions: []int32{1}, Stored: 195, DeadLettered: map[string]int64{"invalid_order": 2}, Lag: 6},
			{Name: "consumer-3", Partitions: []int32{2}, Stored: 195, Lag: 0},
		}}
}

// TestLogView: the progress line counts produced as the summary does
// (orders and poison records, both acknowledged, and says so), and gives
// the group's lag as the live view does.
func TestLogView(t *testing.T) {
	var buf bytes.Buffer
	logView(slog.New(slog.NewTextHandler(&buf, nil)), aView())
	line := strings.TrimSpace(buf.String())
	for _, want := range []string{"msg=progress", "phase=producing", "elapsed=12s", "produced=604", "orders=600", "poison=4",
		"stored=590", "dead_lettered=3", "lag=11", `consumers="consumer-1=[0]:200 consumer-2=[1]:195 consumer-3=[2]:195"`} {
		if !strings.Contains(line, " "+want) {
			t.Errorf("progress line without %s:\n%s", want, line)
		}
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("want one line:\n%s", buf.String())
	}
}

// TestViewLines: the live view counts as the progress line does.
func TestViewLines(t *testing.T) {
	lines := viewLines(aView(), 50)
	want := []string{
		"foodpipe demo  producing   12s / 30s at 50 orders/s",
		"  produced 604 (600 orders + 4 poison)   stored 590   dead-lettered 3   lag 11",
		"  consumer-1  partitions [0]       stored 200     dead-lettered 1   lag 5",
	}
	if len(lines) != 5 {
		t.Fatalf("%d lines, want a head, the totals and 3 consumers:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], w)
		}
	}
}
