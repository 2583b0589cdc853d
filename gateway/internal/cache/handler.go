package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
)

// StatusHeader is the response header that says what the cache did, in
// the form of RFC 9211 (Cache-Status) with the cache named Name: "gitgate;
// hit; ttl=N" for a fresh entry, "gitgate; fwd=uri-miss" for a miss,
// "gitgate; fwd=uri-miss; collapsed" for a request that waited for a miss
// in flight and got its response, "gitgate; fwd=stale" for an expired
// entry, "gitgate; fwd=request" when the request's own Cache-Control sent
// it upstream, and "gitgate; fwd=bypass" for a request the cache does not
// handle. An upstream's own Cache-Status members come first.
const StatusHeader = "Cache-Status"

// Name is the cache's name in StatusHeader.
const Name = "gitgate"

var bodyNotCached = reply.New("not_cached", "only-if-cached: no fresh response is stored", "")

// Wrap returns next behind the cache of route name when spec has one, and
// the namespace of its entries (for Retain); next and "" otherwise. The
// namespace changes with anything that changes what the route would
// store: its cache settings, match, backends, rewrite and header edits.
// spec is defaulted.
func (s *Store) Wrap(name string, spec schemas.Route, next http.Handler) (http.Handler, string) {
	c := spec.Cache
	if c == nil || s == nil {
		return next, ""
	}
	ns := name + "\x00" + fingerprint(spec)
	h := &handler{
		store: s, next: next, ns: ns,
		ttl: c.TTL.D(), maxTTL: c.MaxTTL.D(), maxEntry: c.MaxEntryBytes,
		wait: spec.Timeout.D(), counters: s.m.route(name),
		get: slices.Contains(c.Methods, http.MethodGet), head: slices.Contains(c.Methods, http.MethodHead),
	}
	if h.maxTTL <= 0 {
		h.maxTTL = schemas.DefaultCacheMaxTTL
	}
	if h.maxEntry <= 0 {
		h.maxEntry = schemas.DefaultCacheMaxEntryBytes
	}
	if h.wait <= 0 {
		h.wait = schemas.DefaultRouteTimeout
	}
	if k := c.Key; k != nil {
		for _, hd := range k.Headers {
			h.keyHeaders = append(h.keyHeaders, http.CanonicalHeaderKey(hd))
		}
		h.keyQuery = k.Query
		h.someQuery = k.Query != nil
	}
	return h, ns
}

