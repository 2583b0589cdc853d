package proxy

import (
	"net/http"
	"testing"
)

// BenchmarkCorrelation measures the request correlation work of one
// request with span export off, alone: deciding the X-Request-Id (generated
// or kept), checking the traceparent, and setting the outgoing headers.
// BenchmarkServeCorrelation (package runtime) puts it beside a whole
// request.
func BenchmarkCorrelation(b *testing.B) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		name    string
		hdr     http.Header
		trusted bool
	}{
		{name: "generated-id", hdr: http.Header{}},
		{name: "generated-id+traceparent", hdr: http.Header{"Traceparent": {tp}, "Tracestate": {"vendor=x"}}},
		{name: "kept-id+traceparent", trusted: true, hdr: http.Header{"X-Request-Id": {"lb-1234"}, "Traceparent": {tp}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := &http.Request{Header: c.hdr}
			out := http.Header{}
			corr := new(correlation) // in the request's Observation, allocated anyway
			b.ReportAllocs()
			for b.Loop() {
				*corr = correlation{}
				corr.decide(r, c.trusted)
				corr.apply(out, false)
				if corr.id.String() == "" {
					b.Fatal("no id")
				}
			}
		})
	}
}
