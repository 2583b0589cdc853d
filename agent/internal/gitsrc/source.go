package gitsrc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"

	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/schemas/atomicfile"
	"github.com/gitgate/gitgate/schemas/load"
)

// remoteName is the only remote of the agent's clone.
const remoteName = "origin"

// ErrBranchNotFound is returned by a head check when the remote has no such
// branch. The errors a user must fix (an unknown or ambiguous revision, an
// unsigned or untrusted commit) wrap the sentinels of package source.
var ErrBranchNotFound = errors.New("branch not found on the remote")

// Source implements source.Source.
var _ source.Source = (*Source)(nil)

// Options configure a Source. URL and Branch are required; StorageDir is
// where the clone lives (the agent uses <state-dir>/git).
type Options struct {
	// URL is https://..., ssh://..., git@host:path, file://... or a local
	// path. A local path or file:// needs the git-upload-pack binary.
	URL string
	// Branch is the tracked branch name, such as "main".
	Branch string
	// StorageDir holds the bare clone; created when missing.
	StorageDir string
	// Token authenticates HTTPS as x-access-token (GitHub style). Empty: none.
	Token string
	// Username goes with Token and PushToken over HTTPS. Default
	// "x-access-token" (GitHub's user for tokens).
	Username string
	// SSHKeyFile is a private key for ssh:// and scp-like URLs. Empty: none.
	SSHKeyFile string
	// SSHKeyPassphrase decrypts SSHKeyFile. Empty: unencrypted key.
	SSHKeyPassphrase string
	// KnownHostsFile checks the SSH host key. Empty: the default known_hosts
	// files ($SSH_KNOWN_HOSTS or ~/.ssh/known_hosts).
	KnownHostsFile string
	// TrustedKeys is an armored PGP key ring or an SSH allowed_signers
	// file (see ReadTrustedKeys). When non-empty, Verify accepts only
	// commits signed by one of its keys.
	TrustedKeys string
	// Timeout bounds one head check or fetch. Default 60s.
	Timeout time.Duration
	// MaxFetchBytes caps each response of an HTTP(S) Git server (the refs
	// listing, a fetch's pack, a push's report) and each pack a fetch
	// writes over any transport: a read or write past it fails the head
	// check or fetch with ErrFetchTooLarge. 0: DefaultMaxFetchBytes;
	// negative: no cap. An SSH server's refs listing is not capped.
	MaxFetchBytes int64
	// OnRepair, when set, is told what was repaired in the storage: by
	// Open, what a process killed in the middle of a write left torn, and
	// by Update, a ref that a failed write (a full disk) left empty. See
	// repairStorage. It is called with the Source's lock held.
	OnRepair func(repairs []string)
	// PushMarks lets WriteMarks push the rollback marks (tags under
	// refs/tags/gitgate/<branch>/) to the repository. False: WriteMarks
	// fails with source.ErrMarksReadOnly and the marks stay local.
	PushMarks bool
	// PushToken authenticates the push of marks over HTTPS, never the
	// read Token. Empty: none (a host that allows anonymous pushes, or a
	// local repository).
	PushToken string
	// PushSSHKeyFile is the private key that pushes marks over SSH.
	// Empty: SSHKeyFile's key is not reused; go-git's default (an SSH
	// agent) applies.
	PushSSHKeyFile string
}

// Source is the agent's clone of the config repository. All methods are safe
// for concurrent use; they are serialized internally.
type Source struct {
	opts    Options
	auth    transport.AuthMethod
	red     redactor
	refspec config.RefSpec
	local   plumbing.ReferenceName

	pushAuth transport.AuthMethod

	// trust is the parsed TrustedKeys; nil when verification is off.
	trust *trust

	mu   sync.Mutex
	repo *git.Repository
	// capped is repo's storage, which caps each fetched pack; nil when
	// go-git's storage is not the filesystem one.
	capped *cappedStorage
	// marks are the mark refs the last listing advertised, by name
	// relative to markPrefix; listed says a listing ran.
	marks  []source.Mark
	listed bool
}

