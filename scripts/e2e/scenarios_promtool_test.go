package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMonitoringExamplesNameMetrics reads the real rules and dashboard: each
// names gitgate metrics, and a name that no binary serves is reported.
func TestMonitoringExamplesNameMetrics(t *testing.T) {
	t.Parallel()
	rules, err := ruleExpressions("../../examples/monitoring/gitgate-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dash, err := dashboardExpressions("../../examples/monitoring/gitgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	exposition := `# HELP gitgate_config_info x
# TYPE gitgate_config_info gauge
gitgate_config_info{digest="d",version="v"} 1
gitgate_agent_push_to_apply_seconds_bucket{le="0.005"} 0
go_goroutines 7
`
	exposed := exposedNames(exposition)
	if want := map[string]bool{"gitgate_config_info": true, "gitgate_agent_push_to_apply_seconds_bucket": true, "go_goroutines": true}; !reflect.DeepEqual(exposed, want) {
		t.Fatalf("exposedNames = %v, want %v", exposed, want)
	}
	tests := []struct {
		name    string
		exprs   []string
		exposed map[string]bool
		want    []string
	}{
		{"rules name gitgate metrics", rules, map[string]bool{}, nil},
		{"dashboard names gitgate metrics", dash, map[string]bool{}, nil},
		{"a name not served is reported once", []string{`rate(gitgate_nope_total[5m]) / gitgate_nope_total`, `gitgate_config_info`}, exposed, []string{"gitgate_nope_total"}},
		{"recording rule names are not metrics", []string{`gitgate:fleet_versions > 1`}, exposed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := unknownMetrics(tt.exprs, tt.exposed)
			if tt.want == nil && len(tt.exposed) == 0 {
				// With nothing exposed, every gitgate name is unknown:
				// the file must name some.
				if len(got) == 0 {
					t.Fatal("no gitgate_* metric named")
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("unknownMetrics = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDashboardExpressionsRefusesEmptyPanels: a panel without a query is an
// error, so a broken export does not pass the name check by having none.
func TestDashboardExpressionsRefusesEmptyPanels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json string
	}{
		{"panel without targets", `{"panels":[{"title":"x"}]}`},
		{"empty expr", `{"panels":[{"title":"x","targets":[{"expr":" "}]}]}`},
		{"no panels", `{"panels":[]}`},
		{"variable that is not label_values", `{"panels":[{"title":"x","targets":[{"expr":"up"}]}],"templating":{"list":[{"type":"query","query":{"query":"up"}}]}}`},
		{"not JSON", `{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "d.json")
			if err := os.WriteFile(p, []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := dashboardExpressions(p); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