// fingerprint digests the fields of a route that decide what it stores.
func fingerprint(r schemas.Route) string {
	b, _ := json.Marshal(struct {
		Cache           *schemas.RouteCache
		Match           schemas.Match
		Backends        []schemas.Backend
		Rewrite         *schemas.Rewrite
		RequestHeaders  *schemas.HeaderOps
		ResponseHeaders *schemas.HeaderOps
	}{r.Cache, r.Match, r.Backends, r.Rewrite, r.RequestHeaders, r.ResponseHeaders})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// handler is one route's cache in front of its proxy.
type handler struct {
	store      *Store
	next       http.Handler
	ns         string
	ttl        time.Duration
	maxTTL     time.Duration
	maxEntry   int64
	wait       time.Duration // longest a request waits for a miss in flight
	get, head  bool
	keyHeaders []string
	keyQuery   []string
	someQuery  bool // keyQuery applies (even when empty: no query in the key)
	counters   *routeCounters
}

// authorized reports whether r came with a credential: an Authorization
// header, a Cookie (a session, as Varnish's built-in rules assume: an
// upstream that answers by session rarely says private), a TLS client
// certificate (whose subject the gateway passes upstream), or one of the
// route's own seen before its policies ran.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if len(r.Header["Authorization"]) > 0 || len(r.Header["Cookie"]) > 0 {
		return true
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return true
	}
	return h.store.credentialed != nil && h.store.credentialed(w)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.handles(r) {
		h.counters.inc(countBypass)
		if len(r.Header["Upgrade"]) > 0 {
			h.next.ServeHTTP(w, r) // a protocol switch gets the writer as it is
			return
		}
		h.next.ServeHTTP(&recorder{ResponseWriter: w, over: true, status: "fwd=bypass"}, r)
		return
	}
	cc := requestDirectives(r.Header)
	auth := h.authorized(w, r)
	pk := h.primaryKey(r)
	fwd := "fwd=uri-miss"
	if cc.noCache || cc.maxAge == 0 || originPrecondition(r.Header) {
		fwd = "fwd=request"
	} else if e := h.store.get(pk, r.Header); e != nil {
		now := h.store.now()
		age := e.age(now)
		switch {
		case age >= e.lifetime:
			h.store.drop(e)
			fwd = "fwd=stale"
		case cc.maxAge > 0 && age > time.Duration(cc.maxAge)*time.Second:
			fwd = "fwd=request"
		case auth && !e.authOK:
			fwd = "fwd=request"
		default:
			h.counters.inc(countHit)
			// ttl and Age are whole seconds that add up to the lifetime.
			left := int64(e.lifetime/time.Second) - int64(age/time.Second)
			serve(w, r, e, age, "hit; ttl="+strconv.FormatInt(left, 10))
			return
		}
	}
	if cc.onlyIfCached {
		h.counters.inc(countMiss)
		reply.Write(w, http.StatusGatewayTimeout, bodyNotCached)
		return
	}
	h.counters.inc(countMiss)
	switch {
	case r.Method == http.MethodHead || cc.noStore || conditional(r.Header):
		// Nothing to store: a HEAD has no body, a no-store request may
		// not be kept, and the answer to a conditional one may be a 304.
		h.next.ServeHTTP(&recorder{ResponseWriter: w, over: true, status: fwd}, r)
	case auth || fwd == "fwd=request":
		// Alone: an authorized request's response is shared only when it
		// says so, and a request that asked for a fresh response does
		// not take one that a waiter would have to share.
		h.fetch(w, r, pk, fwd, auth, nil)
	default:
		h.coalesce(w, r, pk, fwd)
	}
}

// overrideHeaders are the headers by which frameworks (Express's
// method-override, Symfony, ASP.NET, Google's APIs) let a GET act as
// another method: such a request's answer is not the GET's.
var overrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// handles reports whether the cache deals with r at all: a method it
// caches, no body (nor one of unknown length, as HTTP/2 gives a request
// whose HEADERS do not end the stream), no method override, no range, no
// protocol switch.
func (h *handler) handles(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet:
		if !h.get {
			return false
		}
	case http.MethodHead:
		if !h.head {
			return false
		}
	default:
		return false
	}
	hd := r.Header
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || len(hd["Range"]) > 0 || len(hd["Upgrade"]) > 0 {
		return false
	}
	for _, k := range overrideHeaders {
		if len(hd[k]) > 0 {
			return false
		}
	}
	raw := r.URL.RawQuery
	return !strings.HasPrefix(raw, "_method=") && !strings.Contains(raw, "&_method=") && !strings.Contains(raw, ";_method=")
}

// requestDirectives reads a request's Cache-Control; without one, Pragma:
// no-cache counts as no-cache (RFC 9111 section 5.4).
func requestDirectives(hd http.Header) directives {
	if vs := hd["Cache-Control"]; len(vs) > 0 {
		return parseCacheControl(vs)
	}
	d := directives{maxAge: -1, sMaxAge: -1}
	for _, v := range hd["Pragma"] {
		if strings.Contains(strings.ToLower(v), "no-cache") {
			d.noCache = true
		}
	}
	return d
}

// originPrecondition reports whether a request carries a precondition
// that only the origin evaluates (RFC 9111 section 4.3.2): a stored
// response does not answer it.
func originPrecondition(hd http.Header) bool {
	return len(hd["If-Match"]) > 0 || len(hd["If-Unmodified-Since"]) > 0
}