// Open opens or creates the bare clone in opts.StorageDir with one remote
// for opts.URL. It does not touch the network.
func Open(opts Options) (*Source, error) {
	if opts.URL == "" || opts.Branch == "" || opts.StorageDir == "" {
		return nil, errors.New("opening git source: URL, Branch and StorageDir are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxFetchBytes == 0 {
		opts.MaxFetchBytes = DefaultMaxFetchBytes
	}
	s := &Source{
		opts:  opts,
		red:   redactor{rawURL: opts.URL, secrets: []string{opts.Token, opts.SSHKeyPassphrase, opts.PushToken}},
		local: plumbing.NewRemoteReferenceName(remoteName, opts.Branch),
	}
	if opts.TrustedKeys != "" {
		t, err := parseTrust(opts.TrustedKeys)
		if err != nil {
			return nil, fmt.Errorf("opening git source: %w", err)
		}
		s.trust = t
	}
	s.refspec = config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(opts.Branch), s.local))
	if err := s.refspec.Validate(); err != nil {
		return nil, fmt.Errorf("opening git source: branch %q: %w", opts.Branch, err)
	}
	auth, err := authFor(opts)
	if err != nil {
		return nil, s.red.wrap(fmt.Errorf("opening git source %s: %w", Redact(opts.URL), err))
	}
	s.auth = auth
	if opts.PushMarks {
		popts := opts
		popts.Token, popts.SSHKeyFile, popts.SSHKeyPassphrase = opts.PushToken, opts.PushSSHKeyFile, ""
		if s.pushAuth, err = authFor(popts); err != nil {
			return nil, s.red.wrap(fmt.Errorf("opening git source %s: push credential: %w", Redact(opts.URL), err))
		}
	}
	if err := os.MkdirAll(opts.StorageDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating git storage %s: %w", opts.StorageDir, err)
	}
	repo, err := s.openStorage()
	if err != nil {
		return nil, err
	}
	s.repo = repo
	return s, nil
}

func authFor(opts Options) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing repository URL: %w", err)
	}
	switch ep.Protocol {
	case "https", "http":
		if opts.Token != "" {
			user := opts.Username
			if user == "" {
				user = "x-access-token"
			}
			return &githttp.BasicAuth{Username: user, Password: opts.Token}, nil
		}
		return nil, nil
	case "ssh":
		if opts.SSHKeyFile == "" {
			return nil, nil
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		pk, err := gitssh.NewPublicKeysFromFile(user, opts.SSHKeyFile, opts.SSHKeyPassphrase)
		if err != nil {
			return nil, fmt.Errorf("reading SSH key %s: %w", opts.SSHKeyFile, err)
		}
		var files []string
		if opts.KnownHostsFile != "" {
			files = append(files, opts.KnownHostsFile)
		}
		// One known-hosts database gives both the check and the host key
		// algorithms to offer: with a callback of its own and no
		// algorithms, go-git lets the server pick a key type the file may
		// not hold (an ed25519-only file then fails with "key mismatch").
		db, err := gitssh.NewKnownHostsDb(files...)
		if err != nil {
			return nil, fmt.Errorf("reading known_hosts: %w", err)
		}
		port := ep.Port
		if port <= 0 {
			port = gitssh.DefaultPort
		}
		pk.HostKeyCallback = db.HostKeyCallback()
		pk.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port)))
		return pk, nil
	default:
		return nil, nil
	}
}

// writeRemote sets the one remote in repo's config and writes the config
// in one atomic step: go-git's own config writes (DeleteRemote,
// CreateRemote) truncate the file and write it again, twice, which a kill
// between the two leaves torn.
func (s *Source) writeRemote(repo *git.Repository) error {
	cfg, err := repo.Config()
	if err != nil {
		return err
	}
	cfg.Core.IsBare = true
	cfg.Remotes[remoteName] = &config.RemoteConfig{Name: remoteName, URLs: []string{s.opts.URL}, Fetch: []config.RefSpec{s.refspec}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.opts.StorageDir, "config"), b, 0o600)
}

