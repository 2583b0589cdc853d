package diff

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"

	"github.com/gitgate/gitgate/schemas"
)

// Kind is the kind of config entry a Change is about.
type Kind string

// Kinds, in the order a plan lists them.
const (
	KindRoute    Kind = "route"
	KindUpstream Kind = "upstream"
	KindPolicy   Kind = "policy"
	// KindSafety is the top-level safety section, one entry named
	// "safety"; a route's own safety fields are fields of the route.
	KindSafety Kind = "safety"
)

// kindOrder ranks kinds for sorting.
func kindOrder(k Kind) int {
	switch k {
	case KindRoute:
		return 0
	case KindUpstream:
		return 1
	case KindPolicy:
		return 2
	case KindSafety:
		return 3
	}
	return 4
}

// Action is what a change does to an entry.
type Action string

// Actions of a Change.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Sensitive is shown in place of every value that could be a secret.
const Sensitive = "(sensitive)"

// Field is one changed field of an entry. Old is empty when the field was
// unset before, New is empty when it is unset after (the config types treat
// a zero value as unset, so "" and absent are the same thing).
type Field struct {
	// Path is the dotted field path inside the entry, such as
	// "match.hosts" or "requestHeaders.set.X-Env".
	Path string `json:"path"`
	// Old is the readable value before the change, masked if sensitive.
	Old string `json:"old,omitempty"`
	// New is the readable value after the change, masked if sensitive.
	New string `json:"new,omitempty"`
	// Note summarizes the change when old -> new would not read well:
	// "stable 90→75, canary 10→25", "attached rate-limit".
	Note string `json:"note,omitempty"`
}

// Change is one entry created, updated or deleted.
type Change struct {
	// Action is create, update or delete.
	Action Action `json:"-"`
	// Kind is route, upstream or policy.
	Kind Kind `json:"kind"`
	// Name is the entry's key in the config.
	Name string `json:"name"`
	// Fields are the changed fields, sorted by path. For a create they are
	// the entry's fields that differ from their defaults; for a delete they
	// are empty.
	Fields []Field `json:"fields,omitempty"`
}

// Plan is the set of changes between two configs, ordered by kind (route,
// upstream, policy) and then by name. The zero Plan is empty.
type Plan struct {
	// Changes are sorted by kind, then name.
	Changes []Change
	// Warnings are settings of the new config that weaken security, one
	// sentence each, sorted: an upstream with tls.insecureSkipVerify. They
	// are shown with every non-empty plan, changed or not, so the opt-in
	// never goes quiet.
	Warnings []string
}

// Counts are numbers of changes per action.
type Counts struct {
	Create int `json:"create"`
	Update int `json:"update"`
	Delete int `json:"delete"`
}

// Total is the sum of the three actions.
func (c Counts) Total() int { return c.Create + c.Update + c.Delete }

func (c *Counts) add(a Action) {
	switch a {
	case ActionCreate:
		c.Create++
	case ActionUpdate:
		c.Update++
	case ActionDelete:
		c.Delete++
	}
}

// Summary counts a plan's changes per kind and action.
type Summary struct {
	Routes    Counts `json:"routes"`
	Upstreams Counts `json:"upstreams"`
	Policies  Counts `json:"policies"`
	Total     Counts `json:"total"`
}

// Compute returns the plan that turns old into new. Either may be nil, which
// is the same as an empty config. Both are expected to be validated and
// defaulted the same way, so that a default filled on one side does not show
// up as a change.
func Compute(old, new *schemas.Config) *Plan {
	if old == nil {
		old = &schemas.Config{}
	}
	if new == nil {
		new = &schemas.Config{}
	}
	p := &Plan{}
	p.Changes = append(p.Changes, compareKind(KindRoute, old.Routes, new.Routes, routeLeaves, routeDefaults)...)
	p.Changes = append(p.Changes, compareKind(KindUpstream, old.Upstreams, new.Upstreams, upstreamLeaves, upstreamDefaults)...)
	p.Changes = append(p.Changes, compareKind(KindPolicy, old.Policies, new.Policies, policyLeaves, policyDefaults)...)
	p.Changes = append(p.Changes, compareKind(KindSafety, safetyEntry(old), safetyEntry(new), safetyLeaves, safetyDefaults)...)
	if len(p.Changes) > 0 {
		p.Warnings = insecureSettings(new)
	}
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if a.Kind != b.Kind {
			return kindOrder(a.Kind) < kindOrder(b.Kind)
		}
		return a.Name < b.Name
	})
	return p
}

