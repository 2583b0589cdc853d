package proxy

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/gitgate/gitgate/gateway/internal/headers"
	"github.com/gitgate/gitgate/gateway/internal/upstream"
)

// The direct path forwards an attempt as httputil.ReverseProxy does, with
// the same hooks (rewrite, modifyResponse, errorHandler), when the attempt
// goes to a target of the upstream pool's synchronous HTTP/1.1 path
// (upstream.Pool.FastTarget) and the outgoing request is one that path
// takes. What it saves is ReverseProxy's per-request work around the
// exchange: the deep copy of the request and its header (Request.Clone),
// the canonicalisation of every hop-by-hop name on the request and on the
// response (Header.Del), and the httptrace layer for 1xx answers (the
// exchange is the upstream.Informational). The outgoing header is a pooled
// map that shares the incoming values; its slices are capped, so that a
// header "add" copies instead of writing into the client's request.
//
// Everything else (upgrades, Expect, trailers, streamed or large bodies,
// TLS and HTTP/2 upstreams, capped pools, gRPC) goes through ReverseProxy,
// as before. TestDirectMatchesReverseProxy holds the two paths to the same
// requests upstream and the same answers.

// forward serves one attempt of the request out (the route's request with
// the attempt's context) on w.
func (f *Forwarder) forward(w http.ResponseWriter, out *http.Request, ex *exchange) {
	ex.direct = !f.noDirect && f.pool != nil && directEligible(out) && f.pool.FastTarget(ex.target)
	if !ex.direct {
		ex.indirect = true
		f.rp.ServeHTTP(w, out)
		return
	}
	if f.onDirect != nil {
		f.onDirect()
	}
	f.direct(w, out, ex)
}

// directEligible reports whether the outgoing request built from in takes
// the pool's synchronous path, judged before it is built: ReverseProxy
// would keep an upgrade, Expect and "TE: trailers", and the body must have
// a known length (a chunked one has -1) up to upstream.MaxFastBody.
func directEligible(in *http.Request) bool {
	h := in.Header
	if len(in.Trailer) > 0 || len(h["Expect"]) > 0 {
		return false
	}
	if httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return false
	}
	if httpguts.HeaderValuesContainsToken(h["Te"], "trailers") {
		return false
	}
	return in.ContentLength >= 0 && in.ContentLength <= upstream.MaxFastBody
}

// isHop reports a hop-by-hop header that ReverseProxy removes from both
// the request and the response, besides those Connection names.
func isHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// removeHop removes the hop-by-hop headers from h: those its Connection
// names and those isHop reports.
func removeHop(h http.Header) {
	removeConnectionListed(h, h["Connection"])
	for k := range h {
		if isHop(k) {
			delete(h, k)
		}
	}
}

// removeConnectionListed removes from h the headers that the Connection
// values conn name.
func removeConnectionListed(h http.Header, conn []string) {
	for opt := range headers.ConnectionOptions(conn) {
		delete(h, textproto.CanonicalMIMEHeaderKey(opt))
	}
}

// hopOrForwarding reports a hop-by-hop header or one of the forwarding
// headers ReverseProxy removes before its Rewrite hook.
func hopOrForwarding(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return isHop(k)
}

// leftOut reports a header the direct path does not copy from the client's
// request: a hop-by-hop or forwarding one, an underscore spelling of a
// forwarding one, and, from an untrusted peer, one of peerSetHeaders.
func leftOut(k string, trusted bool) bool {
	return hopOrForwarding(k) || !trusted && isPeerSet(k) || isForwardingAlias(k)
}

// outgoing is a direct attempt's outgoing request with its URL and header,
// pooled: nothing refers to it once direct returns.
type outgoing struct {
	req http.Request
	url url.URL
	hdr http.Header
	res upstream.ResponseBuffer
}

// release readies og for the pool: no reference to the request, the
// response or the connection kept, and the header map emptied, or
// replaced when it held more than headers.MaxPooledFields names (peak
// counts them before any was removed).
func (og *outgoing) release(peak int) {
	og.req, og.url = http.Request{}, url.URL{}
	og.res.Reset()
	og.hdr = headers.Recycle(og.hdr, peak)
}

var outgoings = sync.Pool{New: func() any { return &outgoing{hdr: make(http.Header, 8)} }}

