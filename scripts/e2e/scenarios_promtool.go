package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "r-monitoring-promtool",
		criterion: "with Debian's prometheus package (installed when promtool is missing): `promtool check rules` and " +
			"`promtool test rules` pass on examples/monitoring; every PromQL expression of the Grafana dashboard " +
			"parses (`promtool check rules` on them as recording rules); a real gateway (with --observe-addr) and " +
			"agent that applied c1 and c2, rolled back to c1 and rejected an invalid c3 serve /metrics that " +
			"`promtool check metrics` passes; every gitgate_* metric the rules and the dashboard name is one of " +
			"theirs; and every probe and PodMonitor path in examples/kubernetes answers 200 on the port it names",
		run: monitoringPromtool,
	})
}

// promtoolBinary is where Debian's prometheus package puts promtool.
const promtoolBinary = "/usr/bin/promtool"

func monitoringPromtool(ctx context.Context, t *T) error {
	promtool, err := ensurePromtool(ctx, t)
	if err != nil {
		return err
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	mon := filepath.Join(root, "examples", "monitoring")
	rulesFile := filepath.Join(mon, "gitgate-alerts.yaml")
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", filepath.Join(mon, "gitgate-alerts.test.yaml")},
	} {
		if err := runPromtool(ctx, promtool, nil, args...); err != nil {
			return err
		}
		t.Logf("promtool %s: ok", strings.Join(args[:2], " "))
	}
	ruleExprs, err := ruleExpressions(rulesFile)
	if err != nil {
		return err
	}
	dashExprs, err := dashboardExpressions(filepath.Join(mon, "gitgate-dashboard.json"))
	if err != nil {
		return err
	}
	// promtool parses PromQL only inside rules: check the dashboard's
	// queries as recording rules, Grafana's variables replaced.
	recFile := filepath.Join(t.dir, "dashboard-queries.yaml")
	if err := writeRecordingRules(recFile, dashExprs); err != nil {
		return err
	}
	if err := runPromtool(ctx, promtool, nil, "check", "rules", recFile); err != nil {
		return fmt.Errorf("the dashboard's queries: %w", err)
	}
	t.Logf("%d dashboard queries parse", len(dashExprs))

	exposed, err := scrapeStack(ctx, t, promtool, filepath.Join(root, "examples", "kubernetes"))
	if err != nil {
		return err
	}
	for _, src := range []struct {
		what  string
		exprs []string
	}{{"examples/monitoring/gitgate-alerts.yaml", ruleExprs}, {"examples/monitoring/gitgate-dashboard.json", dashExprs}} {
		if missing := unknownMetrics(src.exprs, exposed); len(missing) > 0 {
			return fmt.Errorf("%s names metrics that neither the gateway nor the agent serves: %s", src.what, strings.Join(missing, ", "))
		}
		t.Logf("%s: every gitgate_* metric named is served", src.what)
	}
	return nil
}

// ensurePromtool returns promtool's path, installing Debian's prometheus
// package when it is missing (root only; otherwise the scenario is skipped).
func ensurePromtool(ctx context.Context, t *T) (string, error) {
	return ensureTool(ctx, t, debianTool{name: "promtool", path: promtoolBinary, pkg: "prometheus"})
}

// runPromtool runs promtool with args (stdin: in, when not nil) and fails
// with its output when it exits non-zero.
func runPromtool(ctx context.Context, promtool string, in []byte, args ...string) error {
	cmd := exec.CommandContext(ctx, promtool, args...)
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// ruleExpressions returns the expr of every rule in a Prometheus rules file.
func ruleExpressions(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the alert rules: %w", err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Expr string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var exprs []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) == 0 {
		return nil, fmt.Errorf("%s: no rules", path)
	}
	return exprs, nil
}

