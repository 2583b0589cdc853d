package cache

import (
	"container/list"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// DefaultMaxBytes is the memory bound of a Store whose Options leave it 0.
const DefaultMaxBytes = 64 << 20

// entryOverhead is what an entry costs beyond its key, headers and body:
// the entry, its list element and map slots, rounded up.
const entryOverhead = 256

// maxMetaBytes bounds the headers and key of an entry, as maxEntryBytes
// bounds its body: an upstream's headers, or a client's value of a key or
// Vary header (up to the listener's header limit), do not make one entry
// large.
const maxMetaBytes = 64 << 10

// Options configure a Store.
type Options struct {
	// MaxBytes bounds the memory of all entries of all routes together;
	// the least recently used entries go first. 0: DefaultMaxBytes.
	MaxBytes int64
	// Registry receives the cache's metrics. Nil: no metrics.
	Registry prometheus.Registerer
	// Logger receives events.
	Logger zerolog.Logger
	// Credentialed reports whether the request w answers was
	// authenticated by a policy of its route (an API key, a jwt in any
	// header): such a request is treated like one with Authorization (RFC
	// 9111 §3.5), so that one consumer's answer is never served to another
	// unless the upstream marks it shareable. The policies run before the
	// cache and may strip the credential (an API key is not forwarded), so
	// they say so on the request's observation. Nil: never.
	Credentialed func(w http.ResponseWriter) bool
}

// Store holds the cached responses of every route in one LRU list bounded
// in bytes, and the misses in flight. It lives as long as the process;
// the handlers of each snapshot (Store.Wrap) share it. Its methods are
// safe for concurrent use.
type Store struct {
	max int64
	m   *metrics
	log zerolog.Logger
	now func() time.Time
	// credentialed is Options.Credentialed.
	credentialed func(http.ResponseWriter) bool

	mu      sync.Mutex
	used    int64
	lru     list.List           // of *entry, most recently used first
	entries map[string]*entry   // by full key (primary key and Vary values)
	groups  map[string]*group   // by primary key
	flights map[string]*flight  // misses in flight, by primary key
	live    map[string]struct{} // namespaces kept by the last Retain; nil before it
}

// group is what the entries of one primary key share: the request headers
// their responses vary on, and how many entries there are.
type group struct {
	vary []string // canonical names, sorted
	n    int
}

// entry is one stored response.
type entry struct {
	ns, pk, key string
	status      int
	header      http.Header
	body        []byte
	stored      time.Time     // when the response arrived
	initialAge  time.Duration // its Age on arrival
	lifetime    time.Duration // its freshness lifetime
	authOK      bool          // may answer a request with Authorization
	size        int64
	elem        *list.Element
}

// age is the entry's current age (RFC 9111 section 4.2.3, simplified:
// the upstream is on the gateway's clock).
func (e *entry) age(now time.Time) time.Duration {
	return e.initialAge + max(0, now.Sub(e.stored))
}

// New returns an empty Store.
func New(opts Options) (*Store, error) {
	s := &Store{
		max: opts.MaxBytes,
		log: opts.Logger.With().Str("component", "cache").Logger(),
		now: time.Now,
		// An identity policy marks the requests it authenticated.
		credentialed: opts.Credentialed,
		entries:      map[string]*entry{},
		groups:       map[string]*group{},
		flights:      map[string]*flight{},
	}
	if s.max <= 0 {
		s.max = DefaultMaxBytes
	}
	if opts.Registry != nil {
		m, err := newMetrics(opts.Registry, s)
		if err != nil {
			return nil, err
		}
		s.m = m
	}
	return s, nil
}

// Stats is the Store's state, for the status.
type Stats struct {
	Entries  int   `json:"entries"`
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"maxBytes"`
}

// Stats returns the number of entries and the bytes they hold.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Entries: len(s.entries), Bytes: s.used, MaxBytes: s.max}
}

// Retain keeps the entries of the namespaces listed (as Wrap returned
// them) and drops every other entry; from now on, a response of another
// namespace (a replaced snapshot's request still in flight) is not stored.
func (s *Store) Retain(namespaces []string) {
	live := make(map[string]struct{}, len(namespaces))
	routes := map[string]struct{}{}
	for _, ns := range namespaces {
		live[ns] = struct{}{}
		routes[routeOf(ns)] = struct{}{}
	}
	s.mu.Lock()
	var gone []string
	for _, e := range s.entries {
		if _, ok := live[e.ns]; !ok {
			s.remove(e)
		}
	}
	for ns := range s.live {
		if _, ok := routes[routeOf(ns)]; !ok {
			gone = append(gone, routeOf(ns))
		}
	}
	s.live = live
	s.mu.Unlock()
	for _, r := range gone {
		s.m.forget(r)
	}
}

// routeOf returns the route name of a namespace.
func routeOf(ns string) string {
	name, _, _ := strings.Cut(ns, "\x00")
	return name
}

// get returns the entry of primary key pk that matches r's Vary headers,
// nil when there is none, and marks it used.
func (s *Store) get(pk string, h http.Header) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[pk]
	if g == nil {
		return nil
	}
	e := s.entries[pk+varyKey(g.vary, h)]
	if e != nil {
		s.lru.MoveToFront(e.elem)
	}
	return e
}

// put stores e, made from a response that varies on vary, for request
// headers h; it replaces the entry of the same key and evicts the least
// recently used entries beyond the bound. It reports whether e is stored.
func (s *Store) put(e *entry, vary []string, h http.Header) bool {
	e.key = e.pk + varyKey(vary, h)
	e.pk = e.key[:len(e.pk)] // one copy of the key is kept, and counted
	meta := int64(len(e.key)) + headerSize(e.header)
	e.size = meta + int64(len(e.body)) + entryOverhead
	if e.size > s.max || meta > maxMetaBytes {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[e.ns]; !ok {
		return false // a route of a replaced or not yet applied snapshot
	}
	if old := s.entries[e.key]; old != nil {
		s.remove(old)
	}
	g := s.groups[e.pk]
	if g == nil {
		g = &group{}
		s.groups[e.pk] = g
	}
	g.vary = vary
	g.n++
	e.elem = s.lru.PushFront(e)
	s.entries[e.key] = e
	s.used += e.size
	for s.used > s.max {
		s.remove(s.lru.Back().Value.(*entry))
		s.m.evicted()
	}
	return true
}

// remove drops e; s.mu is held.
func (s *Store) remove(e *entry) {
	if s.entries[e.key] != e {
		return
	}
	delete(s.entries, e.key)
	s.lru.Remove(e.elem)
	s.used -= e.size
	if g := s.groups[e.pk]; g != nil {
		if g.n--; g.n <= 0 {
			delete(s.groups, e.pk)
		}
	}
}

// drop removes e if it is still stored (an expired entry).
func (s *Store) drop(e *entry) {
	s.mu.Lock()
	s.remove(e)
	s.mu.Unlock()
}

// varyKey is the part of a full key made of the request's values of the
// headers named in vary.
func varyKey(vary []string, h http.Header) string {
	// A Vary of many names (a stored answer's can list thousands, in its
	// 64 KiB of headers) indexes h's keys by CGI name once, instead of
	// walking h for each name: that was quadratic, under the store's
	// lock, with a client sending thousands of headers.
	return varyKeyBy(vary, h, len(vary) > varyScanMax)
}

// varyKeyBy is varyKey, finding the other spellings of each name through
// an index of h (index) or by walking h for each name.
func varyKeyBy(vary []string, h http.Header, index bool) string {
	if len(vary) == 0 {
		return ""
	}
	var byCGI map[string][]string
	if index {
		byCGI = make(map[string][]string, len(h))
		for k := range h {
			c := headers.CGIName(k)
			byCGI[c] = append(byCGI[c], k)
		}
	}
	var b strings.Builder
	for _, name := range vary {
		b.WriteString("\x01")
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range h[name] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.TrimSpace(v))
		}
		writeAliases(&b, h, name, byCGI)
	}
	return b.String()
}

// varyScanMax is the most Vary names for which varyKey walks the request
// header once per name rather than indexing it.
const varyScanMax = 4

// writeAliases writes the values of the other spellings of the header
// name in h that CGI-style servers (Puma, WEBrick, PHP, WSGI) read under
// the same variable (X_Tenant for X-Tenant), in a stable order: the
// upstream may read them as name, so they are part of a key on name.
// byCGI, when not nil, holds h's keys by their CGI name; without it h is
// walked.
func writeAliases(b *strings.Builder, h http.Header, name string, byCGI map[string][]string) {
	var aliases []string
	if byCGI != nil {
		for _, k := range byCGI[headers.CGIName(name)] {
			if k != name {
				aliases = append(aliases, k)
			}
		}
	} else {
		for k := range h {
			if k != name && len(k) == len(name) && headers.SameCGIName(k, name) {
				aliases = append(aliases, k)
			}
		}
	}
	slices.Sort(aliases)
	for _, k := range aliases {
		b.WriteString("\x02")
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(strings.Join(h[k], ","))
	}
}

// parseVary returns the canonical, sorted names of a Vary field, and
// whether it holds "*".
func parseVary(vs []string) (names []string, star bool) {
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			switch f {
			case "":
			case "*":
				star = true
			default:
				names = append(names, http.CanonicalHeaderKey(f))
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), star
}

// headerSize estimates the memory of h.
func headerSize(h http.Header) int64 {
	n := int64(0)
	for k, vs := range h {
		n += int64(len(k)) + 32
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// flight is a miss in flight: one upstream request that the requests of
// the same primary key wait for instead of sending their own.
type flight struct {
	done   chan struct{}
	res    *entry // set before done is closed; nil when not shareable
	refs   int    // the leader and the waiters still interested; s.mu
	cancel context.CancelFunc
}

// join returns the flight of pk and whether the caller leads it (a new
// flight). A flight whose every party left (refs 0, its fetch cancelled)
// is not joined: the caller starts a new one.
func (s *Store) join(pk string, cancel context.CancelFunc) (*flight, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.flights[pk]; f != nil && f.refs > 0 {
		f.refs++
		return f, false
	}
	f := &flight{done: make(chan struct{}), refs: 1, cancel: cancel}
	s.flights[pk] = f
	return f, true
}

// release says that one party of f lost interest; when none is left, the
// leader's fetch is cancelled.
func (s *Store) release(f *flight) {
	s.mu.Lock()
	f.refs--
	last := f.refs == 0
	s.mu.Unlock()
	if last {
		f.cancel()
	}
}

// finish ends f with res (nil: the waiters fetch on their own).
func (s *Store) finish(pk string, f *flight, res *entry) {
	s.mu.Lock()
	if s.flights[pk] == f {
		delete(s.flights, pk)
	}
	s.mu.Unlock()
	f.res = res
	close(f.done)
}