// openStorage repairs the storage (repairStorage, dropDanglingRefs),
// tells OnRepair what it repaired, opens the repository, creating it when
// there is none, and (re)writes its remote, so that a changed --repo takes
// effect; a storage that the repairs leave unreadable is removed and
// created again.
func (s *Source) openStorage() (*git.Repository, error) {
	dir := s.opts.StorageDir
	repaired, err := repairStorage(dir)
	defer func() {
		if len(repaired) > 0 && s.opts.OnRepair != nil {
			s.opts.OnRepair(repaired)
		}
	}()
	note := func(format string, args ...any) { repaired = append(repaired, fmt.Sprintf(format, args...)) }
	var repo *git.Repository
	if err == nil {
		repo, err = openRepaired(dir, note)
	}
	if err != nil {
		// What repairStorage does not know (a packed-refs file torn by
		// a power cut, a directory where a file belongs): the storage is
		// a cache of the remote, so it starts over, and the next fetch
		// clones again.
		note("re-created the storage, which did not open after the repairs (%v); the next fetch clones again", err)
		if rerr := emptyStorage(dir); rerr != nil {
			return nil, fmt.Errorf("opening git storage %s: %w (and then %v)", dir, err, rerr)
		}
		if repo, err = openRepaired(dir, note); err != nil {
			return nil, err
		}
	}
	if err := s.writeRemote(repo); err != nil {
		return nil, s.red.wrap(fmt.Errorf("configuring remote %s: %w", Redact(s.opts.URL), err))
	}
	s.capped = nil
	if st, ok := repo.Storer.(*filesystem.Storage); ok {
		s.capped = &cappedStorage{Storage: st, max: s.opts.MaxFetchBytes}
		repo.Storer = s.capped
	}
	return repo, nil
}

// emptyStorage removes dir and all it holds, and creates it again, empty.
func emptyStorage(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("emptying git storage %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating git storage %s: %w", dir, err)
	}
	return nil
}

// openRepaired opens the repository at dir, creating it when there is
// none, and drops its dangling refs.
func openRepaired(dir string, note func(string, ...any)) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("opening git storage %s: %w", dir, err)
	}
	if err := dropDanglingRefs(repo, note); err != nil {
		return nil, fmt.Errorf("repairing git storage %s: %w", dir, err)
	}
	return repo, nil
}

// Location returns the repository address with credentials redacted.
func (s *Source) Location() string { return Redact(s.opts.URL) }

// Tracking returns the tracked branch name.
func (s *Source) Tracking() string { return s.opts.Branch }

// Ref returns the tracked branch's full ref name, "refs/heads/<branch>".
func (s *Source) Ref() string { return plumbing.NewBranchReferenceName(s.opts.Branch).String() }

// Head asks the remote for the tracked branch's tip without fetching
// (ls-remote).
func (s *Source) Head(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, _, err := s.head(ctx)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// head lists the remote's refs once (ls-remote) and returns the tracked
// branch's tip and the mark refs (see marks.go), by full name.
func (s *Source) head(ctx context.Context) (plumbing.Hash, map[plumbing.ReferenceName]plumbing.Hash, error) {
	ctx, cancel := s.remoteContext(ctx)
	defer cancel()
	rem, err := s.repo.Remote(remoteName)
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("finding remote: %w", err)
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: s.auth})
	if err != nil {
		return plumbing.ZeroHash, nil, s.red.wrap(fmt.Errorf("listing refs of %s: %w", s.Location(), err))
	}
	want := plumbing.NewBranchReferenceName(s.opts.Branch)
	head := plumbing.ZeroHash
	marks := map[plumbing.ReferenceName]plumbing.Hash{}
	prefix := s.markPrefix()
	for _, r := range refs {
		switch {
		case r.Name() == want:
			head = r.Hash()
		case r.Type() == plumbing.HashReference && strings.HasPrefix(r.Name().String(), prefix):
			// A name git itself would refuse (check-ref-format: "..", a
			// ".lock" suffix, control bytes) is no mark: only a broken
			// or hostile server advertises one, and its "../" would
			// name a file of the storage as the local ref to write.
			if r.Name().Validate() == nil {
				marks[r.Name()] = r.Hash()
			}
		}
	}
	if head.IsZero() {
		return head, nil, fmt.Errorf("listing refs of %s: %w: %q", s.Location(), ErrBranchNotFound, s.opts.Branch)
	}
	return head, marks, nil
}

// Update checks the remote head and fetches the tracked branch when the
// head's commit is not in the local store yet. It returns the head and
// whether a fetch ran. A force-push to a known older commit moves the local
// ref without fetching.
func (s *Source) Update(ctx context.Context) (head string, fetched bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	head, fetched, err = s.update(ctx)
	if errors.Is(err, dotgit.ErrEmptyRefFile) && ctx.Err() == nil {
		// A write that failed halfway (the disk filled up after go-git
		// had truncated the ref file) left a ref empty: every fetch
		// would fail on it until a restart. Repair, reopen, try again.
		repo, rerr := s.openStorage()
		if rerr != nil {
			return head, fetched, errors.Join(err, rerr)
		}
		s.repo = repo
		head, fetched, err = s.update(ctx)
	}
	return head, fetched, err
}

