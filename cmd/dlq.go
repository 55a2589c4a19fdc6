package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/foodpipe/foodpipe/pkg/config"
	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/pipeline"
)

func newDLQCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay the dead-letter topic",
	}
	groupCmd(c)
	c.AddCommand(newDLQInspectCmd(app), newDLQReplayCmd(app))
	return c
}

type dlqInspectOptions struct {
	cluster kafka.Cluster
	inspect pipeline.InspectOptions
	// since is resolved against the clock when the command runs.
	since  config.Since
	output string
	hint   string // added when the topic is missing: see topicHint
}

func newDLQInspectCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "inspect",
		Short: "List the dead letters with their headers and a preview of the value",
		Long: `Read the dead-letter topic (<topic>.dlq, or --dlq-topic) from its first record to
its end at the time, without joining a consumer group, and list every dead letter:
where it is, its class (decode, validate or store), where it came from (source
topic, partition and offset), when it failed, the reason, and the first 60
characters of the value with non-printable bytes escaped. A marker — a record too
large to dead-letter whole, dead-lettered as headers only — shows the original's
size and SHA-256 instead.

--class keeps the given classes; --since keeps the dead letters that failed since
then: a duration ago (1h, 30m) or an RFC 3339 time (2026-11-27T13:00:00Z).
--output json prints one JSON object per line, with every header.`,
		Example: `  foodpipe dlq inspect
  foodpipe dlq inspect --class store --since 1h
  foodpipe dlq inspect --output json | jq -r '.headers["foodpipe-error"]'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runDLQInspect(c.Context(), app.Stdout, dlqInspectOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "dlq-topic", "class", "since", "output")
	return c
}

func dlqInspectOptionsFrom(app *App, e *env) dlqInspectOptions {
	since, _ := config.ParseSince(e.cfg.DLQ.Since) // validated by load
	return dlqInspectOptions{
		cluster: app.kafkaCluster(e),
		inspect: pipeline.InspectOptions{Topic: e.cfg.Kafka.DLQ(), Classes: e.cfg.DLQ.Classes()},
		since:   since,
		output:  e.cfg.Output,
		hint:    topicHint(e.cfg.Kafka),
	}
}

// topicHint is what a dead-letter command adds to "topic does not exist"
// when --topic names a dead-letter topic itself: --topic names the orders
// topic, and the dead letters are read from <topic>.dlq.
func topicHint(k config.Kafka) string {
	base, ok := strings.CutSuffix(k.Topic, ".dlq")
	if !ok || k.DLQTopic != "" {
		return ""
	}
	return fmt.Sprintf("--topic names the orders topic, whose dead letters are in <topic>.dlq: use --topic %s, or --dlq-topic %s",
		base, k.Topic)
}

// withHint adds hint to an error that a topic is missing.
func withHint(err error, hint string) error {
	if hint == "" || !errors.Is(err, kafka.ErrTopicMissing) {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}

// deadLetterRow is one dead letter as dlq inspect shows it, in text or as
// one JSON line.
type deadLetterRow struct {
	Partition      int32             `json:"partition"`
	Offset         int64             `json:"offset"`
	Class          string            `json:"class"`
	Reason         string            `json:"reason"`
	Source         sourceCoordinates `json:"source"`
	Group          string            `json:"group"`
	FailedAt       string            `json:"failed_at"`
	Key            *string           `json:"key"` // nil: the record has no key
	ValueBytes     int               `json:"value_bytes"`
	ValuePreview   string            `json:"value_preview"`
	Truncated      bool              `json:"truncated"`
	OriginalSize   int64             `json:"original_size,omitempty"`
	OriginalSHA256 string            `json:"original_sha256,omitempty"`
	Headers        map[string]string `json:"headers"`
}

type sourceCoordinates struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp string `json:"timestamp"`
}

// previewRunes is how much of a value a dead-letter row shows.
const previewRunes = 60

func deadLetterRowOf(l kafka.Letter) deadLetterRow {
	r := deadLetterRow{
		Partition: l.Partition, Offset: l.Offset, Class: l.Class, Reason: l.Reason,
		Source:   sourceCoordinates{Topic: l.SourceTopic, Partition: l.SourcePartition, Offset: l.SourceOffset, Timestamp: timeText(l.SourceTimestamp)},
		Group:    l.Group,
		FailedAt: timeText(l.FailedAt), ValueBytes: len(l.Value), ValuePreview: escape(l.Value, previewRunes),
		Truncated: l.Truncated, OriginalSize: l.OriginalSize, OriginalSHA256: l.OriginalSHA256,
		Headers: map[string]string{},
	}
	if l.Key != nil {
		k := escape(l.Key, 0)
		r.Key = &k
	}
	for _, h := range l.Headers {
		r.Headers[h.Key] = string(h.Value)
	}
	return r
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// escape shows b as text a terminal prints safely: printable characters as
// they are; \n \r \t and \\ escaped; an invalid byte or a non-printable ASCII
// one as \xNN, any other non-printable character as \uNNNN. With limit > 0,
// at most limit characters, then "…".
func escape(b []byte, limit int) string {
	var s strings.Builder
	n := 0
	for len(b) > 0 {
		if limit > 0 && n == limit {
			s.WriteString("…")
			break
		}
		r, size := rune(b[0]), 1
		if r >= 0x80 {
			r, size = utf8.DecodeRune(b)
		}
		switch {
		case r == '\\':
			s.WriteString(`\\`)
		case r == '\n':
			s.WriteString(`\n`)
		case r == '\r':
			s.WriteString(`\r`)
		case r == '\t':
			s.WriteString(`\t`)
		case r == utf8.RuneError && size == 1, r < 0x80 && !unicode.IsPrint(r):
			fmt.Fprintf(&s, `\x%02x`, b[0])
		case !unicode.IsPrint(r):
			fmt.Fprintf(&s, `\u%04x`, r)
		default:
			s.WriteRune(r)
		}
		b = b[size:]
		n++
	}
	return s.String()
}

func runDLQInspect(ctx context.Context, out io.Writer, opts dlqInspectOptions) error {
	opts.inspect.Since = opts.since.Time(time.Now())
	show, flush := inspectPrinter(out, opts.output)
	st, err := pipeline.Inspect(ctx, opts.cluster, opts.inspect, show)
	if err != nil && st.Read == 0 {
		return withHint(err, opts.hint) // nothing read: the error says why
	}
	if ferr := flush(st); err == nil {
		err = ferr
	}
	return err
}

// inspectPrinter prints dead letters as they are read, so that memory stays
// bounded however large the topic: a table flushed every few hundred rows,
// or one JSON object per line.
func inspectPrinter(out io.Writer, format string) (show func(kafka.Letter) error, flush func(pipeline.InspectStats) error) {
	if format == "json" {
		enc := json.NewEncoder(out)
		return func(l kafka.Letter) error { return enc.Encode(deadLetterRowOf(l)) },
			func(pipeline.InspectStats) error { return nil }
	}
	tw := table(out)
	rows := 0
	header := func() {
		fmt.Fprintln(tw, "DLQ OFFSET\tCLASS\tSOURCE\tFAILED AT\tREASON\tVALUE")
	}
	header()
	show = func(l kafka.Letter) error {
		r := deadLetterRowOf(l)
		value := r.ValuePreview
		if r.Truncated {
			value = fmt.Sprintf("(marker: the original is %d bytes, sha256 %.16s…)", r.OriginalSize, r.OriginalSHA256)
		}
		at := r.FailedAt
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			at = t.Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(tw, "%d@%d\t%s\t%s/%d@%d\t%s\t%s\t%s\n", r.Partition, r.Offset, r.Class,
			r.Source.Topic, r.Source.Partition, r.Source.Offset, at, escape([]byte(r.Reason), 80), value)
		if rows++; rows%500 == 0 {
			return tw.Flush()
		}
		return nil
	}
	flush = func(st pipeline.InspectStats) error {
		if err := tw.Flush(); err != nil {
			return err
		}
		_, err := fmt.Fprintf(out, "%d of %d dead letters shown\n", st.Shown, st.Read)
		return err
	}
	return show, flush
}

type dlqReplayOptions struct {
	cluster kafka.Cluster
	replay  pipeline.ReplayOptions
	output  string
	hint    string // added when the topic is missing: see topicHint
}

func newDLQReplayCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "replay",
		Short: "Send dead letters back to their source topic once the cause is fixed",
		Long: `Send the dead letters of the dead-letter topic back to the topic they came from
