package bench

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// numbers masks every number, so that two lines compare by their form.
var numbers = regexp.MustCompile(`\d+(\.\d+)?`)

// TestKafkaLineHasTheJavaToolsForm: KafkaLine is the line
// kafka-producer-perf-test prints, word for word but the numbers. The
// reference is a line Kafka 4.1.1's tool printed
// (testdata/kafka-producer-perf-test.txt), so scripts that parse the Java
// tool's output parse foodpipe's.
func TestKafkaLineHasTheJavaToolsForm(t *testing.T) {
	java, err := os.ReadFile("testdata/kafka-producer-perf-test.txt")
	if err != nil {
		t.Fatal(err)
	}
	r := ProduceReport{Records: 1000000, RecordsPerSec: 612345.6, MBPerSec: 298.99,
		Latency: Latency{Avg: 3.21, Max: 48.5, P50: 2.9, P95: 7.1, P99: 12.4, P999: 30.2}}
	got := numbers.ReplaceAllString(r.KafkaLine(), "N")
	want := numbers.ReplaceAllString(strings.TrimSpace(string(java)), "N")
	if got != want {
		t.Errorf("KafkaLine's form\n%s\nthe Java tool's\n%s", got, want)
	}
	if !strings.HasPrefix(r.KafkaLine(), "1000000 records sent, 612345.6 records/sec (298.99 MB/sec)") {
		t.Errorf("KafkaLine = %q", r.KafkaLine())
	}
}