// conditional reports whether a request carries a precondition.
func conditional(hd http.Header) bool {
	return len(hd["If-None-Match"]) > 0 || len(hd["If-Modified-Since"]) > 0 ||
		len(hd["If-Match"]) > 0 || len(hd["If-Unmodified-Since"]) > 0 || len(hd["If-Range"]) > 0
}

// forwardedKey are the forwarding headers that a trusted proxy's request
// passes to the upstream (from any other peer the proxy drops or replaces
// them), and that upstreams read to build redirects and absolute links:
// they join the key, with the scheme, so that an answer made for
// "http" or another host is not served for "https" or this one.
// X-Forwarded-For and X-Real-IP, one per client, do not.
var forwardedKey = []string{"X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Original-Url", "X-Rewrite-Url"}

// primaryKey is the namespace, scheme, host, forwarding headers, path and
// chosen query and headers of r; the method is not part of it (a HEAD is
// answered from a GET).
func (h *handler) primaryKey(r *http.Request) string {
	var b strings.Builder
	b.WriteString(h.ns)
	b.WriteByte(0)
	if r.TLS != nil {
		b.WriteString("https ")
	} else {
		b.WriteString("http ")
	}
	b.WriteString(r.Host) // as sent: the upstream may not fold its case
	b.WriteByte(0)
	for _, name := range forwardedKey {
		if vs := r.Header[name]; len(vs) > 0 {
			b.WriteString(name)
			b.WriteByte(':')
			b.WriteString(strings.Join(vs, ","))
			b.WriteByte(0)
		}
	}
	b.WriteString(r.URL.EscapedPath())
	b.WriteByte(0)
	if !h.someQuery {
		b.WriteString(r.URL.RawQuery)
	} else if len(h.keyQuery) > 0 {
		writeKeyQuery(&b, r.URL.RawQuery, h.keyQuery)
	}
	for _, name := range h.keyHeaders {
		b.WriteByte(0)
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(strings.Join(r.Header[name], ","))
		writeAliases(&b, r.Header, name, nil) // keyHeaders come from the config: few
	}
	return b.String()
}

// writeKeyQuery writes the pairs of the raw query raw whose names are
// listed in names, as they were sent (an upstream may not take "+" for a
// space), in the order of names; a name matches in any case and
// spelling (ASP.NET reads names case-insensitively). A query Go cannot
// parse (a ";", which some frameworks take for a separator, or a bad
// escape) may hide a listed pair from this reading but not from the
// upstream's: it is keyed whole.
func writeKeyQuery(b *strings.Builder, raw string, names []string) {
	if strings.IndexByte(raw, ';') >= 0 {
		b.WriteString(raw)
		return
	}
	for pair := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if _, err := url.QueryUnescape(k); err != nil {
			b.WriteString(raw)
			return
		}
	}
	for _, name := range names {
		for pair := range strings.SplitSeq(raw, "&") {
			k, _, _ := strings.Cut(pair, "=")
			if uk, _ := url.QueryUnescape(k); strings.EqualFold(uk, name) {
				b.WriteString(pair)
				b.WriteByte('&')
			}
		}
	}
}

