package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRunFlagsTable: one table drives the flags and agent.yaml; every flag
// name and agent.yaml key of earlier releases is kept, and every runConfig
// field is set by exactly one entry.
func TestRunFlagsTable(t *testing.T) {
	t.Parallel()
	want := []struct{ flag, key string }{
		{"repo", "repo"},
		{"branch", "branch"},
		{"path", "path"},
		{"gateway-socket", "gatewaySocket"},
		{"state-dir", "stateDir"},
		{"control-socket", "controlSocket"},
		{"webhook-addr", "webhookAddr"},
		{"webhook-repo", "webhookRepo"},
		{"webhook-max-body-bytes", "webhookMaxBodyBytes"},
		{"poll-interval", "pollInterval"},
		{"heal-interval", "healInterval"},
		{"webhook-secret-file", "webhookSecretFile"},
		{"git-max-fetch-bytes", "gitMaxFetchBytes"},
		{"git-token-file", "gitTokenFile"},
		{"ssh-key-file", "sshKeyFile"},
		{"push-token-file", "pushTokenFile"},
		{"push-ssh-key-file", "pushSSHKeyFile"},
		{"known-hosts-file", "knownHostsFile"},
		{"verify-signatures", "verifySignatures"},
		{"trusted-keys", "trustedKeys"},
		{"keep-bundles", "keepBundles"},
		{"log-level", "logLevel"},
		{"github-repo", "githubRepo"},
		{"github-token-file", "githubTokenFile"},
		{"github-url", "githubURL"},
		{"github-app-id", "githubAppID"},
		{"github-installation-id", "githubInstallationID"},
		{"github-app-key-file", "githubAppKeyFile"},
		{"github-deploy-status", "githubDeployStatus"},
		{"github-deployments", "githubDeployments"},
		{"github-environment", "githubEnvironment"},
		{"github-pr-max-storage-bytes", "githubPRMaxStorageBytes"},
		{"eval-timeout", "evalTimeout"},
		{"eval-memory", "evalMemory"},
		{"peers", "peers"},
	}
	flags := runFlags()
	if len(flags) != len(want) {
		t.Fatalf("%d settings, want %d", len(flags), len(want))
	}
	for i, w := range want {
		if flags[i].name != w.flag || flags[i].key != w.key {
			t.Errorf("setting %d is --%s / %s, want --%s / %s", i, flags[i].name, flags[i].key, w.flag, w.key)
		}
		if flags[i].help == "" {
			t.Errorf("--%s has no help", flags[i].name)
		}
	}
	var c runConfig
	base := reflect.ValueOf(&c).Elem()
	set := map[string]string{}
	for _, f := range flags {
		p := reflect.ValueOf(f.target(&c))
		if reflect.TypeOf(f.def) != p.Type().Elem() {
			t.Errorf("--%s: default of type %T for a %s field", f.name, f.def, p.Type().Elem())
		}
		for i := 0; i < base.NumField(); i++ {
			if base.Field(i).Addr().Pointer() == p.Pointer() {
				name := base.Type().Field(i).Name
				if prev, dup := set[name]; dup {
					t.Errorf("field %s is set by --%s and --%s", name, prev, f.name)
				}
				set[name] = f.name
			}
		}
	}
	for i := 0; i < base.NumField(); i++ {
		if name := base.Type().Field(i).Name; set[name] == "" && yamlOnlyFields[name] == "" { // yamlOnlyFields: issue 16
			t.Errorf("field %s has no flag", name)
		}
	}
}

// TestAgentYAMLKeys: agent.yaml keys are read into their fields by type,
// and a value of the wrong type or a key the table lacks is refused naming
// the key.
func TestAgentYAMLKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const required = "repo: x\ngatewaySocket: /run/gw.sock\nstateDir: /var/lib/agent\n"
	tests := []struct {
		name    string
		yaml    string
		check   func(c runConfig) bool
		wantErr string
	}{
		{name: "int", yaml: required + "keepBundles: 7\n", check: func(c runConfig) bool { return c.KeepBundles == 7 }},
		{name: "int64", yaml: required + "githubAppID: 12345678901\n", check: func(c runConfig) bool { return c.GitHubAppID == 12345678901 }},
		{name: "bool", yaml: required + "githubDeployments: true\n", check: func(c runConfig) bool { return c.GitHubDeployments }},
		{name: "string", yaml: required + "webhookRepo: acme/config\n", check: func(c runConfig) bool { return c.WebhookRepo == "acme/config" }},
		{name: "defaults stay", yaml: required, check: func(c runConfig) bool { return c.KeepBundles == 100 && c.Branch == "main" }},
		{name: "wrong type", yaml: required + "keepBundles: many\n", wantErr: `field "keepBundles"`},
		{name: "flag name is not a key", yaml: required + "keep-bundles: 7\n", wantErr: `unknown field "keep-bundles"`},
		{name: "not a mapping", yaml: "- repo\n", wantErr: "cannot unmarshal array"},
		{name: "key given twice", yaml: required + "keepBundles: 7\nkeepBundles: 8\n", wantErr: "keepBundles"},
	}
	for i, tc := range tests {
		p := filepath.Join(dir, strings.Repeat("a", i+1)+".yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			c, err := parseRunConfig([]string{"--config", p}, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("parseRunConfig = %+v, %v", c, err)
			}
		})
	}
}
