package cmd

import (
	"context"
	"log/slog"

	"github.com/foodpipe/foodpipe/pkg/metrics"
)

// serveMetrics serves /metrics, /healthz and /readyz on addr, or does
// nothing when addr is empty: then it returns nil metrics (the roles run
// unobserved) and a stop that does nothing.
func serveMetrics(ctx context.Context, addr string, log *slog.Logger) (*metrics.Metrics, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	m := metrics.New()
	_, stop, err := m.Serve(ctx, addr, log)
	if err != nil {
		return nil, nil, err
	}
	return m, stop, nil
}
