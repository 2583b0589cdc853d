package source

import (
	"context"
	"errors"
	"time"

	"github.com/gitgate/gitgate/schemas/load"
)

// Errors a user must act on; a source wraps them, and they are not retried.
var (
	// ErrUnknownRevision: no revision matches the name an operator gave.
	ErrUnknownRevision = errors.New("no commit matches")
	// ErrAmbiguousRevision: more than one revision matches.
	ErrAmbiguousRevision = errors.New("more than one commit matches")
	// ErrUnsigned: verification is on and the revision carries no signature.
	ErrUnsigned = errors.New("commit is not signed")
	// ErrUntrusted: the revision's signature is bad or from an untrusted key.
	ErrUntrusted = errors.New("commit signature is not from a trusted key")
)

// Info is the metadata of one revision, as a bundle's Source records it.
type Info struct {
	// Revision is the revision described.
	Revision string
	// Author and Email name who made it; empty when the source has no author.
	Author string
	Email  string
	// Time is when it was made (UTC).
	Time time.Time
	// Subject is a one-line description (a commit's first line).
	Subject string
}

// Source is a config source the syncer consumes. Implementations are safe
// for concurrent use.
type Source interface {
	// Location says where the config comes from, with credentials
	// redacted (a repository URL).
	Location() string
	// Tracking names what is followed, for people (a branch name).
	Tracking() string
	// Ref names what is followed, as a bundle's Source.Ref records it
	// ("refs/heads/main").
	Ref() string
	// Update resolves the head revision and makes its files readable,
	// downloading only when it is not local yet; fetched says whether it
	// downloaded. It is the cheap check each poll makes.
	Update(ctx context.Context) (head string, fetched bool, err error)
	// Info describes a revision that is local (Update or Resolve saw it).
	Info(ctx context.Context, rev string) (Info, error)
	// Files reads the config files under dir at rev (see Validate).
	// Problems a user must fix in the source's layout (a missing dir, a
	// symlink, a file over lim) are a *schemas.InvalidError.
	Files(ctx context.Context, rev, dir string, lim load.Limits) ([]load.File, error)
	// Resolve turns an operator's name of a revision (for Git a unique SHA
	// prefix) into a revision. Unknown and ambiguous names wrap
	// ErrUnknownRevision and ErrAmbiguousRevision.
	Resolve(ctx context.Context, name string) (string, error)
	// Verify checks the authenticity of rev (for Git its PGP signature);
	// nil when verification is off. Failures wrap ErrUnsigned or
	// ErrUntrusted.
	Verify(ctx context.Context, rev string) error
}

// Errors of Marks.WriteMarks.
var (
	// ErrMarkConflict: a mark was not at the value the writer expected
	// (another writer got there first); nothing was written.
	ErrMarkConflict = errors.New("the mark changed since it was read")
	// ErrMarksReadOnly: this source may not write marks (no push
	// credential, or the host refused the push); the marks stay local.
	ErrMarksReadOnly = errors.New("no rights to write marks to the source")
)

// Mark is a small named pointer kept in the source next to the config, for
// state that every replica must share (issue 17: the fleet's rollback pin
// and the marks of bad revisions).
type Mark struct {
	// Name is relative to the source's mark namespace ("pin", "bad/<rev>").
	Name string
	// Revision the mark points at.
	Revision string
	// Note carries who, when and why, as the mark's writer encoded it.
	Note string
	// ID identifies this value of the mark (for Git the tag object's SHA);
	// a writer passes it back as MarkWrite.Old to compare-and-swap.
	ID string
}

// MarkWrite is one change of WriteMarks.
type MarkWrite struct {
	// Mark is the new value; an empty Revision deletes the mark. ID is
	// ignored.
	Mark Mark
	// Old is the ID the mark must have now; "" means it must not exist.
	Old string
	// By names who writes (the tagger of a Git tag); "" is "gitgate".
	By string
}

// Marks is what a Source implements when it can keep Marks: read in the
// same round trip as the head (Git's advertised refs), written with a
// compare-and-swap so that two writers cannot interleave.
type Marks interface {
	// ReadMarks returns the marks whose names start with prefix, as the
	// last Update saw them (it does not touch the network). Before the
	// first Update it fails.
	ReadMarks(ctx context.Context, prefix string) ([]Mark, error)
	// WriteMarks applies all writes in one request, each only if its mark
	// is at w.Old: all or nothing where the source supports it (Git's
	// atomic push). A mismatch wraps ErrMarkConflict; a source that may
	// not write wraps ErrMarksReadOnly.
	WriteMarks(ctx context.Context, writes []MarkWrite) error
}
