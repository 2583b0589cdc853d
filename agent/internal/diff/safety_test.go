package diff

import (
	"reflect"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// TestComputeSafety: the top-level safety section is in the plan like any
// other change, a route's safety fields as fields of the route.
func TestComputeSafety(t *testing.T) {
	t.Parallel()
	web := route("a", be("s", 100))
	strict := web
	strict.Safety = &schemas.SafetyRule{ErrorRatio: 0.01}
	tests := []struct {
		name     string
		old, new *schemas.Config
		want     []Change
	}{
		{
			name: "section added lists only what differs from the defaults",
			old:  defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": web}}),
			new: defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": web},
				Safety: &schemas.Safety{BakeWindow: schemas.Duration(5 * time.Minute), SafetyRule: schemas.SafetyRule{Action: schemas.SafetyReport}}}),
			want: []Change{{Action: ActionCreate, Kind: KindSafety, Name: "safety", Fields: []Field{
				{Path: "action", New: "report"},
				{Path: "bakeWindow", New: "5m0s"},
			}}},
		},
		{
			name: "threshold changed",
			old:  defaulted(schemas.Config{Safety: &schemas.Safety{}}),
			new:  defaulted(schemas.Config{Safety: &schemas.Safety{SafetyRule: schemas.SafetyRule{ErrorRatio: 0.1}}}),
			want: []Change{{Action: ActionUpdate, Kind: KindSafety, Name: "safety", Fields: []Field{
				{Path: "errorRatio", Old: "0.05", New: "0.1"},
			}}},
		},
		{
			name: "section removed",
			old:  defaulted(schemas.Config{Safety: &schemas.Safety{}}),
			new:  defaulted(schemas.Config{}),
			want: []Change{{Action: ActionDelete, Kind: KindSafety, Name: "safety"}},
		},
		{
			name: "a route's own thresholds",
			old:  defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": web}}),
			new:  defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": strict}}),
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "safety.errorRatio", New: "0.01"},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Compute(tt.old, tt.new).Changes
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
