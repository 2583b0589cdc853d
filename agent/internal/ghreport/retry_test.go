package ghreport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	resp := func(code int, h map[string]string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}, Request: &http.Request{Method: "POST"}}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	thirty := 30 * time.Second
	tests := []struct {
		name     string
		err      error
		kind     retryKind
		min, max time.Duration
	}{
		{"primary rate limit waits for reset", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: now.Add(thirty)}}, Response: resp(403, nil)}, retryRateLimit, 31 * time.Second, 31 * time.Second},
		{"secondary rate limit honors Retry-After", &github.AbuseRateLimitError{RetryAfter: &thirty, Response: resp(403, nil)}, retryRateLimit, thirty, thirty},
		{"secondary rate limit without Retry-After", &github.AbuseRateLimitError{Response: resp(403, nil)}, retryRateLimit, time.Minute, time.Minute},
		{"429 Retry-After seconds", &github.ErrorResponse{Response: resp(429, map[string]string{"Retry-After": "7"})}, retryRateLimit, 7 * time.Second, 7 * time.Second},
		{"429 Retry-After date", &github.ErrorResponse{Response: resp(429, map[string]string{"Retry-After": now.Add(9 * time.Second).UTC().Format(http.TimeFormat)})}, retryRateLimit, 9 * time.Second, 9 * time.Second},
		{"429 X-RateLimit-Reset", &github.ErrorResponse{Response: resp(429, map[string]string{"X-RateLimit-Reset": strconv.FormatInt(now.Add(4*time.Second).Unix(), 10)})}, retryRateLimit, 5 * time.Second, 5 * time.Second},
		{"502 backs off with jitter (attempt 3)", &github.ErrorResponse{Response: resp(502, nil)}, retryTransient, 200 * time.Millisecond, 400 * time.Millisecond},
		{"wrapped 500", fmt.Errorf("posting: %w", &github.ErrorResponse{Response: resp(500, nil)}), retryTransient, 200 * time.Millisecond, 400 * time.Millisecond},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), retryTransient, 200 * time.Millisecond, 400 * time.Millisecond},
		{"422 is final", &github.ErrorResponse{Response: resp(422, nil)}, retryNever, 0, 0},
		{"403 without rate limit is final", &github.ErrorResponse{Response: resp(403, nil)}, retryNever, 0, 0},
		{"other error is final", errors.New("boom"), retryNever, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, wait := classify(tc.err, 3, 100*time.Millisecond, now)
			if kind != tc.kind || wait < tc.min || wait > tc.max {
				t.Errorf("classify = %v, %v; want %v in [%v, %v]", kind, wait, tc.kind, tc.min, tc.max)
			}
		})
	}
	if d := backoff(50, time.Second); d > maxBackoff || d < maxBackoff/2 {
		t.Errorf("backoff(50) = %v, want capped near %v", d, maxBackoff)
	}
}