// dashboardExpressions returns every PromQL query of a Grafana dashboard:
// each panel target's expr and each query variable's query.
func dashboardExpressions(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the dashboard: %w", err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				return nil, fmt.Errorf("%s: panel %q has an empty query", path, p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	// label_values(metric, label) is Grafana's, not PromQL: keep the metric.
	labelValues := regexp.MustCompile(`^label_values\(\s*([^,]+),\s*\w+\s*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			return nil, fmt.Errorf("%s: a variable's query: %w", path, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			return nil, fmt.Errorf("%s: variable query %q is not label_values(metric, label)", path, q.Query)
		}
		exprs = append(exprs, m[1])
	}
	if len(exprs) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return exprs, nil
}

// grafanaVars are the dashboard's variables and what stands in for them
// when promtool parses a query.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*")

// writeRecordingRules writes exprs as recording rules, one per query.
func writeRecordingRules(path string, exprs []string) error {
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	rules := make([]rule, len(exprs))
	for i, e := range exprs {
		rules[i] = rule{Record: fmt.Sprintf("gitgate_dashboard:query%d", i), Expr: grafanaVars.Replace(e)}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		return fmt.Errorf("rendering the dashboard queries: %w", err)
	}
	return os.WriteFile(path, out, 0o644)
}

// metricToken finds gitgate metric names in a PromQL expression. The
// names of recording rules (with a colon) are not metrics.
var metricToken = regexp.MustCompile(`\bgitgate_[a-zA-Z0-9_]*\b`)

// unknownMetrics returns the gitgate_* names in exprs that exposed lacks,
// sorted and without duplicates.
func unknownMetrics(exprs []string, exposed map[string]bool) []string {
	seen := map[string]bool{}
	var missing []string
	for _, e := range exprs {
		for _, name := range metricToken.FindAllString(e, -1) {
			if !exposed[name] && !seen[name] {
				seen[name] = true
				missing = append(missing, name)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// exposedNames returns the sample names (histogram _bucket, _sum and
// _count included) of a Prometheus text exposition.
func exposedNames(text string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// scrapeStack runs a gateway (with an observe address) and an agent through
// applies, a rollback and a rejected commit, checks both /metrics with
// `promtool check metrics`, checks examples/kubernetes's probe and scrape
// paths against them, and returns every sample name the two serve.
func scrapeStack(ctx context.Context, t *T, promtool, k8sDir string) (map[string]bool, error) {
	st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: t.dir})
	if err != nil {
		return nil, err
	}
	t.Cleanup(st.Close)
	observe, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	c1, err := t.commit(st, "c1")
	if err != nil {
		return nil, err
	}
	gw, err := harness.Start(t.dir, "gateway", append([]string{t.bins.Gateway}, append(st.GatewayArgs(), "--observe-addr", observe)...)...)
	if err != nil {
		return nil, err
	}
	st.Gateway = gw
	if err := harness.WaitFor(ctx, 15*time.Second, "the gateway's admin socket to answer", func() (bool, error) {
		if gw.Exited() {
			return false, fmt.Errorf("gateway exited: %v (see %s)", gw.Err(), gw.Log)
		}
		_, err := st.Admin.Status(ctx)
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	if err := st.StartAgent(ctx); err != nil {
		return nil, err
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return nil, err
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return nil, err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return nil, err
	}
	if _, err := st.CLI(ctx, "rollback", "--reason", "e2e"); err != nil { // to c1, the previous one
		return nil, err
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return nil, err
	}
	c3, err := st.Repo.WriteCommit("config.yaml", harness.InvalidYAML(t.upstream), "c3 invalid")
	if err != nil {
		return nil, err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return nil, err
	}
	if err := harness.WaitFor(ctx, 20*time.Second, "c3 to be rejected", func() (bool, error) {
		s, err := st.AgentStatus(ctx)
		return err == nil && s.LastAttempted == c3 && s.LastResult == "rejected", nil
	}); err != nil {
		return nil, err
	}

	// The ports the containers of examples/kubernetes name, here.
	ports := map[string]map[string]string{
		"gateway": {"http": st.GatewayAddr, "observe": observe},
		"agent":   {"webhook": st.HookAddr},
	}
	exposed := map[string]bool{}
	for _, target := range []struct{ name, addr string }{{"gateway", observe}, {"agent", st.HookAddr}} {
		code, body, err := httpGet(ctx, "http://"+target.addr+"/metrics")
		if err != nil || code != http.StatusOK {
			return nil, fmt.Errorf("the %s's /metrics: %d %v", target.name, code, err)
		}
		if err := runPromtool(ctx, promtool, []byte(body), "check", "metrics"); err != nil {
			return nil, fmt.Errorf("the %s's /metrics: %w", target.name, err)
		}
		names := exposedNames(body)
		for n := range names {
			exposed[n] = true
		}
		t.Logf("the %s's /metrics (%d sample names) passes promtool check metrics", target.name, len(names))
	}
	_, agentMetrics, _ := httpGet(ctx, "http://"+st.HookAddr+"/metrics")
	for _, line := range []string{`gitgate_agent_desired_info{mode="pinned",version="` + c1 + `"} 1`, "gitgate_agent_head_rejected 1"} {
		if !slices.Contains(strings.Split(agentMetrics, "\n"), line) {
			return nil, fmt.Errorf("the agent's /metrics lack %q after the rollback to c1 and the rejection of c3", line)
		}
	}
	if err := checkK8sPaths(ctx, t, k8sDir, ports); err != nil {
		return nil, err
	}
	return exposed, nil
}

// checkK8sPaths GETs every httpGet probe path and PodMonitor path of
// examples/kubernetes on the running process whose port it names, and
// wants 200.
func checkK8sPaths(ctx context.Context, t *T, dir string, ports map[string]map[string]string) error {
	type probe struct {
		HTTPGet *struct {
			Path string `json:"path"`
			Port string `json:"port"`
		} `json:"httpGet"`
	}
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name           string `json:"name"`
						ReadinessProbe *probe `json:"readinessProbe"`
						LivenessProbe  *probe `json:"livenessProbe"`
						StartupProbe   *probe `json:"startupProbe"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	var pm struct {
		Spec struct {
			PodMetricsEndpoints []struct {
				Port string `json:"port"`
				Path string `json:"path"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	for file, v := range map[string]any{"deployment.yaml": &dep, "podmonitor.yaml": &pm} {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("examples/kubernetes/%s: %w", file, err)
		}
	}
	get := func(what, container, port, path string) error {
		addr, ok := ports[container][port]
		if !ok {
			return fmt.Errorf("examples/kubernetes: %s names port %q of container %q, which the %s binary does not serve here", what, port, container, container)
		}
		code, _, err := httpGet(ctx, "http://"+addr+path)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("examples/kubernetes: %s GET %s on %s's %s port: %d %v", what, path, container, port, code, err)
		}
		t.Logf("examples/kubernetes: %s %s on %s port %s: 200", container, what, path, port)
		return nil
	}
	n := 0
	for _, c := range dep.Spec.Template.Spec.Containers {
		for what, p := range map[string]*probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
			if p == nil || p.HTTPGet == nil {
				continue
			}
			if err := get(what, c.Name, p.HTTPGet.Port, p.HTTPGet.Path); err != nil {
				return err
			}
			n++
		}
	}
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		container := ""
		for name, named := range ports {
			if _, ok := named[ep.Port]; ok {
				container = name
			}
		}
		if err := get("PodMonitor endpoint", container, ep.Port, ep.Path); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("examples/kubernetes: no httpGet probe or PodMonitor endpoint found")
	}
	return nil
}

// httpGet returns the status and up to 4 MiB of the body of GET url.
func httpGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}
