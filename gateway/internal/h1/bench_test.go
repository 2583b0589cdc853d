package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkServe measures one keep-alive GET answered by a small handler
// that sets a header and writes 100 bytes, over fasthttp through the
// exchange adapter and over net/http. allocs/op counts both the server's
// and the client's side (the same client for both).
func BenchmarkServe(b *testing.B) {
	body := make([]byte, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Gateway"] = []string{"gitgate"}
		_, _ = w.Write(body)
	})
	for _, srv := range []string{"fasthttp", "net", "fasthttp-native"} {
		b.Run(srv, func(b *testing.B) {
			var addr string
			switch srv {
			case "fasthttp":
				addr = start(b, h)
			case "net":
				addr = startNet(b, h)
			default: // the floor: a fasthttp handler without the adapter
				addr = startNative(b, body)
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /bench HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			buf := make([]byte, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := exchangeRaw(c, br, req, buf, len(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// exchangeRaw writes req on c and reads the answer into buf until its head
// and bodyLen bytes of body have arrived: a client that allocates nothing.
func exchangeRaw(c net.Conn, br *bufio.Reader, req, buf []byte, bodyLen int) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	n := 0
	for {
		m, err := br.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
		if i := indexCRLFCRLF(buf[:n]); i >= 0 && n-i-4 >= bodyLen {
			return nil
		}
	}
}

func indexCRLFCRLF(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			return i
		}
	}
	return -1
}

// startNative serves body with a fasthttp handler of its own.
func startNative(b *testing.B, body []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Gateway", "gitgate")
		ctx.SetBody(body)
	}}
	go func() { _ = s.Serve(ln) }()
	b.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// startNet serves h with net/http's server on a loopback port until the
// benchmark or test ends.
func startNet(b testing.TB, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// BenchmarkServeFlushed measures one keep-alive GET whose handler writes
// 100 bytes and flushes: over fasthttp the adapter writes the chunked
// answer itself and carries the connection on (inline.go); net/http is
// the reference.
func BenchmarkServeFlushed(b *testing.B) {
	body := make([]byte, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
		w.(http.Flusher).Flush()
	})
	for _, srv := range []string{"fasthttp", "net"} {
		b.Run(srv, func(b *testing.B) {
			addr := start(b, h)
			if srv == "net" {
				addr = startNet(b, h)
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /bench HTTP/1.1\r\nHost: x\r\n\r\n")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
			}
		})
	}
}

// BenchmarkServeParallel is BenchmarkServe over many connections at once
// (GOMAXPROCS × 8 clients in this process): with the CPUs saturated,
// ns/op is the CPU per request of the server and the client together.
func BenchmarkServeParallel(b *testing.B) {
	body := make([]byte, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Gateway"] = []string{"gitgate"}
		_, _ = w.Write(body)
	})
	for _, srv := range []string{"fasthttp", "net"} {
		b.Run(srv, func(b *testing.B) {
			addr := start(b, h)
			if srv == "net" {
				addr = startNet(b, h)
			}
			req := []byte("GET /bench HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				buf := make([]byte, 4096)
				for pb.Next() {
					if err := exchangeRaw(c, br, req, buf, len(body)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkParseHeadersRepeatedName: the parser on a header block that
// repeats one name n times (6,000 fit the 64 KiB limit). Copying the value
// list on every repeat made it quadratic: 155 ms at 6,000.
func BenchmarkParseHeadersRepeatedName(b *testing.B) {
	for _, n := range []int{10, 1000, 6000} {
		block := strings.Repeat("X: a\r\n", n) + "Host: h\r\n\r\n"
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			h := http.Header{}
			var vals []string
			for b.Loop() {
				clear(h)
				vals = vals[:0]
				if _, rf := parseHeaders(block, h, &vals); rf != nil {
					b.Fatal(rf.reason)
				}
			}
		})
	}
}
