package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foodpipe/foodpipe/internal/testenv"
)

// The guide (docs/guide.md) runs here, block by block, so that it cannot go
// stale: every ```sh block is executed by bash in one working directory,
// with the race-enabled binary on PATH as foodpipe, Kafka's tools as
// wrappers around the test bed's jars, and FOODPIPE_* pointing at a topic,
// group and schema of this test's own. Its stdout and stderr must match the
// ```output block that follows it.
//
// Matching: the guide's names (food-orders, the group orders) stand for
// this test's; runs of spaces and tabs count as one space; `…` in an
// expected line stands for any text; every expected line must match an
// output line, in order (other lines may come between).

// guideBlock is one executable block of the guide.
type guideBlock struct {
	line   int // where the block starts in the guide, for messages
	script string
	want   []string // the output block's lines; nil when it has none
}

// parseGuide returns the guide's executable blocks: ```sh blocks not
// preceded by a `<!-- not run` comment, each with the ```output block that
// follows it, if any, before the next ```sh block.
func parseGuide(text string) ([]guideBlock, error) {
	var blocks []guideBlock
	lines := strings.Split(text, "\n")
	notRun := false
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(l, "<!-- not run"):
			notRun = true
		case l == "```sh" || l == "```output":
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				body = append(body, lines[i])
			}
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: unclosed block", start+1)
			}
			switch {
			case l == "```output" && len(blocks) == 0:
				return nil, fmt.Errorf("line %d: an output block before any command", start+1)
			case l == "```output":
				if blocks[len(blocks)-1].want != nil {
					return nil, fmt.Errorf("line %d: two output blocks for one command block", start+1)
				}
				blocks[len(blocks)-1].want = body
			case notRun:
				notRun = false
			default:
				blocks = append(blocks, guideBlock{line: start + 1, script: strings.Join(body, "\n")})
			}
		case l != "":
			notRun = false
		}
	}
	return blocks, nil
}

var spaces = regexp.MustCompile(`[ \t]+`)

