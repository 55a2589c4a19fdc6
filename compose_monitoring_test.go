package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"go.yaml.in/yaml/v3"
)

// The monitoring profile: a pinned Prometheus that scrapes every producer
// and consumer replica on the port their FOODPIPE_METRICS_ADDR serves.

var prometheusImage = regexp.MustCompile(`^prom/prometheus:v\d+\.\d+\.\d+$`)

// prometheusConfig is the part of prometheus.yml the stack relies on.
type prometheusConfig struct {
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// monitoringProblems loads the compose file with the monitoring profile on
// and checks Prometheus and what it scrapes.
func monitoringProblems(t *testing.T, path, promConfig string) []string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs}, cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithEnv(nil),
		cli.WithProfiles([]string{"monitoring"}))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		return []string{"compose-go rejects the file: " + err.Error()}
	}
	var problems []string
	add := func(s string) { problems = append(problems, s) }
	prom, ok := project.Services["prometheus"]
	if !ok {
		return []string{"no prometheus service in the monitoring profile"}
	}
	if !slices.Equal(prom.Profiles, []string{"monitoring"}) {
		add("prometheus runs without the monitoring profile: " + strings.Join(prom.Profiles, ","))
	}
	if !prometheusImage.MatchString(prom.Image) {
		add("prometheus image " + prom.Image + " is not pinned to a version, want prom/prometheus:vX.Y.Z")
	}
	mounted := false
	for _, v := range prom.Volumes {
		mounted = mounted || v.Target == "/etc/prometheus/prometheus.yml" && v.Source == filepath.Join(filepath.Dir(abs), "deploy", "prometheus.yml")
	}
	if !mounted || !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		add("prometheus does not run with deploy/prometheus.yml")
	}
	if len(prom.Ports) != 1 || prom.Ports[0].HostIP != "127.0.0.1" || prom.Ports[0].Published != "9090" {
		add("prometheus is not published on 127.0.0.1:9090 only")
	}

	data, err := os.ReadFile(promConfig)
	if err != nil {
		t.Fatal(err)
	}
	var pc prometheusConfig
	if err := yaml.Unmarshal(data, &pc); err != nil {
		return append(problems, "prometheus.yml: "+err.Error())
	}
	scraped := map[string]bool{}
	for _, job := range pc.ScrapeConfigs {
		for _, sd := range job.DNSSDConfigs {
			for _, name := range sd.Names {
				s, ok := project.Services[name]
				if !ok {
					add("prometheus job " + job.JobName + " scrapes " + name + ", which is not a service")
					continue
				}
				_, port, err := net.SplitHostPort(envValue(s, "FOODPIPE_METRICS_ADDR"))
				if err != nil || port != itoa(sd.Port) {
					add("prometheus scrapes " + name + " on port " + itoa(sd.Port) + ", its FOODPIPE_METRICS_ADDR is " +
						envValue(s, "FOODPIPE_METRICS_ADDR"))
				}
				scraped[name] = true
			}
		}
	}
	for _, name := range []string{"consumer", "producer"} {
		if !scraped[name] {
			add("prometheus does not scrape " + name)
		}
	}
	return problems
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestComposeMonitoring(t *testing.T) {
	for _, p := range monitoringProblems(t, "docker-compose.yml", "deploy/prometheus.yml") {
		t.Error(p)
	}
}

func TestComposeMonitoringMutations(t *testing.T) {
	origCompose, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	origProm, err := os.ReadFile("deploy/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		compose, prom func(string) string
		want          string
	}{
		{"unchanged", nil, nil, ""},
		{"prometheus latest", func(s string) string {
			return strings.Replace(s, "prom/prometheus:v3.5.0", "prom/prometheus:latest", 1)
		}, nil,
			"not pinned"},
		{"prometheus always on", func(s string) string { return strings.Replace(s, "    profiles: [monitoring]\n", "", 1) }, nil,
			"without the monitoring profile"},
		{"metrics off", func(s string) string {
			return strings.Replace(s, `FOODPIPE_METRICS_ADDR: ":9464"`, `FOODPIPE_METRICS_ADDR: ""`, 1)
		}, nil,
			"its FOODPIPE_METRICS_ADDR is"},
		{"scrape port differs", nil, func(s string) string { return strings.Replace(s, "port: 9464", "port: 9100", 1) },
			"on port 9100"},
		{"consumer not scraped", nil, func(s string) string { return strings.Replace(s, "names: [consumer]", "names: [consumers]", 1) },
			"prometheus does not scrape consumer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			compose, prom := string(origCompose), string(origProm)
			if tt.compose != nil {
				compose = tt.compose(compose)
			}
			if tt.prom != nil {
				prom = tt.prom(prom)
			}
			if err := os.MkdirAll(filepath.Join(dir, "deploy"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(compose), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "deploy", "prometheus.yml"), []byte(prom), 0o644); err != nil {
				t.Fatal(err)
			}
			// The Dockerfile the build section names must exist for the loader.
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := monitoringProblems(t, filepath.Join(dir, "docker-compose.yml"), filepath.Join(dir, "deploy", "prometheus.yml"))
			if tt.want == "" {
				for _, p := range problems {
					t.Error(p)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("mutation not caught: no problem mentions %q; problems: %q", tt.want, problems)
		})
	}
}
