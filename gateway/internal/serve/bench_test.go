package serve

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// manyRoutes is a bundle of n prefix routes to target.
func manyRoutes(b *testing.B, version, target string, n int) *schemas.Bundle {
	b.Helper()
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{target}}},
		Routes:    make(map[string]schemas.Route, n),
	}
	for i := range n {
		cfg.Routes[fmt.Sprintf("r%05d", i)] = schemas.Route{
			Match:    schemas.Match{Path: fmt.Sprintf("/svc%d/api", i)},
			Backends: []schemas.Backend{{Upstream: "app", Weight: 100}},
		}
	}
	cfg.ApplyDefaults()
	bu, err := schemas.NewBundle(version, schemas.Source{}, cfg, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return bu
}

// BenchmarkPutBundle measures a push through the admin socket into the real
// engine: encode, send, strict decode, verify, compile, swap, and (with a
// state dir) the atomic last-known-good write with its two fsyncs.
func BenchmarkPutBundle(b *testing.B) {
	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()
	for _, routes := range []int{1, 10000} {
		for _, persist := range []bool{false, true} {
			b.Run(fmt.Sprintf("routes=%d/persist=%v", routes, persist), func(b *testing.B) {
				state := ""
				if persist {
					state = b.TempDir()
				}
				g := startGateway(b, state, nil)
				bundles := [2]*schemas.Bundle{manyRoutes(b, "a", up.URL, routes), manyRoutes(b, "b", up.URL+"/", routes)}
				ctx := context.Background()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if _, err := g.admin.Put(ctx, bundles[i%2], ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// rawUpstream answers every request on a kept-alive connection with the
// same 100-byte response, without net/http: the benchmark's profile is
// the gateway's. It serves until the benchmark ends.
func rawUpstream(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// A GET without a body: its head ends the request.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// BenchmarkProxy measures a keep-alive GET proxied by the whole data plane
// (the HTTP/1.1 server, the engine, one route, the upstream pool's
// transport) to an upstream answering 100 bytes, over loopback, from
// clients on raw sockets. It is also the profile that gateway/default.pgo
// is made from (scripts/pgo).
func BenchmarkProxy(b *testing.B) { benchmarkProxy(b, 0) }

// BenchmarkProxyAfterManyHeaders is BenchmarkProxy after clients sent
// requests with thousands of headers (and an upstream answered with as
// many), each within the 64 KiB header limit: what a client or upstream
// that inflates the gateway's pooled header maps costs the requests that
// come after it.
func BenchmarkProxyAfterManyHeaders(b *testing.B) { benchmarkProxy(b, 5000) }

// benchmarkProxy is BenchmarkProxy after 64 requests with many headers
// each, when many is not 0.
func benchmarkProxy(b *testing.B, many int) {
	g := startGateway(b, "", nil)
	if _, err := g.admin.Put(context.Background(), manyRoutes(b, "v1", rawUpstream(b), 1), ""); err != nil {
		b.Fatal(err)
	}
	addr := strings.TrimPrefix(g.data, "http://")
	req := []byte("GET /svc0/api/items?id=7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n")
	if many > 0 {
		var big strings.Builder
		big.WriteString("GET /svc0/api/items?id=7 HTTP/1.1\r\nHost: api.example.com\r\n")
		for i := range many {
			fmt.Fprintf(&big, "X-%d: 1\r\n", i)
		}
		big.WriteString("\r\n")
		inflate := []byte(big.String())
		// At once, so that as many pooled exchanges as a busy gateway
		// keeps carry them.
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				if _, err := c.Write(inflate); err != nil {
					b.Error(err)
					return
				}
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				if res.StatusCode != http.StatusOK {
					b.Errorf("a request with %d headers got %d", many, res.StatusCode)
				}
			})
		}
		wg.Wait()
		b.ResetTimer()
	}
	b.ReportAllocs()
	b.SetParallelism(8) // 8 connections per core, as a loaded sidecar sees
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		body := make([]byte, 100)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			n := -1
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Error(err)
					return
				}
				if len(line) <= 2 {
					break
				}
				if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
				}
			}
			if n != len(body) {
				b.Errorf("answer with Content-Length %d, want %d", n, len(body))
				return
			}
			if _, err := io.ReadFull(br, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
