package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
)

// retry runs f until it succeeds, ctx ends or it fails permanently (then
// the whole run fails with that error), waiting with capped exponential
// backoff and jitter between attempts and logging every failed one.
func (c *consumer) retry(ctx context.Context, what string, f func(context.Context) error) error {
	attempts, err := retryLoop(ctx, c.log, c.opts.RetryMin, c.opts.RetryMax, what, f, func(err error) {
		c.obs.Retrying(what, err)
		c.setOutage(outageReason(what, err))
	})
	switch {
	case err == nil && attempts > 1:
		c.setOutage("")
	case errors.Is(err, ErrPermanent):
		c.fail(err)
	}
	return err
}

// retryLoop runs f until it succeeds, ctx ends or it fails permanently
// (ErrPermanent, returned as "what: …"), waiting backoff(lo, hi) between
// attempts and logging each failed one, which failed hears of too. It
// returns how many attempts it made.
func retryLoop(ctx context.Context, log *slog.Logger, lo, hi time.Duration, what string,
	f func(context.Context) error, failed func(error)) (int, error) {
	for attempt := 0; ; attempt++ {
		err := f(ctx)
		switch {
		case err == nil:
			return attempt + 1, nil
		case ctx.Err() != nil:
			return attempt + 1, context.Cause(ctx)
		case errors.Is(err, ErrPermanent):
			return attempt + 1, fmt.Errorf("%s: %w", what, err)
		}
		d := backoff(attempt, lo, hi)
		log.Warn(what+" failed; retrying", "attempt", attempt+1, "retry_in", d.Round(time.Millisecond).String(), "err", err)
		if failed != nil {
			failed(err)
		}
		if err := sleep(ctx, d); err != nil {
			return attempt + 1, err
		}
	}
}

// outageReason is the one line readiness gives while what fails with err
// and is retried.
func outageReason(what string, err error) string {
	return fmt.Sprintf("%s failing (%s): retrying", what, oneLine(err))
}

// oneLine is err's text on one line, for a readiness reason.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// backoff is the wait before retry attempt+1: lo doubled per attempt, up to
// hi, plus up to half again as jitter (never beyond hi), so that consumers
// hitting the same outage do not retry in lockstep. The first wait is
// lo–1.5·lo; no wait exceeds hi.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if attempt < 30 {
		d = min(hi, lo<<attempt)
	}
	return min(hi, d+rand.N(d/2+1))
}
