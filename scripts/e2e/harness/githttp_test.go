package harness

import (
	"maps"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestServeGitCounts checks each git client operation against a real
// git http-backend is counted as the requests it makes, by kind.
func TestServeGitCounts(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	root := t.TempDir()
	r, err := NewRepo(filepath.Join(root, "config-repo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteCommit("a.yaml", "x: 1\n", "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Git("config", "http.receivepack", "true"); err != nil {
		t.Fatal(err)
	}
	srv, err := ServeGit(root)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	clone := filepath.Join(t.TempDir(), "clone")
	// Cases run in order, each against the server's counts so far.
	cases := []struct {
		name string
		dir  string
		args []string
		want map[string]int // requests this step adds
	}{
		{name: "ls-remote is one head check", dir: root, args: []string{"ls-remote", srv.URL("config-repo")},
			want: map[string]int{GitAdvertise: 1}},
		{name: "clone is a head check and a fetch", dir: root, args: []string{"clone", "-q", srv.URL("config-repo"), clone},
			want: map[string]int{GitAdvertise: 1, GitUploadPack: 1}},
		{name: "pushing a tag is receive-pack", dir: clone, args: []string{"push", "-q", "origin", "HEAD:refs/tags/gitgate/main/pin"},
			want: map[string]int{GitReceive: 2}},
		{name: "a missing repository's head check still counts", dir: root, args: []string{"ls-remote", srv.URL("no-such-repo")},
			want: map[string]int{GitAdvertise: 1}},
	}
	before := srv.Counts()
	for _, tc := range cases {
		// Protocol v0, as the agent (go-git) speaks it: the head check is
		// the GET of info/refs alone (v2 adds a POST for ls-refs).
		cmd := exec.Command("git", append([]string{"-c", "protocol.version=0"}, tc.args...)...)
		cmd.Dir = tc.dir
		cmd.Env = append(cmd.Environ(), gitEnv...)
		out, err := cmd.CombinedOutput()
		if tc.name != "a missing repository's head check still counts" && err != nil {
			t.Fatalf("%s: git %v: %v\n%s", tc.name, tc.args, err, out)
		}
		after := srv.Counts()
		got := map[string]int{}
		for k, v := range after {
			if d := v - before[k]; d != 0 {
				got[k] = d
			}
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("%s: counted %v, want %v", tc.name, got, tc.want)
		}
		before = after
	}
}
