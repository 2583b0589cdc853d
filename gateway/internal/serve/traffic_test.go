package serve

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
)

// TestStatusAndWatchCarryTraffic checks that the per-version traffic facts
// reach the admin client: live in GET /v1/status, and in the watch event of
// the next apply, with the replaced version's counts as previous.
func TestStatusAndWatchCarryTraffic(t *testing.T) {
	t.Parallel()
	up := upstream(t, "app")
	g := startGateway(t, "", nil)
	ctx := context.Background()
	if _, err := g.admin.Put(ctx, bundle(t, "v1", up.URL, "app"), ""); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := http.Get(g.data + "/x")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	st, err := g.admin.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tr := st.Traffic; tr == nil || tr.Current == nil || tr.Current.Version != "v1" ||
		tr.Current.Routes["all"].Backends["app"].Responses.Class2xx != 3 || len(tr.LatencyBoundsSeconds) == 0 {
		t.Fatalf("status traffic %+v: want v1 with 3 2xx on all/app", tr)
	}

	if _, err := g.admin.Put(ctx, bundle(t, "v2", up.URL+"/", "app"), ""); err != nil {
		t.Fatal(err)
	}
	state, changed, err := g.admin.Watch(ctx, "v1", 5*time.Second)
	if err != nil || !changed {
		t.Fatalf("watch: changed %v, %v", changed, err)
	}
	want := func(tr *client.TrafficReport) bool {
		return tr != nil && tr.Current != nil && tr.Current.Version == "v2" &&
			tr.Previous != nil && tr.Previous.Version == "v1" && tr.Previous.Total.Requests == 3 &&
			tr.Current.Routes == nil && tr.Previous.Routes == nil
	}
	if !want(state.Traffic) {
		t.Fatalf("watch state traffic %+v: want v2 current and v1's 3 requests as previous, totals only", state.Traffic)
	}
}
