package ghreport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/google/go-github/v60/github"
)

// maxBackoff caps the delay between retries of a 5xx or a timeout.
const maxBackoff = 30 * time.Second

// defaultRateLimitWait is used when a rate-limited answer says nothing
// about when to come back.
const defaultRateLimitWait = time.Minute

// retryKind says how a failed request may be retried.
type retryKind int

const (
	retryNever     retryKind = iota // a 4xx that will not change: report it
	retryRateLimit                  // refused before processing: wait, then retry
	retryTransient                  // 5xx, timeout, network: may have been processed
)

// classify tells how err may be retried and how long to wait before the
// next attempt (attempt is 1-based, for exponential backoff).
func classify(err error, attempt int, base time.Duration, now time.Time) (retryKind, time.Duration) {
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		wait := defaultRateLimitWait
		if !rl.Rate.Reset.Time.IsZero() {
			wait = rl.Rate.Reset.Time.Sub(now) + time.Second // reset has 1s resolution
		}
		return retryRateLimit, max(wait, 0)
	}
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		if abuse.RetryAfter != nil {
			return retryRateLimit, max(*abuse.RetryAfter, 0)
		}
		return retryRateLimit, defaultRateLimitWait
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		switch code := er.Response.StatusCode; {
		case code == http.StatusTooManyRequests:
			return retryRateLimit, retryAfter(er.Response.Header, now)
		case code >= 500:
			return retryTransient, backoff(attempt, base)
		default:
			return retryNever, 0
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return retryTransient, backoff(attempt, base)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return retryTransient, backoff(attempt, base)
	}
	return retryNever, 0
}

// retryAfter reads Retry-After (seconds or an HTTP date), then
// X-RateLimit-Reset (epoch seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			const week = 7 * 24 * 3600 // beyond any real answer; avoids overflow
			return time.Duration(min(s, week)) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0)
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now)+time.Second, 0)
		}
	}
	return defaultRateLimitWait
}

// backoff is full-jitter exponential backoff: a random delay in
// [base*2^(attempt-1)/2, base*2^(attempt-1)], capped at maxBackoff.
func backoff(attempt int, base time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// call runs fn with a per-request timeout, retrying rate limits and, when
// idempotent, 5xx answers, timeouts and network errors, up to MaxAttempts.
// It returns fn's last error wrapped with op.
func (r *Reporter) call(ctx context.Context, op string, idempotent bool, fn func(ctx context.Context) (*github.Response, error)) error {
	var err error
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
		_, err = fn(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		kind, wait := classify(err, attempt, r.opts.BaseBackoff, time.Now())
		switch {
		case kind == retryNever, kind == retryTransient && !idempotent:
			return fmt.Errorf("%s: %w", op, err)
		case attempt >= r.opts.MaxAttempts:
			return fmt.Errorf("%s: giving up after %d attempts: %w", op, attempt, err)
		case kind == retryRateLimit && wait > r.opts.MaxRateLimitWait:
			return fmt.Errorf("%s: rate limited for %s, longer than the %s allowed: %w", op, wait.Round(time.Second), r.opts.MaxRateLimitWait, err)
		}
		ev := r.log.Info()
		if kind == retryRateLimit {
			ev = r.log.Warn()
		}
		ev.Str(logOp, op).Int(logAttempt, attempt).Dur(logWait, wait).Err(err).Msg("retrying GitHub request")
		if serr := r.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%s: %w", op, serr)
		}
	}
}

// isForbidden reports whether err is a refusal that no retry will change:
// a 403 that is not a rate limit (a read-only token, a fork's pull request,
// a personal token creating check runs), or a 404 (no access at all).
func isForbidden(err error) bool {
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &abuse) {
		return false
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		c := er.Response.StatusCode
		return c == http.StatusForbidden || c == http.StatusNotFound
	}
	return false
}

// isAmbiguous reports whether a write may have taken effect although it
// failed (a 5xx or a timeout after the request was sent).
func isAmbiguous(err error) bool {
	kind, _ := classify(err, 1, time.Millisecond, time.Now())
	return kind == retryTransient
}
