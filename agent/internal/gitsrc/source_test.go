package gitsrc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/schemas/load"
)

func openSource(t *testing.T, url string, mod func(*Options)) *Source {
	t.Helper()
	o := Options{URL: url, Branch: "main", StorageDir: filepath.Join(t.TempDir(), "git"), Timeout: 10 * time.Second}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestUpdateFetchesOnlyWhenHeadMoves(t *testing.T) {
	t.Parallel()
	for _, scheme := range []struct{ name, prefix string }{{"local path", ""}, {"file URL", "file://"}} {
		t.Run(scheme.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			work := newRepo(t)
			first := commitFiles(t, work, "first\n\nbody", map[string]string{"cfg/a.yaml": "a: 1\n"})
			s := openSource(t, scheme.prefix+work, func(o *Options) { o.StorageDir = filepath.Join(t.TempDir(), "git") })

			steps := []struct {
				name        string
				change      func() string // returns the expected head
				wantFetched bool
			}{
				{"initial fetch", func() string { return first }, true},
				{"nothing new", func() string { return first }, false},
				{"new commit", func() string {
					return commitFiles(t, work, "second", map[string]string{"cfg/a.yaml": "a: 2\n"})
				}, true},
				{"force-push to a known older commit", func() string {
					run(t, work, "reset", "-q", "--hard", first)
					return first
				}, false},
			}
			for _, st := range steps {
				want := st.change()
				head, fetched, err := s.Update(ctx)
				if err != nil {
					t.Fatalf("%s: Update: %v", st.name, err)
				}
				if head != want || fetched != st.wantFetched {
					t.Fatalf("%s: head %s fetched %v, want %s %v", st.name, head, fetched, want, st.wantFetched)
				}
				files, err := s.Files(context.Background(), head, "cfg", load.Limits{})
				if err != nil || len(files) != 1 {
					t.Fatalf("%s: Files: %v %v", st.name, files, err)
				}
			}
			info, err := s.Info(context.Background(), first)
			if err != nil {
				t.Fatal(err)
			}
			if info.Author != "Ada" || info.Subject != "first" || info.Time.IsZero() {
				t.Fatalf("commit info %+v", info)
			}
		})
	}
}

func TestStorageSurvivesReopen(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	sha := commitFiles(t, work, "one", map[string]string{"a.yaml": "a: 1\n"})
	store := filepath.Join(t.TempDir(), "git")
	s := openSource(t, work, func(o *Options) { o.StorageDir = store })
	if _, _, err := s.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := openSource(t, work, func(o *Options) { o.StorageDir = store })
	_, fetched, err := s2.Update(context.Background())
	if err != nil || fetched {
		t.Fatalf("second Update fetched=%v err=%v, want no fetch", fetched, err)
	}
	if _, err := s2.Info(context.Background(), sha); err != nil {
		t.Fatal(err)
	}
}