func TestRetriesAgainstGitHub(t *testing.T) {
	t.Parallel()
	serverError := func(w http.ResponseWriter) {
		writeJSON(w, http.StatusBadGateway, map[string]any{"message": "Server Error"})
	}
	tests := []struct {
		name      string
		realSleep bool // go-github itself refuses requests until a reset it saw
		timeout   time.Duration
		answer    func(n int, w http.ResponseWriter, r *http.Request) bool // n: 1-based status request count
		wantReqs  int
		wantErr   string
		wantWaits func(t *testing.T, waits []time.Duration)
	}{
		{
			name: "5xx twice then success",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) bool {
				if n <= 2 {
					serverError(w)
					return true
				}
				return false
			},
			wantReqs: 3,
			wantWaits: func(t *testing.T, w []time.Duration) {
				if len(w) != 2 || w[0] > time.Millisecond || w[1] > 2*time.Millisecond || w[1] < time.Millisecond {
					t.Errorf("waits %v: want two growing jittered backoffs", w)
				}
			},
		},
		{
			name:     "5xx forever gives up after the attempts allowed",
			answer:   func(_ int, w http.ResponseWriter, _ *http.Request) bool { serverError(w); return true },
			wantReqs: 4,
			wantErr:  "giving up after 4 attempts",
		},
		{
			name:      "403 rate limited: wait until X-RateLimit-Reset",
			realSleep: true,
			answer: func(n int, w http.ResponseWriter, _ *http.Request) bool {
				if n == 1 {
					rateLimited(w, time.Now().Add(time.Second))
					return true
				}
				return false
			},
			wantReqs: 2,
			wantWaits: func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] <= 0 || w[0] > 2*time.Second+100*time.Millisecond {
					t.Errorf("waits %v: want one wait until the reset", w)
				}
			},
		},
		{
			name:      "secondary rate limit: wait Retry-After",
			realSleep: true,
			answer: func(n int, w http.ResponseWriter, _ *http.Request) bool {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					writeJSON(w, http.StatusForbidden, map[string]any{
						"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
						"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
					})
					return true
				}
				return false
			},
			wantReqs: 2,
			wantWaits: func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] <= 0 || w[0] > time.Second {
					t.Errorf("waits %v: want one wait of at most Retry-After", w)
				}
			},
		},
		{
			name: "429: wait Retry-After",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) bool {
				if n == 1 {
					w.Header().Set("Retry-After", "3")
					writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "Too Many Requests"})
					return true
				}
				return false
			},
			wantReqs: 2,
			wantWaits: func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] != 3*time.Second {
					t.Errorf("waits %v, want [3s]", w)
				}
			},
		},
		{
			name: "rate limit reset beyond the allowed wait fails at once",
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				rateLimited(w, time.Now().Add(time.Hour))
				return true
			},
			wantReqs: 1,
			wantErr:  "longer than the 10m0s allowed",
		},
		{
			name:    "slow answer times out, then succeeds",
			timeout: 100 * time.Millisecond,
			answer: func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n == 1 {
					<-r.Context().Done() // hang until the client gives up
					return true
				}
				return false
			},
			wantReqs: 2,
		},
		{
			name: "422 is not retried",
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "Status", "code": "custom", "field": "state"}}})
				return true
			},
			wantReqs: 1,
			wantErr:  "422 Validation Failed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGitHub(t)
			var n atomic.Int32
			f.setIntercept(func(w http.ResponseWriter, r *http.Request, rec recorded) bool {
				return tc.answer(int(n.Add(1)), w, r)
			})
			r, rec := newTestReporter(t, f, validEval, func(o *Options) {
				if tc.timeout > 0 {
					o.RequestTimeout = tc.timeout
				}
			})
			rec.real = tc.realSleep
			err := r.postStatus(context.Background(), shaA, ContextDeploy, "success", "live as v1")
			if got := len(f.requests("POST " + p + "/statuses/")); got != tc.wantReqs {
				t.Errorf("requests = %d, want %d", got, tc.wantReqs)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error = %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if tc.wantWaits != nil {
				tc.wantWaits(t, rec.all())
			}
		})
	}
}

func TestCommentCreateFailingAmbiguouslyIsNotDuplicated(t *testing.T) {
	t.Parallel()
	f := newFakeGitHub(t)
	var creates atomic.Int32
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, rec recorded) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/issues/9/comments") && creates.Add(1) == 1 {
			f.addComment(9, rec.Body["body"].(string))                                     // GitHub stored it...
			writeJSON(w, http.StatusBadGateway, map[string]any{"message": "Server Error"}) // ...but answered 502
			return true
		}
		return false
	})
	r, _ := newTestReporter(t, f, validEval, nil)
	if err := r.ReportPullRequest(context.Background(), PullRequest{Number: 9, HeadSHA: shaA, BaseRef: "main"}); err != nil {
		t.Fatal(err)
	}
	cs := f.commentsOf(9)
	if len(cs) != 1 {
		t.Fatalf("comments = %d, want 1", len(cs))
	}
	want := []string{"GET " + p + "/issues/9/comments", "POST " + p + "/issues/9/comments", "GET " + p + "/issues/9/comments", fmt.Sprintf("PATCH %s/issues/comments/%d", p, cs[0].ID)}
	var got []string
	for _, rq := range f.requests("") {
		if strings.Contains(rq.Path, "/issues/") {
			got = append(got, rq.String())
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("comment requests:\n got %q\nwant %q", got, want)
	}
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("120", "")
	f.Add("", "1800000000")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT", "")
	f.Add("-5", "-99999999999")
	f.Fuzz(func(t *testing.T, retry, reset string) {
		h := http.Header{}
		h.Set("Retry-After", retry)
		h.Set("X-RateLimit-Reset", reset)
		if d := retryAfter(h, time.Unix(1_800_000_000, 0)); d < 0 {
			t.Fatalf("negative wait %v for Retry-After %q, reset %q", d, retry, reset)
		}
	})
}
