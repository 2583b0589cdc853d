package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// TestConcurrentRequestsKeepTheirOwnState: the gateway recycles a
// request's state when nothing can refer to it any more. Under concurrent
// load that mixes recycled requests with ones whose state must not be
// recycled (a route timeout that fires, a per-try timeout, a client that
// gives up) and with a hostile upstream (an answer that breaks off
// mid-body, one that is not HTTP, 103 Early Hints first), every answer
// carries its own request's body and X-Request-Id (the one its upstream
// saw), and no two answers share an id.
func TestConcurrentRequestsKeepTheirOwnState(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/cut/"), strings.HasPrefix(r.URL.Path, "/bad/"):
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			if strings.HasPrefix(r.URL.Path, "/cut/") {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			} else {
				_, _ = io.WriteString(c, "HTP/9 what\r\n\r\n")
			}
			_ = c.Close()
			return
		case strings.HasPrefix(r.URL.Path, "/hints/"):
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
		}
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			select {
			case <-time.After(60 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		_, _ = fmt.Fprintf(w, "%s %s", r.URL.Path, r.Header.Get("X-Request-Id"))
	}))
	t.Cleanup(up.Close)
	route := func(prefix string, timeout, perTry time.Duration) schemas.Route {
		return schemas.Route{
			Match:         schemas.Match{Path: prefix, PathType: schemas.PathPrefix},
			Backends:      []schemas.Backend{{Upstream: "app", Weight: 100}},
			Timeout:       schemas.Duration(timeout),
			PerTryTimeout: schemas.Duration(perTry),
		}
	}
	addr := serveConfig(t, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes: map[string]schemas.Route{
			"plain":  route("/p/", 0, 0),
			"hints":  route("/hints/", 0, 0),
			"bad":    route("/bad/", 0, 0),
			"cut":    route("/cut/", 0, 0),
			"timed":  route("/slow/", 20*time.Millisecond, 0),
			"pertry": route("/try/", 0, time.Second),
		},
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	var mu sync.Mutex
	seen := map[string]string{} // X-Request-Id -> request
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 120 {
				path := fmt.Sprintf("/p/%d/%d", g, i)
				switch i % 10 {
				case 1:
					path = fmt.Sprintf("/hints/%d/%d", g, i) // a 1xx before the answer
				case 5:
					path = fmt.Sprintf("/bad/%d/%d", g, i) // not HTTP: 502
				case 9:
					// The upstream breaks off mid-body: the client's
					// answer is cut, never whole.
					res, err := client.Get("http://" + addr + fmt.Sprintf("/cut/%d/%d", g, i))
					if err == nil {
						_, err = io.ReadAll(res.Body)
						_ = res.Body.Close()
					}
					if err == nil {
						t.Errorf("/cut/%d/%d: a cut-off answer read whole", g, i)
					}
					continue
				case 3:
					path = fmt.Sprintf("/slow/%d/%d", g, i) // the route timeout fires: 504
				case 6:
					path = fmt.Sprintf("/try/%d/%d", g, i) // a per-try timer runs
				case 8:
					// The client gives up before the answer.
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+fmt.Sprintf("/slow/%d/%d", g, i), nil)
					if res, err := client.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, res.Body)
						_ = res.Body.Close()
					}
					cancel()
					continue
				}
				res, err := client.Get("http://" + addr + path)
				if err != nil {
					t.Errorf("%s: %v", path, err)
					return
				}
				body, err := io.ReadAll(res.Body)
				_ = res.Body.Close()
				if err != nil {
					t.Errorf("%s: reading: %v", path, err)
					return
				}
				id := res.Header.Get("X-Request-Id")
				if id == "" {
					t.Errorf("%s: no X-Request-Id", path)
					return
				}
				mu.Lock()
				prior, dup := seen[id]
				seen[id] = path
				mu.Unlock()
				if dup {
					t.Errorf("%s: X-Request-Id %s was %s's too", path, id, prior)
				}
				switch {
				case strings.HasPrefix(path, "/slow/"):
					if res.StatusCode != http.StatusGatewayTimeout {
						t.Errorf("%s: status %d, want 504", path, res.StatusCode)
					}
				case strings.HasPrefix(path, "/bad/"):
					if res.StatusCode != http.StatusBadGateway {
						t.Errorf("%s: status %d, want 502", path, res.StatusCode)
					}
				case res.StatusCode != http.StatusOK || string(body) != path+" "+id:
					t.Errorf("%s: status %d, body %q, want %q (the answer's X-Request-Id with its own path)", path, res.StatusCode, body, path+" "+id)
				}
			}
		})
	}
	wg.Wait()
}
