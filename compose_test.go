package main

import (
	"fmt"
	"io"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/foodpipe/foodpipe/cmd"
	"github.com/foodpipe/foodpipe/pkg/config"
)

// There is no Docker engine where the tests run, so docker-compose.yml is
// proven here instead: loaded with compose-go (the loader docker compose
// itself uses, so a file it rejects fails here too) and checked for what the
// stack promises. TestComposeMutations (compose_mutations_test.go) shows
// each check can fail.

// wantDependsOn is the start order: the stores must be healthy, the one-shot
// set-up services must have exited 0.
var wantDependsOn = map[string]map[string]string{
	"kafka":       {},
	"postgres":    {},
	"init-topics": {"kafka": types.ServiceConditionHealthy},
	"init-db":     {"postgres": types.ServiceConditionHealthy, "init-topics": types.ServiceConditionCompletedSuccessfully},
	"producer": {"kafka": types.ServiceConditionHealthy,
		"init-topics": types.ServiceConditionCompletedSuccessfully, "init-db": types.ServiceConditionCompletedSuccessfully},
	"consumer": {"kafka": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy,
		"init-topics": types.ServiceConditionCompletedSuccessfully, "init-db": types.ServiceConditionCompletedSuccessfully},
}

// wantCommands are the foodpipe invocations of the stack, argument for
// argument (after the image's ENTRYPOINT, which dockerfile_test.go checks is
// the foodpipe binary): the README and the file's header promise a producer
// at 10 orders/s and consumers in the group orders.
var wantCommands = map[string][]string{
	"init-topics": {"topics", "init"},
	"init-db":     {"db", "migrate"},
	"producer":    {"produce", "--rate", "10"},
	"consumer":    {"consume", "--group", "orders"},
}

// wantPorts is everything published on the host: Kafka's host listener and
// PostgreSQL, on the loopback interface only.
var wantPorts = []string{"kafka 127.0.0.1:9092->9092/tcp", "postgres 127.0.0.1:5432->5432/tcp"}

func TestCompose(t *testing.T) {
	for _, p := range composeProblems(t, "docker-compose.yml") {
		t.Error(p)
	}
}

// composeProblems loads the compose file at path and returns every way in
// which it breaks what the stack promises, one line each.
func composeProblems(t *testing.T, path string) []string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	// No process environment: nothing on the developer's machine can
	// change what the file means.
	opts, err := cli.NewProjectOptions([]string{abs}, cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		return []string{"compose-go rejects the file: " + err.Error()}
	}

	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if got, want := slices.Sorted(maps.Keys(project.Services)), slices.Sorted(maps.Keys(wantDependsOn)); !slices.Equal(got, want) {
		add("services are %v, want %v", got, want)
	}
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		s := project.Services[name]
		checkImage(add, name, s)
		checkDependsOn(add, name, s)
		if want := 1 + 2*btoi(name == "consumer"); s.GetScale() != want {
			add("%s runs %d replicas, want %d", name, s.GetScale(), want)
		}
	}
	checkPorts(add, project)
	if kafka, ok := project.Services["kafka"]; ok {
		checkHealth(add, "kafka", kafka, "/opt/kafka/bin/kafka-broker-api-versions.sh")
		checkKafka(add, kafka)
	}
	if pg, ok := project.Services["postgres"]; ok {
		checkHealth(add, "postgres", pg, "pg_isready")
	}
	for _, name := range slices.Sorted(maps.Keys(wantCommands)) {
		if s, ok := project.Services[name]; ok {
			checkFoodpipe(t, add, project, name, s)
		}
	}
	return problems
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

var (
	postgresImage = regexp.MustCompile(`^postgres:15\.\d+$`)
	tagged        = regexp.MustCompile(`^[^:@]+(:[^/:@]+)$`) // name:tag, the tag after the last "/"
)

// checkImage requires a pinned tag: never "latest", never none (which
// means latest). Kafka and PostgreSQL are pinned to the versions foodpipe
// is tested against; foodpipe itself is built from this clone.
func checkImage(add func(string, ...any), name string, s types.ServiceConfig) {
	m := tagged.FindStringSubmatch(s.Image)
	if m == nil || m[1] == ":latest" {
		add("%s image %q is not pinned to a tag", name, s.Image)
		return
	}
	switch {
	case name == "kafka" && s.Image != "apache/kafka:4.1.1":
		add("kafka image is %s, want apache/kafka:4.1.1 (the official image, the version of the test bed)", s.Image)
	case name == "postgres" && !postgresImage.MatchString(s.Image):
		add("postgres image is %s, want postgres:15.<minor>", s.Image)
	case wantCommands[name] != nil && (s.Build == nil || s.Build.Dockerfile != "Dockerfile" || s.PullPolicy != types.PullPolicyBuild):
		add("%s is not built from this clone's Dockerfile (build: ., pull_policy: build)", name)
	}
}

func checkDependsOn(add func(string, ...any), name string, s types.ServiceConfig) {
	want := wantDependsOn[name]
	for on, cond := range want {
		d, ok := s.DependsOn[on]
		switch {
		case !ok:
			add("%s does not depend on %s", name, on)
		case d.Condition != cond:
			add("%s depends on %s with %q, want %q", name, on, d.Condition, cond)
		case !d.Required:
			add("%s depends on %s optionally", name, on)
		}
	}
	for on := range s.DependsOn {
		if _, ok := want[on]; !ok {
			add("%s depends on %s, which is not in the start order", name, on)
		}
	}
}