// coalesce sends r upstream as the one request of its key in flight, or
// waits for the one in flight and answers with its response when that
// response may be shared and fits r's Vary headers. A waiter that waited
// longer than the route's timeout, or whose miss brought nothing to
// share, sends its own request.
func (h *handler) coalesce(w http.ResponseWriter, r *http.Request, pk, fwd string) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	f, leader := h.store.join(pk, cancel)
	if leader {
		var res *entry
		defer func() { h.store.finish(pk, f, res) }() // deferred: also when the proxy panics
		// A flight that ended between the lookup and join stored its
		// response already.
		if e := h.store.get(pk, r.Header); e != nil {
			if age := e.age(h.store.now()); age < e.lifetime {
				res = e
				h.counters.inc(countHit)
				serve(w, r, e, age, "fwd=uri-miss; collapsed")
				return
			}
		}
		// The client leaving takes back its interest; the fetch goes on
		// while a waiter still wants it.
		stop := context.AfterFunc(r.Context(), func() { h.store.release(f) })
		defer stop()
		res = h.fetch(w, r.WithContext(ctx), pk, fwd, false, f)
		return
	}
	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case <-f.done:
	case <-r.Context().Done():
		h.store.release(f)
		return // the client left: nothing to answer
	case <-timer.C:
		h.store.release(f)
		h.fetch(w, r, pk, fwd, false, nil)
		return
	}
	if e := f.res; e != nil && h.store.get(pk, r.Header) == e {
		now := h.store.now()
		if age := e.age(now); age < e.lifetime {
			serve(w, r, e, age, "fwd=uri-miss; collapsed")
			h.counters.inc(countHit)
			return
		}
	}
	h.fetch(w, r, pk, fwd, false, nil)
}

// fetch sends r upstream through a recorder, answering the client as the
// response arrives, and stores the response when it may be. It returns the
// entry stored when others may share it (f is set: the leader of a flight),
// nil otherwise.
func (h *handler) fetch(w http.ResponseWriter, r *http.Request, pk, fwd string, auth bool, f *flight) *entry {
	rec := &recorder{ResponseWriter: w, limit: h.maxEntry, status: fwd, pre: w.Header().Clone(), auth: auth}
	h.next.ServeHTTP(rec, r)
	if !rec.wrote || rec.over {
		return nil
	}
	if rec.declared >= 0 && int64(len(rec.buf)) != rec.declared {
		// The upstream broke off mid-body (a handler not run by
		// net/http's server returns normally then): not the answer.
		return nil
	}
	now := h.store.now()
	e, vary, ok := h.storable(rec, auth, now)
	if !ok {
		return nil
	}
	e.ns, e.pk = h.ns, pk
	if !h.store.put(e, vary, r.Header) {
		return nil
	}
	h.counters.inc(countStore)
	if f == nil {
		return nil
	}
	return e
}

// Status codes whose responses may be stored with the route's ttl when
// they carry no freshness of their own (RFC 9110 section 15.1:
// heuristically cacheable), and the codes stored only with their own.
var (
	heuristicStatus = []int{200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501}
	explicitStatus  = []int{302, 307}
)

// refused reports whether a response of status code and headers hd may
// not be stored whatever its freshness: a status never stored, no-store,
// private, no-cache, Set-Cookie, a trailer, Vary: *, or an answer to a
// request with a credential that does not say it may be shared (RFC 9111
// section 3.5). The recorder asks it when the status is written, so that
// such a body is not copied.
func refused(code int, hd http.Header, auth bool) bool {
	if !slices.Contains(heuristicStatus, code) && !slices.Contains(explicitStatus, code) {
		return true
	}
	cc := parseCacheControl(hd["Cache-Control"])
	if cc.noStore || cc.private || cc.noCache || len(hd["Set-Cookie"]) > 0 || len(hd["Trailer"]) > 0 {
		return true
	}
	if _, star := parseVary(hd["Vary"]); star {
		return true
	}
	return auth && !(cc.public || cc.sMaxAge >= 0 || cc.mustRevalidate)
}

