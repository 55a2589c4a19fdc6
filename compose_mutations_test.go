package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeMutation breaks docker-compose.yml, as yaml, in one way; want is
// part of the problem composeProblems must report, "" for none at all.
type composeMutation struct {
	name   string
	mutate func(m map[string]any)
	want   string
}

// TestComposeMutations breaks docker-compose.yml in the ways that matter,
// one at a time, and requires composeProblems to notice each.
func TestComposeMutations(t *testing.T) {
	orig, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range slices.Concat(imageMutations, startOrderMutations, commandMutations, settingMutations) {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := yaml.Unmarshal(orig, &m); err != nil {
				t.Fatal(err)
			}
			tt.mutate(m)
			out, err := yaml.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "docker-compose.yml")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			checkCaught(t, composeProblems(t, path), tt.want)
		})
	}
}

func svcOf(m map[string]any, name string) map[string]any {
	return m["services"].(map[string]any)[name].(map[string]any)
}

func envOf(m map[string]any, name string) map[string]any {
	return svcOf(m, name)["environment"].(map[string]any)
}

func depOf(m map[string]any, name, on string) map[string]any {
	return svcOf(m, name)["depends_on"].(map[string]any)[on].(map[string]any)
}

// imageMutations unpin or replace the images and take the stores' health checks away.
var imageMutations = []composeMutation{
	// The round trip through yaml alone changes nothing that matters,
	// so every problem below comes from its mutation.
	{"unchanged", func(map[string]any) {}, ""},
	{"kafka image latest", func(m map[string]any) { svcOf(m, "kafka")["image"] = "apache/kafka:latest" }, "not pinned"},
	{"kafka image without a tag", func(m map[string]any) { svcOf(m, "kafka")["image"] = "apache/kafka" }, "not pinned"},
	{"kafka another version", func(m map[string]any) { svcOf(m, "kafka")["image"] = "apache/kafka:4.0.0" }, "want apache/kafka:4.1.1"},
	{"postgres 16", func(m map[string]any) { svcOf(m, "postgres")["image"] = "postgres:16.4" }, "want postgres:15.<minor>"},
	{"postgres major only", func(m map[string]any) { svcOf(m, "postgres")["image"] = "postgres:15" }, "want postgres:15.<minor>"},
	{"foodpipe image latest", func(m map[string]any) { svcOf(m, "consumer")["image"] = "foodpipe:latest" }, "not pinned"},
	{"foodpipe image pulled", func(m map[string]any) { delete(svcOf(m, "producer"), "pull_policy") }, "producer is not built from this clone"},
	{"kafka healthcheck removed", func(m map[string]any) { delete(svcOf(m, "kafka"), "healthcheck") }, "kafka has no healthcheck"},
	{"postgres healthcheck removed", func(m map[string]any) { delete(svcOf(m, "postgres"), "healthcheck") }, "postgres has no healthcheck"},
	{"postgres healthcheck disabled", func(m map[string]any) {
		svcOf(m, "postgres")["healthcheck"] = map[string]any{"disable": true}
	}, "postgres has no healthcheck"},
}

// startOrderMutations change the services, their replicas and the order they start in.
var startOrderMutations = []composeMutation{
	{"healthy condition removed", func(m map[string]any) { delete(depOf(m, "consumer", "postgres"), "condition") },
		"depends_on.postgres missing property 'condition'"}, // the loader's schema catches this one
	{"short depends_on without conditions", func(m map[string]any) {
		svcOf(m, "consumer")["depends_on"] = []any{"kafka", "postgres", "init-topics", "init-db"}
	}, `consumer depends on postgres with "service_started", want "service_healthy"`},
	{"completed condition weakened", func(m map[string]any) { depOf(m, "producer", "init-db")["condition"] = "service_started" },
		`producer depends on init-db with "service_started", want "service_completed_successfully"`},
	{"dependency removed", func(m map[string]any) { delete(svcOf(m, "init-db")["depends_on"].(map[string]any), "init-topics") },
		"init-db does not depend on init-topics"},
	{"service missing", func(m map[string]any) { delete(m["services"].(map[string]any), "producer") }, "services are"},
	{"depended-on service missing", func(m map[string]any) { delete(m["services"].(map[string]any), "init-topics") },
		`depends on undefined service "init-topics"`},
	{"two consumers", func(m map[string]any) { svcOf(m, "consumer")["deploy"] = map[string]any{"replicas": 2} },
		"consumer runs 2 replicas, want 3"},
}