(the foodpipe-source-topic header), with their original key, value and headers
(foodpipe's removed), so that consume tries them again: after a bug in a
producer, the schema or PostgreSQL's settings is fixed.

Each dead letter is replayed at most once, however often the command runs: the
progress of each class is recorded as the committed offsets of its own Kafka group,
<replay-group>.decode, .validate and .store, advanced past each batch for the
records the broker acknowledged. A crash between the acknowledgement and the
commit replays that batch again on the next run; consume stores an order once by
order_id, so nothing is stored twice. --replay-group with a new name replays
everything again. A dead letter whose source topic does not exist stops the run
before its batch is sent; one its topic refuses fails alone, and the next run
sends only it. A record dead-lettered twice (its consumer crashed between the
dead letter's acknowledgement and its commit) is replayed once when the run reads
both: the copy, the same source offset and bytes, is skipped and counted.

Markers (records too large to dead-letter whole) have no value and are skipped
and counted; find the original at the source partition and offset they name.
So are letters without a foodpipe-error-class foodpipe knows.
--class replays only the given classes; --dry-run counts what would be replayed
and changes nothing.`,
		Example: `  foodpipe dlq replay --class store --dry-run
  foodpipe dlq replay --class store
  foodpipe dlq replay --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := app.load(c)
			if err != nil {
				return err
			}
			return runDLQReplay(c.Context(), app.Stdout, dlqReplayOptionsFrom(app, e))
		},
	}
	config.AddFlags(c.Flags(), "dlq-topic", "class", "dry-run", "replay-group", "output")
	return c
}