// storable decides whether rec's response may be stored by a shared
// cache (RFC 9111 section 3) and for how long, and returns its entry.
func (h *handler) storable(rec *recorder, auth bool, now time.Time) (*entry, []string, bool) {
	hd := rec.header
	if refused(rec.code, hd, auth) {
		return nil, nil, false
	}
	heuristic := slices.Contains(heuristicStatus, rec.code)
	cc := parseCacheControl(hd["Cache-Control"])
	vary, _ := parseVary(hd["Vary"])
	if encoded(hd) && !slices.Contains(vary, "Accept-Encoding") {
		// Encoded for this request's Accept-Encoding, whether or not
		// the upstream says so (nginx's gzip_vary is off by default).
		vary = append(vary, "Accept-Encoding")
		slices.Sort(vary)
	}
	authOK := cc.public || cc.sMaxAge >= 0 || cc.mustRevalidate
	var lifetime time.Duration
	switch {
	case cc.sMaxAge >= 0:
		lifetime = time.Duration(cc.sMaxAge) * time.Second
	case cc.maxAge >= 0:
		lifetime = time.Duration(cc.maxAge) * time.Second
	case len(hd["Expires"]) > 0:
		exp, err := http.ParseTime(hd.Get("Expires"))
		if err != nil {
			return nil, nil, false // an invalid Expires is in the past
		}
		date := now
		if d, err := http.ParseTime(hd.Get("Date")); err == nil {
			date = d
		}
		lifetime = exp.Sub(date)
	case heuristic && h.ttl > 0:
		lifetime = h.ttl
	default:
		return nil, nil, false
	}
	lifetime = min(lifetime, h.maxTTL)
	var age time.Duration
	if a, err := strconv.ParseInt(strings.TrimSpace(hd.Get("Age")), 10, 64); err == nil && a > 0 {
		age = time.Duration(min(a, maxDelta)) * time.Second
	}
	if lifetime <= age {
		return nil, nil, false // not fresh on arrival
	}
	body := rec.buf
	if cap(body) > len(body)+len(body)/8 {
		body = slices.Clip(slices.Clone(body)) // the bound counts what is kept
	}
	delete(hd, "Age")
	delete(hd, "X-Request-Id") // the gateway's, of this request
	return &entry{
		status: rec.code, header: hd, body: body,
		stored: now, initialAge: age, lifetime: lifetime, authOK: authOK,
	}, vary, true
}

// encoded reports whether a response's body has a content coding.
func encoded(hd http.Header) bool {
	for _, v := range hd["Content-Encoding"] {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return true
			}
		}
	}
	return false
}

// serve answers r with e, of age age, saying status in StatusHeader.
func serve(w http.ResponseWriter, r *http.Request, e *entry, age time.Duration, status string) {
	out := w.Header()
	for k, vs := range e.header {
		out[k] = vs[:len(vs):len(vs)] // an append by a later writer copies
	}
	out["Age"] = []string{strconv.FormatInt(int64(age/time.Second), 10)}
	addStatus(out, status)
	code := e.status
	if code == http.StatusOK && notModified(r.Header, e.header) {
		code = http.StatusNotModified
		for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Content-Range"} {
			delete(out, k)
		}
	} else if code != http.StatusNoContent && code != http.StatusNotModified {
		out["Content-Length"] = []string{strconv.Itoa(len(e.body))}
	}
	w.WriteHeader(code)
	if r.Method != http.MethodHead && code != http.StatusNotModified && code != http.StatusNoContent {
		_, _ = w.Write(e.body) // a client that left is no error of the cache
	}
}

// notModified evaluates If-None-Match, or else If-Modified-Since, of a
// request against a stored 200 response (RFC 9110 section 13.2.2).
func notModified(req, res http.Header) bool {
	if inm := req["If-None-Match"]; len(inm) > 0 {
		etag := strings.TrimPrefix(res.Get("Etag"), "W/")
		if etag == "" {
			return false
		}
		for _, v := range inm {
			for t := range strings.SplitSeq(v, ",") {
				t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
				if t == "*" || t == etag {
					return true
				}
			}
		}
		return false
	}
	ims, err := http.ParseTime(req.Get("If-Modified-Since"))
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(res.Get("Last-Modified"))
	return err == nil && !lm.After(ims)
}

// addStatus appends the cache's member to the Cache-Status field of hd.
func addStatus(hd http.Header, status string) {
	v := Name + "; " + status
	if old := hd.Get(StatusHeader); old != "" {
		v = old + ", " + v
	}
	hd[StatusHeader] = []string{v}
}
