package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// TestObservationRecycledOnlyWhenQuiet: a request's Observation goes back
// to the pool only when nothing may still refer to it. A plain request on
// the direct path is recycled (that is the point); a request whose route
// timer fired, that ran a per-try timer, that went through ReverseProxy,
// whose client left while the upstream worked, or that streamed is not:
// a timer's callback, ReverseProxy's flush timer or the parent's late
// cancellation could otherwise reach the next request that takes it. A
// request that dialed a new upstream connection is not either (the dialer
// registers with its context).
func TestObservationRecycledOnlyWhenQuiet(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	tests := []struct {
		name       string
		route      schemas.Route
		noDirect   bool
		path       string
		leave      bool // the client's context ends while the upstream works
		recyclable bool
	}{
		{name: "plain request, direct path", path: "/", recyclable: true},
		{name: "route timeout fired", route: schemas.Route{Timeout: schemas.Duration(20 * time.Millisecond)}, path: "/slow"},
		{name: "per-try timer", route: schemas.Route{PerTryTimeout: schemas.Duration(time.Second)}, path: "/"},
		{name: "through ReverseProxy", noDirect: true, path: "/"},
		{name: "client left", path: "/slow", leave: true},
		{name: "event stream", path: "/events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.route
			r.Match = schemas.Match{Path: "/"}
			rt, fw := newDirectRoute(t, up.URL, r)
			fw.noDirect = tc.noDirect
			// A first request dials the upstream (the dialer registers
			// with the request's context: not recyclable); the measured
			// one reuses the connection, as a busy gateway does.
			warm := httptest.NewRequest(http.MethodGet, "http://gw.example/", nil)
			rt.ServeHTTP(httptest.NewRecorder(), warm)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.leave {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://gw.example"+tc.path, nil)
			ob := rt.opts.Observe(httptest.NewRecorder(), req)
			rt.ServeHTTP(ob, req)
			ob.End()
			if ob.recyclable != tc.recyclable {
				t.Fatalf("recyclable = %v, want %v", ob.recyclable, tc.recyclable)
			}
		})
	}
}