// warnings returns p.Warnings; nil for a nil plan.
func (p *Plan) warnings() []string {
	if p == nil {
		return nil
	}
	return p.Warnings
}

// insecureSettings lists the settings of cfg that weaken security.
func insecureSettings(cfg *schemas.Config) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Upstreams)) {
		if t := cfg.Upstreams[name].TLS; t != nil && t.InsecureSkipVerify {
			out = append(out, fmt.Sprintf("upstream %s has tls.insecureSkipVerify: the certificates of its targets are not verified", name))
		}
	}
	return out
}

// compareKind diffs one map of entries. leaves flattens one entry; defaults
// flattens the defaults an entry like the given one gets when a field is
// left unset, so that a created entry lists only what its author chose.
func compareKind[T any](kind Kind, old, new map[string]T, leaves, defaults func(*T) []leaf) []Change {
	var out []Change
	for name, o := range old {
		n, ok := new[name]
		if !ok {
			out = append(out, Change{Action: ActionDelete, Kind: kind, Name: name})
			continue
		}
		if reflect.DeepEqual(o, n) {
			continue // the common case in a large config: skip flattening
		}
		if fields := diffLeaves(leaves(&o), leaves(&n)); len(fields) > 0 {
			out = append(out, Change{Action: ActionUpdate, Kind: kind, Name: name, Fields: fields})
		}
	}
	for name, n := range new {
		if _, ok := old[name]; ok {
			continue
		}
		out = append(out, Change{Action: ActionCreate, Kind: kind, Name: name, Fields: diffLeaves(nil, withoutDefaults(leaves(&n), defaults(&n)))})
	}
	return out
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return p == nil || len(p.Changes) == 0 }

// Summary counts the plan's changes.
func (p *Plan) Summary() Summary {
	var s Summary
	if p == nil {
		return s
	}
	for _, c := range p.Changes {
		switch c.Kind {
		case KindRoute:
			s.Routes.add(c.Action)
		case KindUpstream:
			s.Upstreams.add(c.Action)
		case KindPolicy:
			s.Policies.add(c.Action)
		}
		s.Total.add(c.Action)
	}
	return s
}

// jsonPlan is the wire shape of a plan.
type jsonPlan struct {
	Changes struct {
		Create []Change `json:"create"`
		Update []Change `json:"update"`
		Delete []Change `json:"delete"`
	} `json:"changes"`
	Summary Summary `json:"summary"`
	// Warnings is Plan.Warnings; absent when there are none.
	Warnings []string `json:"warnings,omitempty"`
}

// MarshalJSON writes the plan as
// {"changes":{"create":[…],"update":[…],"delete":[…]},"summary":{…}}, each
// list ordered by kind then name and never null.
func (p *Plan) MarshalJSON() ([]byte, error) {
	var j jsonPlan
	j.Changes.Create, j.Changes.Update, j.Changes.Delete = []Change{}, []Change{}, []Change{}
	if p != nil {
		for _, c := range p.Changes {
			switch c.Action {
			case ActionCreate:
				j.Changes.Create = append(j.Changes.Create, c)
			case ActionUpdate:
				j.Changes.Update = append(j.Changes.Update, c)
			case ActionDelete:
				j.Changes.Delete = append(j.Changes.Delete, c)
			}
		}
	}
	j.Summary = p.Summary()
	if p != nil {
		j.Warnings = p.Warnings
	}
	return json.Marshal(j)
}

// JSON returns the plan's JSON encoding, indented for people.
func (p *Plan) JSON() ([]byte, error) {
	if p == nil {
		p = &Plan{}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