// update is Update, with the lock held.
func (s *Source) update(ctx context.Context) (head string, fetched bool, err error) {
	h, marks, err := s.head(ctx)
	if err != nil {
		return "", false, err
	}
	// The marks' tag objects come with the branch in one fetch, and only
	// when one of them is not local yet.
	specs := s.missingMarks(marks)
	if _, err := s.repo.CommitObject(h); err == nil {
		if err := s.repo.Storer.SetReference(plumbing.NewHashReference(s.local, h)); err != nil {
			return h.String(), false, fmt.Errorf("updating %s: %w", s.local, err)
		}
		if len(specs) == 0 {
			return h.String(), false, s.readMarks(marks)
		}
		if err := s.fetch(ctx, s.opts.Branch, specs...); err != nil {
			return "", true, err
		}
		return h.String(), true, s.readMarks(marks)
	}
	if err := s.fetch(ctx, s.opts.Branch, append(specs, s.refspec)...); err != nil {
		return "", true, err
	}
	ref, err := s.repo.Reference(s.local, true)
	if err != nil {
		return "", true, fmt.Errorf("reading %s after fetch: %w", s.local, err)
	}
	return ref.Hash().String(), true, s.readMarks(marks)
}

// fetch fetches specs, what naming them in its error; the caller holds
// s.mu. A failed fetch's temp files are removed (sweepFailedFetch).
func (s *Source) fetch(ctx context.Context, what string, specs ...config.RefSpec) error {
	ctx, cancel := s.remoteContext(ctx)
	defer cancel()
	ctx, done := s.fetchContext(ctx)
	var err error
	for try := 0; try < 2; try++ {
		err = s.repo.FetchContext(ctx, &git.FetchOptions{
			RemoteName: remoteName,
			RefSpecs:   specs,
			Auth:       s.auth,
			Tags:       git.NoTags,
			Force:      true,
		})
		if !closedEarly(err) || ctx.Err() != nil {
			break
		}
	}
	err = done(err)
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return s.sweepFailedFetch(s.red.wrap(fmt.Errorf("fetching %s from %s: %w", what, s.Location(), err)))
	}
	return nil
}

// sweepFailedFetch removes what the failed fetch whose error is err left
// in the storage, and returns err. go-git does not remove the temp file of
// a pack it abandoned (past the cap, cut off, timed out, or not a pack):
// a server that kept sending such packs would fill the disk, one pack per
// poll. The caller holds s.mu, so no other fetch is writing.
func (s *Source) sweepFailedFetch(err error) error {
	if rerr := removeTempFiles(s.opts.StorageDir, "a failed fetch's temp file", func(string, ...any) {}); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// remoteContext is ctx for one exchange with the remote (a refs listing, a
// fetch, a push): bounded by Options.Timeout, its HTTP responses capped at
// Options.MaxFetchBytes (capContext).
func (s *Source) remoteContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(capContext(ctx, s.opts.MaxFetchBytes), s.opts.Timeout)
}

// closedEarly reports go-git's error for an SSH server that sent its pack
// and closed the session before go-git closed its side of it ("closing
// input: EOF"): a race on a fast server, not a failure of the fetch, which
// is tried once more. Seen in TestSSHKnownHosts with five fetches at once.
func closedEarly(err error) bool {
	return err != nil && strings.Contains(err.Error(), "closing input: EOF")
}

// Files reads the config files under dir at commit rev (a full SHA); see
// readFiles.
func (s *Source) Files(ctx context.Context, rev, dir string, lim load.Limits) ([]load.File, error) {
	h, err := hashOf(rev)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return readFiles(ctx, s.repo, h, dir, lim)
}

// Info returns the metadata of commit rev (a full SHA) in the local store.
func (s *Source) Info(_ context.Context, rev string) (source.Info, error) {
	h, err := hashOf(rev)
	if err != nil {
		return source.Info{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.repo.CommitObject(h)
	if err != nil {
		return source.Info{}, fmt.Errorf("reading commit %s: %w", h, err)
	}
	return infoOf(c), nil
}

func infoOf(c *object.Commit) source.Info {
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return source.Info{Revision: c.Hash.String(), Author: c.Author.Name, Email: c.Author.Email, Time: c.Author.When.UTC(), Subject: strings.TrimSpace(subject)}
}

// hashOf parses a full commit SHA, the only revision form this package
// returns; anything else wraps source.ErrUnknownRevision.
func hashOf(rev string) (plumbing.Hash, error) {
	if len(rev) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("reading revision %q: not a full commit SHA: %w", rev, source.ErrUnknownRevision)
	}
	if _, err := hex.DecodeString(rev); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reading revision %q: not hex: %w", rev, source.ErrUnknownRevision)
	}
	return plumbing.NewHash(rev), nil
}