// matchOutput checks got against the expected lines; it returns the first
// expected line not found, or "".
func matchOutput(got string, want []string) string {
	var out []string
	for _, l := range strings.Split(got, "\n") {
		if l = strings.TrimSpace(spaces.ReplaceAllString(l, " ")); l != "" {
			out = append(out, l)
		}
	}
	i := 0
	for _, w := range want {
		w = strings.TrimSpace(spaces.ReplaceAllString(w, " "))
		if w == "" {
			continue
		}
		parts := strings.Split(w, "…")
		for k := range parts {
			parts[k] = regexp.QuoteMeta(parts[k])
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		for i < len(out) && !re.MatchString(out[i]) {
			i++
		}
		if i == len(out) {
			return w
		}
		i++
	}
	return ""
}

func TestParseGuide(t *testing.T) {
	doc := "intro\n<!-- not run -->\n```sh\nexport X=1\n```\n\n```sh\necho a\n```\n\n```output\na\n```\ntext\n```sh\ntrue\n```\n"
	blocks, err := parseGuide(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[0].script != "echo a" || len(blocks[0].want) != 1 || blocks[1].script != "true" || blocks[1].want != nil {
		t.Fatalf("blocks %+v", blocks)
	}
	tests := []struct {
		got  string
		want []string
		miss string
	}{
		{"topic  food-orders\nproduced 10 orders\n", []string{"topic food-orders", "produced … orders"}, ""},
		{"b\na\n", []string{"a", "b"}, "b"},                              // order matters
		{"partition 0\tx\n", []string{"partition 0 x"}, ""},              // tabs are spaces
		{"lag: 5\n", []string{"lag: 0"}, "lag: 0"},                       // numbers are literal
		{"msg=x partitions=[0]\n", []string{"msg=x partitions=[…]"}, ""}, // brackets are literal
	}
	for _, tt := range tests {
		if got := matchOutput(tt.got, tt.want); got != tt.miss {
			t.Errorf("matchOutput(%q, %q) = %q, want %q", tt.got, tt.want, got, tt.miss)
		}
	}
}

// TestGuide runs docs/guide.md against the test bed.
func TestGuide(t *testing.T) {
	t.Parallel()
	brokers := testenv.Brokers(t)
	base := testenv.DatabaseURL(t)
	blocks := guideBlocks(t)

	topic, group := testenv.Name(t, "guide"), testenv.Name(t, "guide-group")
	dsn := guideDatabase(t, base)
	work, bin := t.TempDir(), t.TempDir()
	guideTools(t, bin)
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+work, "XDG_CONFIG_HOME="+work,
		"FOODPIPE_BROKERS="+strings.Join(brokers, ","),
		"FOODPIPE_DATABASE_URL="+dsn,
		"FOODPIPE_TOPIC="+topic,
		"FOODPIPE_GROUP="+group,
		"FOODPIPE_LOG_FORMAT=text",
	)
	// The guide's names stand for this test's, in commands and in output.
	toTest := strings.NewReplacer("food-orders", topic, "--group orders", "--group "+group)
	toGuide := strings.NewReplacer(topic, "food-orders", group, "orders")

	var groups []int // process groups of the blocks, killed at the end
	t.Cleanup(func() {
		for _, pg := range groups {
			_ = syscall.Kill(-pg, syscall.SIGKILL)
		}
		for _, log := range []string{"consumer-1.log", "consumer-2.log", "consumer-3.log", "consumer-4.log"} {
			if b, err := os.ReadFile(filepath.Join(work, log)); err == nil {
				noRace(t, string(b))
			}
		}
	})
	for _, b := range blocks {
		out, pg, err := runGuideBlock(t, toTest.Replace(b.script), work, env)
		if pg != 0 {
			groups = append(groups, pg)
		}
		got := toGuide.Replace(out)
		if err != nil {
			t.Fatalf("docs/guide.md:%d: %v\n--- block\n%s\n--- output\n%s", b.line, err, b.script, got)
		}
		if b.want == nil {
			continue
		}
		if miss := matchOutput(got, b.want); miss != "" {
			t.Fatalf("docs/guide.md:%d: no output line matches %q\n--- block\n%s\n--- output\n%s", b.line, miss, b.script, got)
		}
		t.Logf("docs/guide.md:%d: ok\n%s", b.line, got)
	}
}

// guideBlocks checks that what the guide uses is at hand and returns the
// guide's executable blocks: the whole course.
func guideBlocks(t *testing.T) []guideBlock {
	t.Helper()
	testenv.RequireTestbed(t) // Kafka's command-line tools come from the test bed's jars
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatalf("the guide uses psql: %v", err)
	}
	text, err := os.ReadFile("../docs/guide.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseGuide(string(text))
	if err != nil {
		t.Fatalf("docs/guide.md: %v", err)
	}
	if len(blocks) < 10 {
		t.Fatalf("docs/guide.md has %d executable blocks, want the whole course", len(blocks))
	}
	return blocks
}

// guideDatabase makes a schema of the test's own on base, dropped at the
// end, and returns a URL whose search_path is that schema.
func guideDatabase(t *testing.T, base string) (dsn string) {
	t.Helper()
	schema := strings.ReplaceAll(testenv.Name(t, "guide"), "-", "_")
	mustExec(t, base, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	t.Cleanup(func() { mustExec(t, base, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
	// libpq's spelling of a search_path, which both psql and foodpipe (pgx) take.
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "options=-csearch_path%3D" + schema
}

// guideTools puts in bin the race-enabled binary as foodpipe and the Kafka
// tools the guide runs, as wrappers around the test bed's jars.
func guideTools(t *testing.T, bin string) {
	t.Helper()
	if err := os.Symlink(binary, filepath.Join(bin, "foodpipe")); err != nil {
		t.Fatal(err)
	}
	testbed, err := filepath.Abs("../scripts/testbed.sh")
	if err != nil {
		t.Fatal(err)
	}
	for name, class := range map[string]string{
		"kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
		"kafka-console-producer.sh": "org.apache.kafka.tools.ConsoleProducer",
		"kafka-consumer-groups.sh":  "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
		"kafka-get-offsets.sh":      "org.apache.kafka.tools.GetOffsetShell",
	} {
		script := fmt.Sprintf("#!/bin/sh\nexec %q kafka-run %s \"$@\"\n", testbed, class)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// runGuideBlock runs script with bash in work, for two minutes at most,
// and returns its stdout and stderr together, its process group (0 if it
// did not start) and the error of the run.
func runGuideBlock(t *testing.T, script, work string, env []string) (out string, pgid int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", script)
	c.Dir, c.Env = work, env
	// Its own process group: what a block starts in the background
	// (consumers) is killed with it at the end, not before.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	err = c.Run()
	if c.Process != nil {
		pgid = c.Process.Pid
	}
	return buf.String(), pgid, err
}

func mustExec(t *testing.T, dsn, sql string) { testenv.Exec(t, dsn, sql) }