// commandMutations change the foodpipe commands, which must be the stack's
// argument for argument and parse with foodpipe's own command tree.
var commandMutations = []composeMutation{
	{"unknown flag", func(m map[string]any) { svcOf(m, "producer")["command"] = []any{"produce", "--rat", "10"} },
		"unknown flag: --rat"},
	{"flag of another command", func(m map[string]any) { svcOf(m, "consumer")["command"] = []any{"consume", "--rate", "10"} },
		"unknown flag: --rate"},
	{"unknown command", func(m map[string]any) { svcOf(m, "init-topics")["command"] = []any{"topics", "nuke"} },
		"not a foodpipe command"},
	{"group without subcommand", func(m map[string]any) { svcOf(m, "init-db")["command"] = []any{"db"} },
		"not a foodpipe command"},
	{"flag value of the wrong type", func(m map[string]any) { svcOf(m, "producer")["command"] = []any{"produce", "--rate", "ten"} },
		`invalid argument "ten"`},
	{"flag value out of range", func(m map[string]any) { svcOf(m, "producer")["command"] = []any{"produce", "--rate", "-1"} },
		"invalid rate -1"},
	{"consumers in another group", func(m map[string]any) { svcOf(m, "consumer")["command"] = []any{"consume", "--group", "other"} },
		`consumer: command is ["consume" "--group" "other"], want ["consume" "--group" "orders"]`},
	{"producer at another rate", func(m map[string]any) { svcOf(m, "producer")["command"] = []any{"produce", "--rate", "20"} },
		`producer: command is ["produce" "--rate" "20"], want ["produce" "--rate" "10"]`},
	{"producer flag dropped", func(m map[string]any) { svcOf(m, "producer")["command"] = []any{"produce"} },
		`producer: command is ["produce"]`},
}

// settingMutations change FOODPIPE_* variables, Kafka's settings and the
// published ports.
var settingMutations = []composeMutation{
	{"unknown variable", func(m map[string]any) { envOf(m, "consumer")["FOODPIPE_BROKER"] = "kafka:19092" },
		"FOODPIPE_BROKER is not a foodpipe setting"},
	{"bad variable value", func(m map[string]any) { envOf(m, "producer")["FOODPIPE_KAFKA_TIMEOUT"] = "soon" },
		`invalid kafka-timeout "soon"`},
	{"brokers not the internal listener", func(m map[string]any) { envOf(m, "consumer")["FOODPIPE_BROKERS"] = "localhost:9092" },
		"FOODPIPE_BROKERS is localhost:9092"},
	{"database url with another password", func(m map[string]any) {
		envOf(m, "init-db")["FOODPIPE_DATABASE_URL"] = "postgres://foodpipe:secret@postgres:5432/foodpipe"
	}, "FOODPIPE_DATABASE_URL does not match"},
	{"extra port", func(m map[string]any) { svcOf(m, "producer")["ports"] = []any{"8080:8080"} }, "published ports"},
	{"postgres on every interface", func(m map[string]any) { svcOf(m, "postgres")["ports"] = []any{"5432:5432"} }, "published ports"},
	{"host listener advertised as localhost", func(m map[string]any) {
		envOf(m, "kafka")["KAFKA_ADVERTISED_LISTENERS"] = "INTERNAL://kafka:19092,EXTERNAL://localhost:9092"
	}, "KAFKA_ADVERTISED_LISTENERS"},
	{"auto topic creation", func(m map[string]any) { envOf(m, "kafka")["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] = "true" },
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE"},
}
