package proxy

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// The value list a set shares with every request stays as compiled,
// whatever a request's header does with it after: an add of the same
// name by the same ops, or an append by a later stage.
func TestHeaderOpsSetSharesNoGrowth(t *testing.T) {
	t.Parallel()
	ops := compileHeaderOps(&schemas.HeaderOps{
		Set: map[string]string{"x-env": "prod", "X-Tier": "gold"},
		Add: map[string]string{"X-Env": "extra"},
	}, "route", func(path, format string, args ...any) { t.Fatalf(format, args...) })
	for i := range 3 {
		h := http.Header{"X-Env": {"client"}, "X_env": {"alias"}}
		ops.apply(h)
		want := http.Header{"X-Env": {"prod", "extra"}, "X-Tier": {"gold"}}
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("request %d: header %v, want %v", i, h, want)
		}
		h["X-Tier"] = append(h["X-Tier"], "late") // a later stage adds
		h["X-Tier"][0] = "changed"                // or rewrites its copy
	}
}