func TestHeadErrors(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	commitFiles(t, work, "one", nil)
	tests := []struct {
		name    string
		url     string
		branch  string
		wantErr error
		secret  string
	}{
		{name: "unknown branch", url: work, branch: "nope", wantErr: ErrBranchNotFound},
		{name: "unreachable host redacts the password", url: "https://bob:s3cr3t-tok@127.0.0.1:1/x.git", branch: "main", secret: "s3cr3t-tok"},
		{name: "missing local repo", url: filepath.Join(t.TempDir(), "absent"), branch: "main"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openSource(t, tc.url, func(o *Options) { o.Branch = tc.branch; o.Token = "tok-xyz" })
			_, _, err := s.Update(context.Background())
			if err == nil {
				t.Fatal("Update succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			for _, sec := range []string{tc.secret, "tok-xyz"} {
				if sec != "" && strings.Contains(err.Error(), sec) {
					t.Fatalf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"token in userinfo", "https://x-access-token:ghp_abc@github.com/o/r.git", "https://x-access-token:REDACTED@github.com/o/r.git"},
		{"token as user name", "https://ghp_abc@github.com/o/r.git", "https://REDACTED@github.com/o/r.git"},
		{"ssh git user", "ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"},
		{"fragment before at", "https://h#:p4ss@x", "https://REDACTED@x"},
		{"no userinfo", "https://github.com/o/r.git", "https://github.com/o/r.git"},
		{"scp-like", "git@github.com:o/r.git", "git@github.com:o/r.git"},
		{"local path", "/srv/repo", "/srv/repo"},
		{"unparseable", "https://u:p%zz@host/x", "https://REDACTED@host/x"},
		{"at in the path only", "https://host/a@b", "https://host/a@b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Redact(tc.in); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("https://", "u", "p4ss", "host/x")
	f.Add("ssh://", "git", "hunter2", "example.com:22/r")
	f.Fuzz(func(t *testing.T, scheme, user, pass, rest string) {
		// A user name with '/' ends the authority: the "password" is then a
		// path, which no client sends as a credential.
		if len(pass) < 4 || strings.ContainsAny(pass, "@/") || strings.ContainsAny(user, "/") || strings.Contains(scheme+user+rest, pass) {
			return
		}
		in := "https://" + user + ":" + pass + "@" + rest
		if got := Redact(in); strings.Contains(got, pass) {
			t.Fatalf("Redact(%q) = %q leaks the password", in, got)
		}
	})
}

func TestResolve(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	// Many commits with fixed dates (deterministic SHAs) via fast-import, so
	// some 4-digit prefix is shared by two commits.
	var fi bytes.Buffer
	for i := 1; i <= 1500; i++ {
		fi.WriteString("commit refs/heads/main\n")
		fi.WriteString("committer Ada <ada@example.com> 1700000000 +0000\n")
		msg := "c" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i)
		fi.WriteString("data " + itoa(len(msg)) + "\n" + msg + "\n")
		fi.WriteString("\n")
	}
	cmd := execGit(work, "fast-import", "--quiet")
	cmd.Stdin = &fi
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v\n%s", err, out)
	}
	shas := strings.Fields(run(t, work, "rev-list", "main"))
	seen := map[string]string{}
	var ambiguous string
	for _, s := range shas {
		if _, ok := seen[s[:4]]; ok {
			ambiguous = s[:4]
			break
		}
		seen[s[:4]] = s
	}
	if ambiguous == "" {
		t.Fatal("no shared 4-digit prefix among 1500 commits")
	}
	src := openSource(t, work, nil)
	if _, _, err := src.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
		wantErr        error
	}{
		{name: "full sha", in: shas[3], want: shas[3]},
		{name: "unique prefix", in: shas[10][:12], want: shas[10]},
		{name: "upper case prefix", in: strings.ToUpper(shas[10][:12]), want: shas[10]},
		{name: "ambiguous prefix", in: ambiguous, wantErr: source.ErrAmbiguousRevision},
		{name: "unknown prefix", in: "0000000000", wantErr: source.ErrUnknownRevision},
		{name: "unknown full sha", in: strings.Repeat("e", 40), wantErr: source.ErrUnknownRevision},
		{name: "too short", in: "abc", wantErr: source.ErrUnknownRevision},
		{name: "not hex", in: "zzzzzz", wantErr: source.ErrUnknownRevision},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := src.Resolve(context.Background(), tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve(%q) err = %v, want %v", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || h != tc.want {
				t.Fatalf("Resolve(%q) = %s, %v; want %s", tc.in, h, err, tc.want)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestVerify(t *testing.T) {
	t.Parallel()
	trusted := newEntity(t, "trusted")
	stranger := newEntity(t, "stranger")
	work := newRepo(t)
	unsigned := commitFiles(t, work, "unsigned", map[string]string{"a.yaml": "a: 1\n"})
	byTrusted := signedCommit(t, work, "by trusted", trusted)
	byStranger := signedCommit(t, work, "by stranger", stranger)

	src := openSource(t, work, func(o *Options) { o.TrustedKeys = armoredPublic(t, trusted) })
	if _, _, err := src.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sha     string
		wantErr error
	}{
		{"signed by a trusted key", byTrusted, nil},
		{"unsigned", unsigned, source.ErrUnsigned},
		{"signed by an untrusted key", byStranger, source.ErrUntrusted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := src.Verify(context.Background(), tc.sha)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if !src.Verifying() {
		t.Fatal("Verifying() = false with trusted keys")
	}
}

func newEntity(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func armoredPublic(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}

func signedCommit(t *testing.T, dir, msg string, key *openpgp.Entity) string {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("msg: "+msg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("a.yaml"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Ada", Email: "ada@example.com", When: time.Now()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestFetchRef(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	commitFiles(t, work, "base", map[string]string{"a.yaml": "a: 1\n"})
	run(t, work, "checkout", "-q", "-b", "feature")
	pr := commitFiles(t, work, "pr head", map[string]string{"a.yaml": "a: 2\n"})
	run(t, work, "update-ref", "refs/pull/7/head", pr)
	run(t, work, "checkout", "-q", "main")
	src := openSource(t, work, nil)
	if _, _, err := src.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	if src.HasCommit(pr) {
		t.Fatal("the PR head is local before FetchRef")
	}
	tests := []struct {
		name, ref, want string
		wantErr         bool
	}{
		{name: "pull request head", ref: "refs/pull/7/head", want: pr},
		{name: "branch", ref: "refs/heads/feature", want: pr},
		{name: "missing ref", ref: "refs/pull/8/head", wantErr: true},
		{name: "refspec injection", ref: "refs/heads/x:refs/heads/main", wantErr: true},
		{name: "not a ref", ref: "main", wantErr: true},
	}
	for _, tc := range tests {
		h, err := src.FetchRef(context.Background(), tc.ref)
		if tc.wantErr {
			if err == nil {
				t.Fatalf("%s: FetchRef succeeded", tc.name)
			}
			continue
		}
		if err != nil || h != tc.want || !src.HasCommit(h) {
			t.Fatalf("%s: FetchRef = %s, %v; want %s", tc.name, h, err, tc.want)
		}
	}

	// A pull request (from a fork: anyone's) whose head brings a pack over
	// the cap is refused each time it is fetched, and leaves nothing on
	// disk.
	run(t, work, "checkout", "-q", "-b", "big")
	noise := incompressible(t, 64<<10)
	big := commitFiles(t, work, "big", map[string]string{"big.txt": noise})
	run(t, work, "update-ref", "refs/pull/9/head", big)
	run(t, work, "checkout", "-q", "main")
	capped := openSource(t, work, func(o *Options) { o.MaxFetchBytes = 4 << 10 })
	if _, _, err := capped.Update(context.Background()); err != nil {
		t.Fatalf("Update under the cap: %v", err)
	}
	for range 3 {
		if h, err := capped.FetchRef(context.Background(), "refs/pull/9/head"); !errors.Is(err, ErrFetchTooLarge) {
			t.Fatalf("FetchRef of a head over the cap = %s, %v; want %v", h, err, ErrFetchTooLarge)
		}
	}
	if left := tempFiles(t, capped.StorageDir()); len(left) > 0 {
		t.Fatalf("refused fetches left temp files: %v", left)
	}
}

// TestOpenRewritesTheRemote opens one storage for one repository, then for
// another (a changed --repo): the config, written in one atomic step, names
// only the second, once, and the second's head is fetched.
func TestOpenRewritesTheRemote(t *testing.T) {
	t.Parallel()
	a, b := newRepo(t), newRepo(t)
	commitFiles(t, a, "in a", map[string]string{"a.yaml": "a: 1\n"})
	inB := commitFiles(t, b, "in b", map[string]string{"b.yaml": "b: 1\n"})
	store := filepath.Join(t.TempDir(), "git")
	if _, _, err := openSource(t, a, func(o *Options) { o.StorageDir = store }).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := openSource(t, b, func(o *Options) { o.StorageDir = store })
	cfg, err := os.ReadFile(filepath.Join(store, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(cfg), "[remote "); n != 1 || !strings.Contains(string(cfg), "url = "+b+"\n") || strings.Contains(string(cfg), a) {
		t.Fatalf("config after the second Open:\n%s", cfg)
	}
	if head, _, err := s.Update(context.Background()); err != nil || head != inB {
		t.Fatalf("Update = %s, %v; want %s", head, err, inB)
	}
}
