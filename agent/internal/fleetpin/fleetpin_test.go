package fleetpin

import (
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/agent/internal/source"
)

func TestRead(t *testing.T) {
	t.Parallel()
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	at := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	written := Pin{SHA: a, From: b, BranchHead: b, Reason: "checkout broke\nsee incident 7", By: "ops@host", At: at}
	tests := []struct {
		name     string
		marks    []source.Mark
		wantPin  *Pin
		wantBad  map[string]string // rev -> reason
		wantPinI string
	}{
		{name: "none", wantBad: map[string]string{}},
		{
			name: "written by gitgate",
			marks: []source.Mark{
				{Name: PinName, Revision: a, Note: PinNote(written), ID: "t1"},
				{Name: BadPrefix + b, Revision: b, Note: BadNote(Bad{SHA: b, Reason: "5xx", At: at})},
			},
			wantPin: &written, wantPinI: "t1", wantBad: map[string]string{b: "5xx"},
		},
		{
			name:    "made by hand: holds until deleted",
			marks:   []source.Mark{{Name: PinName, Revision: a, Note: "incident 7\n", ID: "t2"}, {Name: BadPrefix + b, Revision: b}},
			wantPin: &Pin{SHA: a, Hold: true, Reason: "incident 7"}, wantPinI: "t2", wantBad: map[string]string{b: ""},
		},
		{
			name:    "a note for another commit is not trusted",
			marks:   []source.Mark{{Name: PinName, Revision: b, Note: PinNote(written), ID: "t3"}},
			wantPin: &Pin{SHA: b, Hold: true, Reason: strings.SplitN(PinNote(written), "\n", 2)[0]}, wantPinI: "t3", wantBad: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := Read(tc.marks)
			if (st.Pin == nil) != (tc.wantPin == nil) || (st.Pin != nil && *st.Pin != *tc.wantPin) || st.PinID != tc.wantPinI {
				t.Fatalf("pin = %+v (%q), want %+v (%q)", st.Pin, st.PinID, tc.wantPin, tc.wantPinI)
			}
			if len(st.Bad) != len(tc.wantBad) {
				t.Fatalf("bad = %+v, want %v", st.Bad, tc.wantBad)
			}
			for rev, reason := range tc.wantBad {
				if !st.IsBad(rev) || st.Bad[rev].Reason != reason {
					t.Fatalf("bad[%s] = %+v, want reason %q", rev, st.Bad[rev], reason)
				}
			}
		})
	}
	if !strings.HasPrefix(PinNote(written), "gitgate: pinned to aaaaaaaaaaaa, rolled back from bbbbbbbbbbbb: checkout broke\n\n{") {
		t.Fatalf("note subject: %q", PinNote(written))
	}
}
