package gitsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"

	"github.com/gitgate/gitgate/agent/internal/source"
)

// Marks live as tags in the config repository, under
// refs/tags/gitgate/<branch>/: "pin" and "bad/<sha>". Tags, because every
// hosted Git accepts pushes of tags and offers rules to protect them, while
// custom namespaces under refs/ are refused or hidden by some hosts. The
// branch is never touched.
var _ source.Marks = (*Source)(nil)

// markLocal is where fetched mark tags are kept in the clone, apart from
// anything a user's tags could be.
const markLocal = "refs/gitgate/marks/"

// MarkRef returns the full ref name of mark name ("pin", "bad/<sha>") for
// branch: refs/tags/gitgate/<branch>/<name>.
func MarkRef(branch, name string) string { return "refs/tags/gitgate/" + branch + "/" + name }

func (s *Source) markPrefix() string { return MarkRef(s.opts.Branch, "") }

// missingMarks returns refspecs fetching the advertised mark refs whose
// objects are not local. Called with mu held.
func (s *Source) missingMarks(marks map[plumbing.ReferenceName]plumbing.Hash) []config.RefSpec {
	var specs []config.RefSpec
	for name, h := range marks {
		if _, err := s.repo.Storer.EncodedObject(plumbing.AnyObject, h); err == nil {
			continue
		}
		rel := strings.TrimPrefix(name.String(), s.markPrefix())
		specs = append(specs, config.RefSpec(fmt.Sprintf("+%s:%s%s/%s", name, markLocal, s.opts.Branch, rel)))
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i] < specs[j] })
	return specs
}

