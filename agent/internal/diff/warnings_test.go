package diff

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestPlanWarnsOfInsecureSkipVerify: a plan of a config with an upstream
// that skips certificate verification says so in text, markdown and JSON,
// whatever the change is about; a plan without one says nothing.
func TestPlanWarnsOfInsecureSkipVerify(t *testing.T) {
	t.Parallel()
	insecure := schemas.Upstream{Targets: []string{"https://10.0.0.1"}, TLS: &schemas.UpstreamTLS{InsecureSkipVerify: true}}
	verified := schemas.Upstream{Targets: []string{"https://10.0.0.2"}, TLS: &schemas.UpstreamTLS{CARef: &schemas.SecretRef{File: "/run/ca.pem"}}}
	const want = "upstream legacy has tls.insecureSkipVerify: the certificates of its targets are not verified"
	cases := []struct {
		name     string
		old, new *schemas.Config
		warn     bool
	}{
		{"created insecure", defaulted(schemas.Config{}), defaulted(schemas.Config{Upstreams: map[string]schemas.Upstream{"legacy": insecure}}), true},
		{"unrelated change keeps the warning", defaulted(schemas.Config{Upstreams: map[string]schemas.Upstream{"legacy": insecure}}),
			defaulted(schemas.Config{Upstreams: map[string]schemas.Upstream{"legacy": insecure}, Routes: map[string]schemas.Route{"web": route("a", be("legacy", 100))}}), true},
		{"verified upstream", defaulted(schemas.Config{}), defaulted(schemas.Config{Upstreams: map[string]schemas.Upstream{"secure": verified}}), false},
		{"turned off", defaulted(schemas.Config{Upstreams: map[string]schemas.Upstream{"legacy": insecure}}), defaulted(schemas.Config{Upstreams: map[string]schemas.Upstream{"legacy": verified}}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := Compute(tc.old, tc.new)
			js, err := p.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var j struct {
				Warnings []string `json:"warnings"`
			}
			if err := json.Unmarshal(js, &j); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{
				"text":     strings.Contains(p.Text(), "Warning: "+want+"."),
				"markdown": strings.Contains(p.Markdown(0), "> [!WARNING]\n> "+want+"."),
				"json":     slices.Equal(j.Warnings, []string{want}),
			}
			for where, ok := range got {
				if ok != tc.warn {
					t.Errorf("%s warns: %v, want %v\n%s\n%s", where, ok, tc.warn, p.Text(), js)
				}
			}
			if strings.Contains(p.Text(), "minVersion") {
				t.Errorf("the plan shows the default tls.minVersion:\n%s", p.Text())
			}
			if !tc.warn && strings.Contains(string(js), "warnings") {
				t.Errorf("JSON has a warnings key: %s", js)
			}
		})
	}
}
