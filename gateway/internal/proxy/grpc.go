package proxy

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"
)

// maxGRPCTimeoutDigits is the most digits grpc-timeout may have (gRPC over
// HTTP/2: "TimeoutValue → {positive integer as ASCII string of at most 8
// digits}").
const maxGRPCTimeoutDigits = 8

// grpcTimeout parses the grpc-timeout header of a gRPC call: at most 8
// digits and a unit, H, M, S, m, u or n. ok is false when it is absent or
// malformed; a malformed one is ignored, as the route's timeout still
// bounds the call.
func grpcTimeout(h http.Header) (time.Duration, bool) {
	v := h["Grpc-Timeout"]
	if len(v) == 0 || len(v[0]) < 2 || len(v[0]) > maxGRPCTimeoutDigits+1 {
		return 0, false
	}
	s := v[0]
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > uint64(math.MaxInt64/unit) {
		return math.MaxInt64, true // 99999999H: longer than any route timeout
	}
	return time.Duration(n) * unit, true
}

// formatGRPCTimeout writes d as a grpc-timeout value, in the finest unit
// whose count fits in 8 digits (rounded down: never past d).
func formatGRPCTimeout(d time.Duration) string {
	const most = 99999999
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}} {
		if d/u.unit <= most {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.name
		}
	}
	return strconv.FormatInt(min(int64(d/time.Hour), most), 10) + "H"
}

// Trailers of a gRPC call that the route's deadline cut after its response
// began.
var (
	grpcDeadlineStatus  = []string{"4"} // DEADLINE_EXCEEDED
	grpcDeadlineMessage = []string{"upstream timeout"}
)

// serveGRPC forwards one attempt of a gRPC call with h, a ReverseProxy.
// When the route's deadline (the cause of ctx) cuts the call after its
// response began, ReverseProxy aborts the response (it panics with
// http.ErrAbortHandler, and the client would see a reset stream); for a
// client that is still there, serveGRPC ends the call as gRPC ends one
// past its deadline instead: grpc-status DEADLINE_EXCEEDED in the
// trailers (a client that left meanwhile gets nothing either way). cut
// reports that it did.
func serveGRPC(h http.Handler, w http.ResponseWriter, r *http.Request, ctx context.Context) (cut bool) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v != http.ErrAbortHandler || causeOf(ctx) != errRouteTimeout {
			panic(v) // the client left, or the upstream broke off: abort
		}
		hdr := w.Header()
		hdr[http.TrailerPrefix+"Grpc-Status"] = grpcDeadlineStatus
		hdr[http.TrailerPrefix+"Grpc-Message"] = grpcDeadlineMessage
		cut = true
	}()
	h.ServeHTTP(w, r)
	return false
}
