package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Handler serves /metrics, /healthz and /readyz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.gatherer(), promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", probe(m.Health.Live))
	mux.HandleFunc("GET /readyz", probe(m.Health.Ready))
	return mux
}

// probe answers 200 or 503 with a one-line reason.
func probe(check func() (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := check()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	}
}

// Serve listens on addr and serves Handler until ctx ends. It returns once
// listening (an address in use is an error at once) with the address
// bound, and stop, which shuts the server down.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) (bound string, stop func(), err error) {
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "addr", addr, "err", err)
		}
	}()
	log.Info("serving metrics", "addr", l.Addr().String(), "paths", "/metrics /healthz /readyz")
	return l.Addr().String(), func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}

// gatherer is what /metrics serves: the registry's series, with each gauge
// named like a counter ("_total") renamed without the suffix. franz-go's
// kprom names two gauges so (buffered_produce_records_total and
// buffered_fetch_records_total: records in the client's buffers now, which
// go down as well as up), and a rate() over them would mislead.
func (m *Metrics) gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		families, err := m.Registry.Gather()
		for _, f := range families {
			if f.GetType() == dto.MetricType_GAUGE {
				if name, ok := strings.CutSuffix(f.GetName(), "_total"); ok {
					f.Name = &name
				}
			}
		}
		return families, err
	})
}