func checkHealth(add func(string, ...any), name string, s types.ServiceConfig, tool string) {
	h := s.HealthCheck
	if h == nil || h.Disable || len(h.Test) < 2 || h.Test[0] == "NONE" {
		add("%s has no healthcheck", name)
		return
	}
	if !slices.Contains(h.Test, tool) && !strings.Contains(strings.Join(h.Test, " "), tool) {
		add("%s healthcheck %q does not run %s", name, h.Test, tool)
	}
	if h.Interval == nil || h.Retries == nil || h.Timeout == nil {
		add("%s healthcheck lacks interval, timeout or retries", name)
	}
}

func checkPorts(add func(string, ...any), project *types.Project) {
	var got []string
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		for _, p := range project.Services[name].Ports {
			got = append(got, fmt.Sprintf("%s %s:%s->%d/%s", name, p.HostIP, p.Published, p.Target, p.Protocol))
		}
	}
	if !slices.Equal(got, wantPorts) {
		add("published ports are %q, want %q", got, wantPorts)
	}
}

// checkKafka requires one KRaft node whose container listener is what the
// foodpipe services are told (checkFoodpipe) and whose host listener is the
// published port.
func checkKafka(add func(string, ...any), s types.ServiceConfig) {
	want := map[string]string{
		"KAFKA_PROCESS_ROLES":             "broker,controller",
		"KAFKA_ADVERTISED_LISTENERS":      "INTERNAL://kafka:19092,EXTERNAL://127.0.0.1:9092",
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
	}
	for k, v := range want {
		if got := envValue(s, k); got != v {
			add("kafka %s is %q, want %q", k, got, v)
		}
	}
}

// checkFoodpipe requires that the service's command is a foodpipe command
// with flags foodpipe has, and that its FOODPIPE_* variables are settings
// foodpipe knows, with values it accepts: the command line and environment
// are parsed and loaded by foodpipe's own command tree and config loader.
func checkFoodpipe(t *testing.T, add func(string, ...any), project *types.Project, name string, s types.ServiceConfig) {
	t.Helper()
	if len(s.Entrypoint) > 0 {
		add("%s overrides the image's entrypoint (%q); its command must be foodpipe's arguments", name, s.Entrypoint)
	}
	known := map[string]bool{"FOODPIPE_CONFIG": true}
	for _, k := range config.Keys() {
		known[k.EnvVar()] = true
	}
	// Only this service's variables: every other FOODPIPE_* is emptied,
	// which foodpipe's loader treats as unset.
	for v := range known {
		t.Setenv(v, "")
	}
	for k, v := range s.Environment {
		if !strings.HasPrefix(k, "FOODPIPE_") {
			continue
		}
		if !known[k] {
			add("%s: %s is not a foodpipe setting", name, k)
			continue
		}
		if v != nil {
			t.Setenv(k, *v)
		}
	}

	want := wantCommands[name]
	if !slices.Equal(s.Command, want) {
		add("%s: command is %q, want %q", name, s.Command, want)
	}
	// The command path is the words before the first flag.
	path := want
	if i := slices.IndexFunc(want, func(w string) bool { return strings.HasPrefix(w, "-") }); i >= 0 {
		path = want[:i]
	}
	root := cmd.Command(&cmd.App{Stdout: io.Discard, Stderr: io.Discard})
	c, args, err := root.Find(s.Command)
	if err != nil || c.HasSubCommands() || c.CommandPath() != "foodpipe "+strings.Join(path, " ") {
		add("%s: %q is not a foodpipe command (want foodpipe %s)", name, s.Command, strings.Join(path, " "))
		return
	}
	if err := c.ParseFlags(args); err != nil {
		add("%s: %q: %v", name, s.Command, err)
		return
	}
	if err := c.ValidateArgs(c.Flags().Args()); err != nil {
		add("%s: %q: %v", name, s.Command, err)
		return
	}
	cfg, err := config.Load(c.Flags(), config.Options{})
	if err != nil {
		add("%s: %v", name, err)
		return
	}

	// The addresses must be the stores of this stack.
	if got, want := strings.Join(cfg.Kafka.Brokers, ","), "kafka:19092"; got != want {
		add("%s: FOODPIPE_BROKERS is %s, want %s (kafka's INTERNAL listener)", name, got, want)
	}
	if pg, ok := project.Services["postgres"]; ok {
		want := url.URL{Scheme: "postgres", User: url.UserPassword(envValue(pg, "POSTGRES_USER"), envValue(pg, "POSTGRES_PASSWORD")),
			Host: "postgres:5432", Path: "/" + envValue(pg, "POSTGRES_DB")}
		got, err := url.Parse(cfg.Postgres.DatabaseURL)
		if err != nil || got.Scheme != want.Scheme || got.User.String() != want.User.String() || got.Host != want.Host || got.Path != want.Path {
			add("%s: FOODPIPE_DATABASE_URL does not match the postgres service (want %s)", name, want.Redacted())
		}
	}
}

func envValue(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}