func dlqReplayOptionsFrom(app *App, e *env) dlqReplayOptions {
	return dlqReplayOptions{
		cluster: app.kafkaCluster(e),
		replay: pipeline.ReplayOptions{
			Topic: e.cfg.Kafka.DLQ(), Classes: e.cfg.DLQ.Classes(), GroupPrefix: e.cfg.DLQ.ReplayGroup, DryRun: e.cfg.DLQ.DryRun,
		},
		output: e.cfg.Output,
		hint:   topicHint(e.cfg.Kafka),
	}
}

func runDLQReplay(ctx context.Context, out io.Writer, opts dlqReplayOptions) error {
	st, err := pipeline.Replay(ctx, opts.cluster, opts.replay)
	if st.Read == 0 && err != nil {
		return withHint(err, opts.hint) // nothing done: the error says why
	}
	if werr := writeResult(out, opts.output, st, func(w io.Writer) error { return printReplay(w, st) }); werr != nil {
		return werr
	}
	return err
}

func printReplay(w io.Writer, st pipeline.ReplayStats) error {
	tw := table(w)
	verb := "replayed"
	if st.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(tw, "dead-letter topic\t%s\n", st.Topic)
	if st.Stopped == pipeline.StoppedSignal {
		fmt.Fprintf(tw, "read\t%d dead letters, then stopped by a signal (the next run replays the rest)\n", st.Read)
	} else {
		fmt.Fprintf(tw, "read\t%d dead letters (from where the classes' replay groups stand, up to the end at the start)\n", st.Read)
	}
	fmt.Fprintf(tw, "%s\t%d\n", verb, st.Replayed)
	for _, s := range st.Sources {
		fmt.Fprintf(tw, "  from %s/%d\t%d\n", s.Topic, s.Partition, s.Replayed)
	}
	var skipped int64
	for _, n := range st.Skipped {
		skipped += n
	}
	fmt.Fprintf(tw, "skipped\t%d", skipped)
	for _, k := range slices.Sorted(maps.Keys(st.Skipped)) {
		fmt.Fprintf(tw, "  %s: %d", k, st.Skipped[k])
	}
	fmt.Fprintln(tw)
	if st.Earlier > 0 {
		fmt.Fprintf(tw, "replayed before\t%d (by an earlier run)\n", st.Earlier)
	}
	if st.OtherClasses > 0 {
		fmt.Fprintf(tw, "other classes\t%d (not selected by --class)\n", st.OtherClasses)
	}
	groups := slices.Sorted(maps.Values(st.Groups))
	if st.DryRun {
		fmt.Fprintf(tw, "progress\tunchanged (dry run) in %s\n", strings.Join(groups, ", "))
	} else {
		fmt.Fprintf(tw, "progress\trecorded in %s\n", strings.Join(groups, ", "))
	}
	return tw.Flush()
}