// direct is ReverseProxy.ServeHTTP for an eligible attempt. The outgoing
// request is a shallow copy of in (which keeps the attempt's context, so
// the hooks find the exchange) with its own URL and header.
func (f *Forwarder) direct(w http.ResponseWriter, in *http.Request, ex *exchange) {
	og := outgoings.Get().(*outgoing)
	hdr := og.hdr
	kept := false
	peak := 0 // the names hdr held before the Connection removal
	defer func() {
		if kept {
			return // the http.Transport may still read it: left to the collector
		}
		og.release(peak)
		outgoings.Put(og)
	}()
	// The hop-by-hop headers and the client's forwarding headers, in any
	// spelling, are left out as the header is copied (what scrubForwarded
	// removes on ReverseProxy's path), and so are the trace headers that
	// correlation.apply would remove; those its Connection names are
	// removed after.
	trusted := ex.client.Trusted
	for k, v := range in.Header {
		if !leftOut(k, trusted) && !ex.corr.leavesOut(k) {
			hdr[k] = v[:len(v):len(v)]
		}
	}
	peak = len(hdr)
	if conn := in.Header["Connection"]; len(conn) > 0 {
		removeConnectionListed(hdr, conn)
	}
	out := &og.req
	*out = *in
	og.url = *in.URL
	og.url.RawQuery = cleanQuery(og.url.RawQuery)
	out.URL = &og.url
	out.Header = hdr
	out.Close = false
	out.RequestURI = ""
	if in.ContentLength == 0 {
		out.Body = nil
	}
	f.rewrite(&httputil.ProxyRequest{In: in, Out: out})

	res, kept, err := f.pool.RoundTripDirect(out, &og.res)
	ex.indirect = ex.indirect || kept
	if err != nil {
		f.errorHandler(w, out, err)
		return
	}
	removeHop(res.Header)
	if err := f.modifyResponse(res); err != nil {
		_ = res.Body.Close()
		f.errorHandler(w, out, err)
		return
	}
	// As ReverseProxy: an event stream, and a body of unknown length, is
	// flushed on every write. modifyResponse has shared every header
	// with w's, and left res.Header as it was for this.
	flush := res.ContentLength == -1 || isEventStreamType(res.Header)
	announced := len(res.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range res.Trailer {
			names = append(names, k)
		}
		w.Header().Add("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(res.StatusCode)
	if err := f.copyBody(w, res.Body, flush); err != nil {
		_ = res.Body.Close()
		if in.Context().Value(http.ServerContextKey) == nil {
			return // not under an http.Server: nothing to abort
		}
		panic(http.ErrAbortHandler)
	}
	_ = res.Body.Close() // reads the trailers
	if len(res.Trailer) > 0 {
		_ = http.NewResponseController(w).Flush() // chunked, so they can follow
	}
	if len(res.Trailer) == announced {
		copyHeader(w.Header(), res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			w.Header().Add(http.TrailerPrefix+k, v)
		}
	}
}

// Got1xx passes an upstream's informational answer on to the client, as
// ReverseProxy's Got1xxResponse trace does (a server that does not send
// 1xx answers drops it).
func (ex *exchange) Got1xx(code int, header http.Header) error {
	h := ex.w.Header()
	copyHeader(h, header)
	ex.w.WriteHeader(code)
	clear(h)
	return nil
}

// copyBody copies the upstream's body to the client, flushing after every
// write when flush holds. A read error other than a cancellation is logged
// as ReverseProxy logs it.
func (f *Forwarder) copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	var rc *http.ResponseController
	if flush {
		// The header goes out now, before the body, which may be long
		// in coming (an event stream's first event), as ReverseProxy's
		// initial flush timer does.
		rc = http.NewResponseController(w)
		_ = rc.Flush()
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			f.rp.ErrorLog.Printf("httputil: ReverseProxy read error during body copy: %v", rerr)
		}
		if n > 0 {
			m, werr := w.Write(buf[:n])
			if werr != nil {
				return werr
			}
			if m != n {
				return io.ErrShortWrite
			}
			if rc != nil {
				_ = rc.Flush()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// isEventStreamType reports a text/event-stream Content-Type as
// ReverseProxy judges it (the media type, parameters aside).
func isEventStreamType(h http.Header) bool {
	v := h["Content-Type"]
	if len(v) == 0 || !isEventStreamValue(v[0]) {
		return false
	}
	mt, _, _ := mime.ParseMediaType(v[0])
	return mt == "text/event-stream"
}

// copyHeader adds src's values to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// cleanQuery drops the query pairs that Go's parser would not read back
// (a ";" separator, a bad %-escape), re-encoding the rest, as
// ReverseProxy does before its Rewrite hook, so that the upstream never
// reads a query differently from the gateway.
func cleanQuery(q string) string {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return reencodeQuery(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencodeQuery(q)
			}
			i += 2
		}
	}
	return q
}

func reencodeQuery(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
