package serve

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// TestRealEngineRefusals pushes bundles the real engine must refuse and
// checks the answer lists the problem and the running config is untouched.
func TestRealEngineRefusals(t *testing.T) {
	t.Parallel()
	up := upstream(t, "alpha")
	g := startGateway(t, t.TempDir(), nil)
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	ctx := context.Background()
	if _, err := g.admin.Put(ctx, bundle(t, "good", up.URL, "app"), ""); err != nil {
		t.Fatal(err)
	}
	edit := func(version string, f func(*schemas.Config)) *schemas.Bundle {
		b := bundle(t, version, up.URL, "app")
		f(&b.Config)
		nb, err := schemas.NewBundle(version, b.Source, b.Config, b.CreatedAt)
		if err != nil {
			t.Fatal(err)
		}
		return nb
	}
	tests := []struct {
		name string
		b    *schemas.Bundle
	}{
		{name: "unknown upstream", b: bundle(t, "b1", up.URL, "missing")},
		{name: "regex that does not compile", b: edit("b2", func(c *schemas.Config) {
			r := c.Routes["all"]
			r.Match = schemas.Match{Path: "/(unclosed", PathType: schemas.PathRegex}
			c.Routes["all"] = r
		})},
		{name: "upstream URL that is not http", b: edit("b3", func(c *schemas.Config) {
			c.Upstreams["app"] = schemas.Upstream{Targets: []string{"ftp://127.0.0.1:21"}}
		})},
		{name: "unknown policy", b: edit("b4", func(c *schemas.Config) {
			r := c.Routes["all"]
			r.Policies = []string{"nope"}
			c.Routes["all"] = r
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := g.admin.Put(ctx, tt.b, "")
			var re *client.RejectedError
			if !errors.As(err, &re) || re.Code != http.StatusUnprocessableEntity || len(re.Diagnostics) == 0 {
				t.Fatalf("got %v, want 422 with diagnostics", err)
			}
			st, err := g.admin.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != "good" || st.LastRejected == nil || st.LastRejected.Version != tt.b.Version {
				t.Fatalf("status after refusal: version %q, last rejected %+v", st.Version, st.LastRejected)
			}
			if code, body := fetch(t, g.data+"/"); code != 200 || body != "alpha" {
				t.Fatalf("data plane after refusal: %d %q", code, body)
			}
		})
	}
}
