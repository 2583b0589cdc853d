package admintest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/admintest"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

func bundle(t *testing.T, version, target string) *schemas.Bundle {
	t.Helper()
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"web": {Targets: []string{target}}},
		Routes: map[string]schemas.Route{"site": {
			Match:    schemas.Match{Path: "/"},
			Backends: []schemas.Backend{{Upstream: "web", Weight: 100}},
		}},
	}
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle(version, schemas.Source{Commit: version}, cfg, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGatewayRules: a client talking to admintest meets the gateway's own
// rules, including those of its compiler that a hand-written fake lacked.
func TestGatewayRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one := bundle(t, "v1", "http://127.0.0.1:9001")
	two := bundle(t, "v2", "http://127.0.0.1:9002")
	tampered := bundle(t, "v3", "http://127.0.0.1:9003")
	tampered.Digest = two.Digest
	badTarget := bundle(t, "v4", "ftp://127.0.0.1:21")
	tests := []struct {
		name    string
		b       *schemas.Bundle
		ifMatch string
		check   func(t *testing.T, a client.Applied, err error)
	}{
		{"first apply", one, "", func(t *testing.T, a client.Applied, err error) {
			if err != nil || a.Version != "v1" || a.Unchanged {
				t.Fatalf("Put = %+v, %v", a, err)
			}
		}},
		{"same digest is a no-op", one, "v1", func(t *testing.T, a client.Applied, err error) {
			if err != nil || !a.Unchanged {
				t.Fatalf("Put = %+v, %v; want unchanged", a, err)
			}
		}},
		{"stale If-Match is 412", two, "v0", func(t *testing.T, _ client.Applied, err error) {
			if !errors.Is(err, client.ErrPreconditionFailed) {
				t.Fatalf("err = %v, want ErrPreconditionFailed", err)
			}
		}},
		{"wrong digest is 422", tampered, "v1", func(t *testing.T, _ client.Applied, err error) {
			var rej *client.RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want a RejectedError", err)
			}
		}},
		{"target the compiler refuses is 422 with diagnostics", badTarget, "v1", func(t *testing.T, _ client.Applied, err error) {
			var rej *client.RejectedError
			if !errors.As(err, &rej) || len(rej.Diagnostics) == 0 {
				t.Fatalf("err = %v, want a RejectedError with diagnostics", err)
			}
		}},
		{"matching If-Match applies", two, "v1", func(t *testing.T, a client.Applied, err error) {
			if err != nil || a.Version != "v2" {
				t.Fatalf("Put = %+v, %v", a, err)
			}
		}},
	}
	gw := admintest.New(t)
	c := client.New(gw.Sock)
	defer c.Close()
	for _, tc := range tests { // in order: each step starts where the last left off
		t.Run(tc.name, func(t *testing.T) {
			a, err := c.Put(ctx, tc.b, tc.ifMatch)
			tc.check(t, a, err)
		})
	}
	st, err := c.Status(ctx)
	if err != nil || st.Version != "v2" || st.Digest != two.Digest {
		t.Fatalf("Status = %+v, %v; want v2", st, err)
	}
}

// TestStopRestartSet: the gateway goes down and comes back, restarts from a
// file, and is edited by hand.
func TestStopRestartSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := admintest.New(t)
	c := client.New(gw.Sock)
	defer c.Close()
	one, two := bundle(t, "v1", "http://127.0.0.1:9001"), bundle(t, "v2", "http://127.0.0.1:9002")
	gw.Set(one)
	gw.Stop()
	var te *client.TransportError
	if _, err := c.Status(ctx); !errors.As(err, &te) {
		t.Fatalf("Status while stopped: %v, want a TransportError", err)
	}
	gw.Start()
	if st, err := c.Status(ctx); err != nil || st.Version != "v1" {
		t.Fatalf("Status after Start = %+v, %v; want v1", st, err)
	}
	gw.Restart(two)
	if gw.Version() != "v2" {
		t.Fatalf("Version after Restart = %q, want v2", gw.Version())
	}
	gw.Restart(nil)
	if gw.Current() != nil {
		t.Fatal("a gateway restarted without a file runs a config")
	}
}