// readMarks decodes the advertised mark refs from the local store into the
// cache ReadMarks answers from. An annotated tag gives its target and
// message; a lightweight tag (made by hand) its commit and no note.
// Called with mu held.
func (s *Source) readMarks(marks map[plumbing.ReferenceName]plumbing.Hash) error {
	out := make([]source.Mark, 0, len(marks))
	for name, h := range marks {
		m := source.Mark{Name: strings.TrimPrefix(name.String(), s.markPrefix()), ID: h.String(), Revision: h.String()}
		obj, err := s.repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return fmt.Errorf("reading mark %s: %w", name, err)
		}
		if obj.Type() == plumbing.TagObject {
			tag, err := object.DecodeTag(s.repo.Storer, obj)
			if err != nil {
				return fmt.Errorf("reading mark %s: %w", name, err)
			}
			m.Revision, m.Note = tag.Target.String(), tag.Message
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	s.marks, s.listed = out, true
	return nil
}

// ReadMarks returns the marks the last Update saw whose names start with
// prefix. It does not touch the network: Update's one listing of the
// remote's refs reads the branch head and the marks together.
func (s *Source) ReadMarks(_ context.Context, prefix string) ([]source.Mark, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.listed {
		return nil, errors.New("reading marks: no head check has listed the remote's refs yet")
	}
	var out []source.Mark
	for _, m := range s.marks {
		if strings.HasPrefix(m.Name, prefix) {
			out = append(out, m)
		}
	}
	return out, nil
}

// WriteMarks pushes all writes in one receive-pack request, atomic when
// the server supports it (git http-backend, GitHub and GitLab do). Each
// command carries the old value the writer expects ("" = absent), and the
// server refuses to move a ref that is elsewhere, so the check and the
// update are one step on the server. A new mark is an annotated tag whose
// message is the mark's Note.
func (s *Source) WriteMarks(ctx context.Context, writes []source.MarkWrite) error {
	if len(writes) == 0 {
		return nil
	}
	if !s.opts.PushMarks {
		return fmt.Errorf("writing marks to %s: no push credential given: %w", s.Location(), source.ErrMarksReadOnly)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.remoteContext(ctx)
	defer cancel()

	cmds := make([]markCmd, 0, len(writes))
	var objs []plumbing.Hash
	now := time.Now()
	for _, w := range writes {
		if w.Mark.Name == "" || strings.Contains(w.Mark.Name, "..") || strings.ContainsAny(w.Mark.Name, " :*?[\\^~") {
			return fmt.Errorf("writing mark %q: not a plain name", w.Mark.Name)
		}
		c := markCmd{name: plumbing.ReferenceName(MarkRef(s.opts.Branch, w.Mark.Name))}
		if w.Old != "" {
			var err error
			if c.old, err = hashOf(w.Old); err != nil {
				return fmt.Errorf("writing mark %s: old value: %w", w.Mark.Name, err)
			}
		}
		if w.Mark.Revision != "" {
			h, err := s.newTag(w, now)
			if err != nil {
				return err
			}
			c.new = h
			objs = append(objs, h)
		}
		cmds = append(cmds, c)
	}

	ep, err := transport.NewEndpoint(s.opts.URL)
	if err != nil {
		return fmt.Errorf("writing marks: parsing repository URL: %w", err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return fmt.Errorf("writing marks: %w", err)
	}
	sess, err := cl.NewReceivePackSession(ep, s.pushAuth)
	if err != nil {
		return s.pushErr(err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return s.pushErr(err)
	}
	// Check the expected values here too, for a clear message; the server
	// checks them again under its ref lock.
	for _, c := range cmds {
		if cur := ar.References[c.name.String()]; cur != c.old {
			return fmt.Errorf("writing %s: it is at %s, expected %s: %w", c.name, orAbsent(cur), orAbsent(c.old), source.ErrMarkConflict)
		}
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	if len(cmds) > 1 && ar.Capabilities.Supports(capability.Atomic) {
		_ = req.Capabilities.Set(capability.Atomic)
	}
	for _, c := range cmds {
		if c.new.IsZero() && !ar.Capabilities.Supports(capability.DeleteRefs) {
			return fmt.Errorf("deleting %s: the server does not support deleting refs", c.name)
		}
		req.Commands = append(req.Commands, &packp.Command{Name: c.name, Old: c.old, New: c.new})
	}
	if len(objs) > 0 {
		var pack bytes.Buffer
		if _, err := packfile.NewEncoder(&pack, s.repo.Storer, !ar.Capabilities.Supports(capability.OFSDelta)).Encode(objs, 0); err != nil {
			return fmt.Errorf("packing marks: %w", err)
		}
		req.Packfile = io.NopCloser(&pack)
	}
	rs, err := sess.ReceivePack(ctx, req)
	if err == nil && rs != nil {
		err = rs.Error()
	}
	if err != nil {
		// go-git returns the server's refusal of a command as the error
		// too ("command error on <ref>: <reason>").
		if rs != nil && rs.Error() != nil {
			return s.refusedErr(rs.Error())
		}
		return s.pushErr(err)
	}
	// The cache follows what was written, until the next listing.
	s.applyWrites(writes, cmds)
	return nil
}

// markCmd is one ref update of a push of marks.
type markCmd struct {
	name     plumbing.ReferenceName
	old, new plumbing.Hash
}

// applyWrites makes the cache show what a push wrote. Called with mu held.
func (s *Source) applyWrites(writes []source.MarkWrite, cmds []markCmd) {
	for i, w := range writes {
		s.marks = removeMark(s.marks, w.Mark.Name)
		if cmds[i].new.IsZero() {
			continue
		}
		m := w.Mark
		m.ID = cmds[i].new.String()
		s.marks = append(s.marks, m)
	}
	sort.Slice(s.marks, func(i, j int) bool { return s.marks[i].Name < s.marks[j].Name })
}

func removeMark(ms []source.Mark, name string) []source.Mark {
	out := ms[:0]
	for _, m := range ms {
		if m.Name != name {
			out = append(out, m)
		}
	}
	return out
}

// newTag stores an annotated tag object for w and returns its hash. The
// commit it points at must be local. Called with mu held.
func (s *Source) newTag(w source.MarkWrite, now time.Time) (plumbing.Hash, error) {
	target, err := hashOf(w.Mark.Revision)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing mark %s: %w", w.Mark.Name, err)
	}
	if _, err := s.repo.CommitObject(target); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing mark %s: commit %s is not local: %w", w.Mark.Name, short(target), source.ErrUnknownRevision)
	}
	by := w.By
	if by == "" {
		by = "gitgate"
	}
	name, email := by, ""
	if n, e, ok := strings.Cut(by, " <"); ok {
		name, email = n, strings.TrimSuffix(e, ">")
	}
	note := w.Mark.Note
	if !strings.HasSuffix(note, "\n") {
		note += "\n"
	}
	tag := &object.Tag{
		Name:       strings.TrimPrefix(MarkRef(s.opts.Branch, w.Mark.Name), "refs/tags/"),
		Tagger:     object.Signature{Name: name, Email: email, When: now},
		Message:    note,
		TargetType: plumbing.CommitObject,
		Target:     target,
	}
	obj := s.repo.Storer.NewEncodedObject()
	if err := tag.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encoding mark %s: %w", w.Mark.Name, err)
	}
	h, err := s.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("storing mark %s: %w", w.Mark.Name, err)
	}
	return h, nil
}

// pushErr classifies a failure to talk to receive-pack: refused
// credentials mean this source may not write marks.
func (s *Source) pushErr(err error) error {
	err = s.red.wrap(fmt.Errorf("pushing marks to %s: %w", s.Location(), err))
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) {
		return fmt.Errorf("%w: %w", source.ErrMarksReadOnly, err)
	}
	return err
}

// refusedErr classifies a status report with refused commands: a ref that
// moved under the push is a conflict; anything else (a protected-tag rule,
// a hook) means this source may not write these marks.
func (s *Source) refusedErr(err error) error {
	msg := err.Error()
	for _, hint := range []string{"lock", "stale", "already exists", "expected", "atomic"} {
		if strings.Contains(msg, hint) {
			return fmt.Errorf("pushing marks to %s: %v: %w", s.Location(), msg, source.ErrMarkConflict)
		}
	}
	return fmt.Errorf("pushing marks to %s: the server refused: %v: %w", s.Location(), msg, source.ErrMarksReadOnly)
}

func orAbsent(h plumbing.Hash) string {
	if h.IsZero() {
		return "absent"
	}
	return short(h)
}

// IsLocal reports whether url is a local path or a file:// URL, where
// the file system's permissions decide who may push.
func IsLocal(url string) bool {
	ep, err := transport.NewEndpoint(url)
	return err == nil && ep.Protocol == "file"
}
