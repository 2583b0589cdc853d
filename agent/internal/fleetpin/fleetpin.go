package fleetpin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gitgate/gitgate/agent/internal/source"
)

// Mark names.
const (
	// PinName is the mark of the pin.
	PinName = "pin"
	// BadPrefix starts the mark of each bad revision: "bad/<rev>".
	BadPrefix = "bad/"
)

// Pin is the fleet's pin, as its mark's note carries it.
type Pin struct {
	// SHA is the pinned revision.
	SHA string `json:"sha"`
	// From is the revision rolled back from; "" when none.
	From string `json:"from,omitempty"`
	// BranchHead is the branch tip when the pin was set; a new good commit
	// past it lifts the pin unless Hold.
	BranchHead string `json:"branchHead,omitempty"`
	// Hold keeps the pin until resume.
	Hold bool `json:"hold,omitempty"`
	// Reason is why.
	Reason string `json:"reason,omitempty"`
	// By is who ("name <email>", user@host).
	By string `json:"by,omitempty"`
	// At is when.
	At time.Time `json:"at"`
}

// Bad is a bad mark's note.
type Bad struct {
	// SHA is the revision marked bad.
	SHA string `json:"sha"`
	// Reason is why.
	Reason string `json:"reason,omitempty"`
	// By is who.
	By string `json:"by,omitempty"`
	// At is when.
	At time.Time `json:"at"`
}

// State is the rollback state read from a source's marks.
type State struct {
	// Pin is the pin; nil when there is none.
	Pin *Pin
	// PinID is the pin mark's ID, for a compare-and-swap; "" when none.
	PinID string
	// Bad holds the revisions marked bad, by revision.
	Bad map[string]Bad
}

// IsBad reports whether rev is marked bad.
func (s State) IsBad(rev string) bool {
	_, ok := s.Bad[rev]
	return ok
}

// Read decodes the marks of a source (all of them, as ReadMarks(ctx, "")
// returns). A pin whose note is not ours (a tag made by hand with
// `git tag`) pins its revision and holds until deleted: nothing says when
// it would lift.
func Read(ms []source.Mark) State {
	st := State{Bad: map[string]Bad{}}
	for _, m := range ms {
		switch {
		case m.Name == PinName:
			p := Pin{}
			if err := decode(m.Note, &p); err != nil || p.SHA != m.Revision {
				subject, _, _ := strings.Cut(strings.TrimSpace(m.Note), "\n")
				p = Pin{SHA: m.Revision, Hold: true, Reason: subject}
			}
			st.Pin, st.PinID = &p, m.ID
		case strings.HasPrefix(m.Name, BadPrefix):
			rev := strings.TrimPrefix(m.Name, BadPrefix)
			b := Bad{}
			if err := decode(m.Note, &b); err != nil || b.SHA != rev {
				subject, _, _ := strings.Cut(strings.TrimSpace(m.Note), "\n")
				b = Bad{SHA: rev, Reason: subject}
			}
			st.Bad[rev] = b
		}
	}
	return st
}

// decode reads the JSON object after the note's subject.
func decode(note string, v any) error {
	i := strings.Index(note, "\n{")
	if i < 0 {
		return fmt.Errorf("no JSON in the note")
	}
	return json.Unmarshal([]byte(note[i+1:]), v)
}

func encode(subject string, v any) string {
	b, _ := json.Marshal(v) // plain structs: cannot fail
	return subject + "\n\n" + string(b) + "\n"
}

// PinNote is the note of a pin mark.
func PinNote(p Pin) string {
	subject := "gitgate: pinned to " + source.Short(p.SHA)
	if p.From != "" {
		subject += ", rolled back from " + source.Short(p.From)
	}
	if p.Reason != "" {
		subject += ": " + firstLine(p.Reason)
	}
	return encode(subject, p)
}

// BadNote is the note of a bad mark.
func BadNote(b Bad) string {
	subject := "gitgate: " + source.Short(b.SHA) + " is bad"
	if b.Reason != "" {
		subject += ": " + firstLine(b.Reason)
	}
	return encode(subject, b)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// Set writes pin p in one request: the pin, compare-and-swapped against
// cur's pin (so two rollbacks cannot interleave: the later one fails with
// source.ErrMarkConflict), and the bad mark of p.From when it has none.
// It returns the new state's pin ID.
func Set(ctx context.Context, w source.Marks, cur State, p Pin) (string, error) {
	writes := []source.MarkWrite{{Mark: source.Mark{Name: PinName, Revision: p.SHA, Note: PinNote(p)}, Old: cur.PinID, By: p.By}}
	if p.From != "" && !cur.IsBad(p.From) {
		b := Bad{SHA: p.From, Reason: p.Reason, By: p.By, At: p.At}
		writes = append(writes, source.MarkWrite{Mark: source.Mark{Name: BadPrefix + p.From, Revision: p.From, Note: BadNote(b)}, By: p.By})
	}
	if err := w.WriteMarks(ctx, writes); err != nil {
		return "", fmt.Errorf("writing the pin to %s: %w", source.Short(p.SHA), err)
	}
	ms, err := w.ReadMarks(ctx, PinName)
	if err != nil || len(ms) != 1 {
		return "", fmt.Errorf("reading the pin back: %v marks, %w", len(ms), err)
	}
	return ms[0].ID, nil
}

// Lift deletes the pin whose ID is id. When another writer deleted or
// replaced it first, the error wraps source.ErrMarkConflict.
func Lift(ctx context.Context, w source.Marks, id string) error {
	if err := w.WriteMarks(ctx, []source.MarkWrite{{Mark: source.Mark{Name: PinName}, Old: id}}); err != nil {
		return fmt.Errorf("deleting the pin: %w", err)
	}
	return nil
}
