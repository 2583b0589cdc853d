package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitgate/gitgate/agent/internal/fleetpin"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/schemas/load"
	"github.com/gitgate/gitgate/schemas/load/budget"
)

// repoPinFlags are the flags of `agent rollback --repo` and `agent resume
// --repo`: the fleet's pin is written straight to the config repository
// with the operator's own Git credentials, no agent involved.
type repoPinFlags struct {
	repo, branch, path       string
	tokenFile, sshKey, known string
	trustedKeys              string
	hold                     bool
	reason                   string
	noCredentialHelper       bool
	// format is the --output format: table, json or yaml.
	format string
}

func (f *repoPinFlags) register(fs *pflag.FlagSet, rollback bool) {
	fs.StringVar(&f.repo, "repo", "", "write the fleet's pin straight to this config repository with your own Git credentials (no agent involved)")
	fs.StringVar(&f.branch, "branch", "main", "with --repo: the tracked branch")
	fs.StringVar(&f.tokenFile, "token-file", "", "with --repo: file with an HTTPS token that may push tags (default: ask 'git credential fill', your credential helper)")
	fs.StringVar(&f.sshKey, "ssh-key-file", "", "with --repo: SSH private key (default: your SSH agent)")
	fs.StringVar(&f.known, "known-hosts-file", "", "with --repo: known_hosts for SSH (default ~/.ssh/known_hosts)")
	fs.BoolVar(&f.noCredentialHelper, "no-credential-helper", false, "with --repo: do not ask git's credential helper for HTTPS credentials")
	if rollback {
		fs.StringVar(&f.path, "path", "", "with --repo: config directory inside the repository, validated before pinning (default: the root)")
		fs.StringVar(&f.trustedKeys, "trusted-keys", "", "with --repo: armored PGP public keys or an SSH allowed_signers file; refuse to pin a commit they did not sign")
	}
}

// openRepoPin opens a throwaway clone of f.repo that may push marks, and
// reads its head and marks.
func (f *repoPinFlags) open(ctx context.Context) (*gitsrc.Source, string, fleetpin.State, func(), error) {
	dir, err := os.MkdirTemp("", "gitgate-pin-")
	if err != nil {
		return nil, "", fleetpin.State{}, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	fail := func(err error) (*gitsrc.Source, string, fleetpin.State, func(), error) {
		cleanup()
		return nil, "", fleetpin.State{}, nil, err
	}
	opts := gitsrc.Options{URL: f.repo, Branch: f.branch, StorageDir: dir, SSHKeyFile: f.sshKey, PushSSHKeyFile: f.sshKey,
		KnownHostsFile: f.known, PushMarks: true}
	if f.tokenFile != "" {
		tok, err := readSecretFile(f.tokenFile, "")
		if err != nil {
			return fail(err)
		}
		opts.Token, opts.PushToken = tok, tok
	} else if u, err := url.Parse(f.repo); err == nil && (u.Scheme == "https" || u.Scheme == "http") && !f.noCredentialHelper {
		if opts.Username, opts.Token, err = gitCredential(ctx, u); err != nil {
			return fail(err)
		}
		opts.PushToken = opts.Token
	}
	if f.trustedKeys != "" {
		// A PGP key ring or an SSH allowed_signers file, checked here.
		if opts.TrustedKeys, err = gitsrc.ReadTrustedKeys(f.trustedKeys); err != nil {
			return fail(err)
		}
	}
	src, err := gitsrc.Open(opts)
	if err != nil {
		return fail(err)
	}
	head, _, err := src.Update(ctx)
	if err != nil {
		return fail(err)
	}
	ms, err := src.ReadMarks(ctx, "")
	if err != nil {
		return fail(err)
	}
	return src, head, fleetpin.Read(ms), cleanup, nil
}

// gitCredential asks git's credential helpers for the credentials of u
// (git-credential(1)): the operator's own, as `git push` would use them.
func gitCredential(ctx context.Context, u *url.URL) (username, password string, err error) {
	in := fmt.Sprintf("protocol=%s\nhost=%s\npath=%s\n\n", u.Scheme, u.Host, strings.TrimPrefix(u.Path, "/"))
	cmd := exec.CommandContext(ctx, "git", "credential", "fill")
	cmd.Stdin = strings.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("asking git's credential helper for %s (give --token-file, or --no-credential-helper for none): %w", u.Host, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "username":
			username = v
		case "password":
			password = v
		}
	}
	return username, password, nil
}

// whoAmI names the operator in the pin: user@host.
func whoAmI() string {
	name := "operator"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}

// rollbackRepo pins the fleet to rev in the repository: the branch tip is
// marked bad (unless it is rev), and every agent follows on its next head
// check.
func rollbackRepo(ctx context.Context, f *repoPinFlags, rev string, stdout, stderr io.Writer) int {
	src, head, fs, cleanup, err := f.open(ctx)
	if err != nil {
		return fail(stderr, "rollback", err)
	}
	defer cleanup()
	sha, err := src.Resolve(ctx, rev)
	if err != nil {
		return fail(stderr, "rollback", err)
	}
	if err := src.Verify(ctx, sha); err != nil {
		return fail(stderr, "rollback", fmt.Errorf("refusing to pin %s: %w", source.Short(sha), err))
	}
	ev, err := newEvaluator(budget.Default.Timeout, budget.Default.Memory)
	if err != nil {
		return fail(stderr, "rollback", err)
	}
	res, err := source.Validate(ctx, src, sha, f.path, ev, load.Limits{})
	if err != nil {
		return fail(stderr, "rollback", err)
	}
	if len(res.Diagnostics) > 0 {
		return fail(stderr, "rollback", fmt.Errorf("refusing to pin %s: its config is invalid: %s", source.Short(sha), res.Diagnostics[0].String()))
	}
	reason := f.reason
	if reason == "" {
		reason = "rollback"
	}
	p := fleetpin.Pin{SHA: sha, BranchHead: head, Hold: f.hold, Reason: reason, By: whoAmI(), At: time.Now().UTC()}
	if head != sha {
		p.From = head
	}
	if _, err := fleetpin.Set(ctx, src, fs, p); err != nil {
		if errors.Is(err, source.ErrMarkConflict) {
			err = fmt.Errorf("%w (another rollback or resume got there first; rerun to see the new state)", err)
		}
		return fail(stderr, "rollback", err)
	}
	if f.format != "table" {
		_ = writeData(stdout, f.format, p)
		return exitOK
	}
	fmt.Fprintf(stdout, "Pinned %s branch %s to %s in the repository", src.Location(), f.branch, short(sha))
	if p.From != "" {
		fmt.Fprintf(stdout, "; %s is marked bad", short(p.From))
	}
	fmt.Fprintln(stdout, ". Every agent follows at its next head check.")
	return 0
}

// resumeRepo deletes the fleet's pin in the repository.
func resumeRepo(ctx context.Context, f *repoPinFlags, stdout, stderr io.Writer) int {
	src, _, fs, cleanup, err := f.open(ctx)
	if err != nil {
		return fail(stderr, "resume", err)
	}
	defer cleanup()
	if fs.Pin == nil {
		return fail(stderr, "resume", fmt.Errorf("branch %s of %s is not pinned", f.branch, src.Location()))
	}
	if err := fleetpin.Lift(ctx, src, fs.PinID); err != nil {
		return fail(stderr, "resume", err)
	}
	fmt.Fprintf(stdout, "Pin to %s deleted from the repository: every agent tracks %s again at its next head check.\n", short(fs.Pin.SHA), f.branch)
	return 0
}
