package main

import (
	"bytes"
	"math/rand/v2"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// floorDuties is the go floor's handler doing, natively on fasthttp's
// request and response, what gitgate does for every request on a bare
// route: match the route, screen the header values, decide an
// X-Request-Id, remove the hop-by-hop headers (those Connection names
// too) and the forwarding headers an untrusted client sent (their
// underscore spellings too), set X-Forwarded-For/-Host/-Proto, forward
// with a timeout, remove the upstream's hop-by-hop headers, set the
// route's response header, and count the answer and its latency in
// Prometheus. It leaves out what has no native equivalent to estimate
// here: the client-gone watch, the idle connection's probe, retries and
// the access log (off in the benchmark).
func floorDuties(hc *fasthttp.HostClient) fasthttp.RequestHandler {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total"}, []string{"route", "upstream", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "request_seconds", Buckets: prometheus.DefBuckets}, []string{"route", "upstream"})
	reg.MustRegister(requests, latency)
	var codes [6]prometheus.Counter
	for i, c := range []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		codes[i] = requests.WithLabelValues("r0", "app", c)
	}
	observe := latency.WithLabelValues("r0", "app")
	prefix := []byte("/")
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		if !bytes.HasPrefix(ctx.Path(), prefix) {
			ctx.Error("no route", fasthttp.StatusNotFound)
			return
		}
		req, res := &ctx.Request, &ctx.Response
		// One pass: screen the values, and note the names to remove
		// (rare: only a client that sends them pays for the removal).
		var drop [][]byte
		for k, v := range req.Header.All() {
			for _, c := range v {
				if c < ' ' && c != '\t' || c == 0x7f {
					ctx.Error("bad header", fasthttp.StatusBadRequest)
					return
				}
			}
			if dutyDrop(k) {
				drop = append(drop, bytes.Clone(k))
			}
		}
		for _, k := range drop {
			req.Header.DelBytes(k)
		}
		var id [32]byte
		hi, lo := rand.Uint64(), rand.Uint64()
		for i := 15; i >= 0; i-- {
			id[i], id[16+i] = "0123456789abcdef"[hi&0xf], "0123456789abcdef"[lo&0xf]
			hi >>= 4
			lo >>= 4
		}
		if conn := req.Header.Peek("Connection"); len(conn) > 0 {
			for opt := range bytes.SplitSeq(conn, []byte(",")) {
				req.Header.DelBytes(bytes.TrimSpace(opt))
			}
		}
		req.Header.SetBytesV("X-Request-Id", id[:])
		ip, _, _ := net.SplitHostPort(ctx.RemoteAddr().String())
		req.Header.Set("X-Forwarded-For", ip)
		req.Header.SetBytesV("X-Forwarded-Host", req.Header.Host())
		req.Header.Set("X-Forwarded-Proto", "http")
		if err := hc.DoTimeout(req, res, 30*time.Second); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			codes[5].Inc()
			return
		}
		if conn := res.Header.Peek("Connection"); len(conn) > 0 {
			for opt := range bytes.SplitSeq(conn, []byte(",")) {
				res.Header.DelBytes(bytes.TrimSpace(opt))
			}
		}
		drop = drop[:0]
		for k := range res.Header.All() {
			if isDutyHop(k) {
				drop = append(drop, bytes.Clone(k))
			}
		}
		for _, k := range drop {
			res.Header.DelBytes(k)
		}
		res.Header.SetBytesV("X-Request-Id", id[:])
		res.Header.Set("X-Bench", "r0")
		class := res.StatusCode() / 100
		if class < 1 || class > 5 {
			class = 0
		}
		codes[class].Inc()
		observe.Observe(time.Since(start).Seconds())
	}
}

// isDutyHop reports a hop-by-hop header name in fasthttp's normalized
// spelling (Connection and Transfer-Encoding fasthttp keeps apart).
func isDutyHop(k []byte) bool {
	switch string(k) {
	case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade":
		return true
	}
	return false
}

// dutyDrop reports a request header an untrusted client may not send
// upstream: a hop-by-hop one, a forwarding one, or a name with "_".
func dutyDrop(k []byte) bool {
	switch string(k) {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
		"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Original-Url", "X-Rewrite-Url":
		return true
	}
	return isDutyHop(k) || bytes.IndexByte(k, '_') >= 0
}