// Resolve turns a full SHA or a unique hex prefix (at least 4 digits) into
// the full SHA of a commit in the local store. Unknown prefixes wrap
// source.ErrUnknownRevision, ambiguous ones source.ErrAmbiguousRevision.
func (s *Source) Resolve(_ context.Context, prefix string) (string, error) {
	h, err := s.resolve(prefix)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (s *Source) resolve(prefix string) (plumbing.Hash, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	if len(p) < 4 || len(p) > 40 {
		return plumbing.ZeroHash, fmt.Errorf("resolving %q: a revision is 4 to 40 hex digits: %w", prefix, source.ErrUnknownRevision)
	}
	if _, err := hex.DecodeString(p + strings.Repeat("0", len(p)%2)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolving %q: not hex: %w", prefix, source.ErrUnknownRevision)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p) == 40 {
		h := plumbing.NewHash(p)
		if _, err := s.repo.CommitObject(h); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("resolving %s: %w", p, source.ErrUnknownRevision)
		}
		return h, nil
	}
	iter, err := s.repo.CommitObjects()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("listing commits: %w", err)
	}
	defer iter.Close()
	var found []plumbing.Hash
	err = iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Hash.String(), p) {
			found = append(found, c.Hash)
			if len(found) > 1 {
				return storer.ErrStop
			}
		}
		return nil
	})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("listing commits: %w", err)
	}
	switch len(found) {
	case 0:
		return plumbing.ZeroHash, fmt.Errorf("resolving %s: %w", p, source.ErrUnknownRevision)
	case 1:
		return found[0], nil
	default:
		return plumbing.ZeroHash, fmt.Errorf("resolving %s: %w; give more digits", p, source.ErrAmbiguousRevision)
	}
}

// Verifying reports whether Verify checks signatures.
func (s *Source) Verifying() bool { return s.trust != nil }

// Verify checks the signature of commit rev (a full SHA) against the
// trusted keys: a PGP signature against a PGP key ring, an SSH signature
// against allowed signers. Without trusted keys it accepts every commit. An
// unsigned commit wraps source.ErrUnsigned; a bad signature, an unknown
// key or a signature of the other kind source.ErrUntrusted.
func (s *Source) Verify(_ context.Context, rev string) error {
	if s.trust == nil {
		return nil
	}
	h, err := hashOf(rev)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.repo.CommitObject(h)
	if err != nil {
		return fmt.Errorf("reading commit %s: %w", h, err)
	}
	return s.trust.verify(c)
}

// StorageDir is where the clone lives, for tests and diagnostics.
func (s *Source) StorageDir() string { return filepath.Clean(s.opts.StorageDir) }

// FetchRef fetches one remote ref, such as "refs/pull/42/head", into the
// local refs/gitgate/fetched/ namespace and returns its commit's SHA. The
// PR integration uses it to validate a pull request's head.
func (s *Source) FetchRef(ctx context.Context, ref string) (string, error) {
	name := plumbing.ReferenceName(ref)
	if !strings.HasPrefix(ref, "refs/") || strings.Contains(ref, "..") || strings.ContainsAny(ref, " :*?[\\^~") {
		return "", fmt.Errorf("fetching %q: not a plain ref name", ref)
	}
	local := plumbing.ReferenceName("refs/gitgate/fetched/" + strings.TrimPrefix(ref, "refs/"))
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", name, local))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fetch(ctx, ref, spec); err != nil {
		return "", err
	}
	r, err := s.repo.Reference(local, true)
	if err != nil {
		return "", fmt.Errorf("reading fetched %s: %w", ref, err)
	}
	return r.Hash().String(), nil
}

// HasCommit reports whether commit rev (a full SHA) is in the local store.
func (s *Source) HasCommit(rev string) bool {
	h, err := hashOf(rev)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.repo.CommitObject(h)
	return err == nil
}
