package compress

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/gitgate/gitgate/schemas"
)

// defaulted returns c with the schema's defaults.
func defaulted(c schemas.Compress) *schemas.Compress {
	cfg := schemas.Config{Routes: map[string]schemas.Route{"r": {Compress: &c}}}
	cfg.ApplyDefaults()
	return cfg.Routes["r"].Compress
}

func wrap(t testing.TB, c schemas.Compress, next http.Handler) http.Handler {
	t.Helper()
	h, err := New(defaulted(c), next)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// text is compressible and larger than the default minBytes.
var text = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 200)

// decode returns body decoded by its Content-Encoding.
func decode(t testing.TB, enc string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("Content-Encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", enc, err)
	}
	return out
}

func TestCompressRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   schemas.Compress
		ae    string
		want  string
		clen  bool // the upstream sends Content-Length
		etag  string
		wantE string
	}{
		{"zstd preferred", schemas.Compress{}, "gzip, zstd", "zstd", true, `"v1"`, `W/"v1"`},
		{"gzip", schemas.Compress{}, "gzip", "gzip", true, `"v1"`, `W/"v1"`},
		{"gzip streamed", schemas.Compress{}, "gzip", "gzip", false, "", ""},
		{"zstd best", schemas.Compress{Level: schemas.CompressBest}, "zstd", "zstd", false, `W/"weak"`, `W/"weak"`},
		{"gzip fastest", schemas.Compress{Level: schemas.CompressFastest, Algorithms: []string{"gzip"}}, "zstd, gzip", "gzip", true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := wrap(t, tc.cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				if tc.clen {
					w.Header().Set("Content-Length", strconv.Itoa(len(text)))
				}
				if tc.etag != "" {
					w.Header().Set("ETag", tc.etag)
				}
				w.Header().Set("Accept-Ranges", "bytes")
				_, _ = io.WriteString(w, text[:100])
				_, _ = io.WriteString(w, text[100:])
			}))
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("Accept-Encoding", tc.ae) // set by hand: the transport does not decode
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != tc.want {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.want)
			}
			if got := decode(t, tc.want, body); string(got) != text {
				t.Fatalf("decoded body differs: %d bytes, want %d", len(got), len(text))
			}
			if len(body) >= len(text) {
				t.Errorf("compressed %d bytes to %d", len(text), len(body))
			}
			// net/http may count the compressed body itself; never the upstream's length.
			if resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Accept-Ranges") != "" || resp.ContentLength != -1 && resp.ContentLength != int64(len(body)) {
				t.Errorf("Vary %q, Accept-Ranges %q, Content-Length %d", resp.Header.Get("Vary"), resp.Header.Get("Accept-Ranges"), resp.ContentLength)
			}
			if got := resp.Header.Get("Etag"); got != tc.wantE {
				t.Errorf("ETag %q, want %q", got, tc.wantE)
			}
		})
	}
}

func TestNeverCompress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		reqHdr   map[string]string
		status   int
		respHdr  map[string]string
		body     string
		wantVary bool
	}{
		{"no Accept-Encoding", "GET", map[string]string{"Accept-Encoding": ""}, 200, nil, text, true},
		{"client accepts none of ours", "GET", map[string]string{"Accept-Encoding": "br"}, 200, nil, text, true},
		{"already encoded", "GET", nil, 200, map[string]string{"Content-Encoding": "br"}, text, false},
		{"no-transform", "GET", nil, 200, map[string]string{"Cache-Control": "public, No-Transform"}, text, false},
		{"content type not listed", "GET", nil, 200, map[string]string{"Content-Type": "image/png"}, text, false},
		{"no content type", "GET", nil, 200, map[string]string{"Content-Type": ""}, text, false},
		{"event stream", "GET", nil, 200, map[string]string{"Content-Type": "text/event-stream"}, text, false},
		{"below minBytes", "GET", nil, 200, map[string]string{"Content-Length": "10"}, text[:10], false},
		{"HEAD", "HEAD", nil, 200, nil, "", true},
		{"Range request", "GET", map[string]string{"Range": "bytes=0-10"}, 200, nil, text, true},
		{"206 response", "GET", nil, 206, map[string]string{"Content-Range": "bytes 0-9/100"}, text[:10], false},
		{"204", "GET", nil, 204, nil, "", false},
		{"304", "GET", nil, 304, nil, "", false},
		{"upgrade request", "GET", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, 200, nil, text, false},
		{"gRPC call", "POST", map[string]string{"Content-Type": "application/grpc"}, 200, nil, text, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := wrap(t, schemas.Compress{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				for k, v := range tc.respHdr {
					if v == "" {
						w.Header()[k] = nil
					} else {
						w.Header().Set(k, v)
					}
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			req := httptest.NewRequest(tc.method, "/", nil)
			req.Header.Set("Accept-Encoding", "zstd, gzip")
			for k, v := range tc.reqHdr {
				req.Header.Set(k, v)
				if v == "" {
					req.Header.Del(k)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if ce := rec.Header().Get("Content-Encoding"); ce != "" && ce != tc.respHdr["Content-Encoding"] {
				t.Fatalf("compressed with %s", ce)
			}
			if rec.Code != tc.status || rec.Body.String() != tc.body && tc.method != "HEAD" {
				t.Fatalf("status %d, body of %d bytes; want %d and the body unchanged", rec.Code, rec.Body.Len(), tc.status)
			}
			if got := rec.Header().Get("Vary") == "Accept-Encoding"; got != tc.wantVary {
				t.Fatalf("Vary %q, want Accept-Encoding: %v", rec.Header().Get("Vary"), tc.wantVary)
			}
		})
	}
}

// TestVaryKept adds to a Vary the upstream sent, once.
func TestVaryKept(t *testing.T) {
	t.Parallel()
	for _, vary := range []string{"Origin", "origin, accept-encoding", "*"} {
		t.Run(vary, func(t *testing.T) {
			t.Parallel()
			h := wrap(t, schemas.Compress{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Vary", vary)
				_, _ = io.WriteString(w, text)
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := strings.Join(rec.Header().Values("Vary"), ", ")
			if n := strings.Count(strings.ToLower(got), "accept-encoding"); vary == "Origin" && n != 1 || vary != "Origin" && got != vary {
				t.Fatalf("Vary %q", got)
			}
		})
	}
}

// TestStreamingFlush proxies a real upstream that flushes one event, then
// waits until the client has decoded it before it sends the next: a
// compressor that held the data would hang here.
func TestStreamingFlush(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"gzip", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			next := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-ndjson")
				for i := range 3 {
					_, _ = io.WriteString(w, `{"event":`+strconv.Itoa(i)+`}`+"\n")
					http.NewResponseController(w).Flush()
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
			}))
			t.Cleanup(up.Close)
			u, _ := url.Parse(up.URL)
			gw := httptest.NewServer(wrap(t, schemas.Compress{ContentTypes: []string{"application/x-ndjson"}}, httputil.NewSingleHostReverseProxy(u)))
			t.Cleanup(gw.Close)
			req, _ := http.NewRequest(http.MethodGet, gw.URL, nil)
			req.Header.Set("Accept-Encoding", alg)
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("Content-Encoding") != alg {
				t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
			var dec io.Reader
			if alg == "gzip" {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				dec = zr
			} else {
				zr, err := zstd.NewReader(resp.Body, zstd.WithDecoderConcurrency(1))
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				dec = zr
			}
			for i := range 3 {
				want := `{"event":` + strconv.Itoa(i) + `}` + "\n"
				got := make([]byte, len(want))
				done := make(chan error, 1)
				go func() { _, err := io.ReadFull(dec, got); done <- err }()
				select {
				case err := <-done:
					if err != nil || string(got) != want {
						t.Fatalf("event %d: %q, %v", i, got, err)
					}
				case <-time.After(30 * time.Second): // a hang, not a timing measurement
					t.Fatalf("event %d never arrived: the compressor held it", i)
				}
				next <- struct{}{}
			}
			if rest, err := io.ReadAll(dec); err != nil || len(rest) != 0 {
				t.Fatalf("after the events: %q, %v", rest, err)
			}
		})
	}
}

// BenchmarkCompress measures a pooled compressed response of 8 KiB: the
// allocations per request are the encoder's per-stream state, not a new
// encoder.
func BenchmarkCompress(b *testing.B) {
	body := []byte(text[:8192])
	for _, alg := range []string{"gzip", "zstd"} {
		b.Run(alg, func(b *testing.B) {
			h := wrap(b, schemas.Compress{Algorithms: []string{alg}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write(body)
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", alg)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkEncoderUnpooled is the cost pooling saves: a new encoder for
// each 8 KiB response.
func BenchmarkEncoderUnpooled(b *testing.B) {
	body := []byte(text[:8192])
	for _, alg := range []string{"gzip", "zstd"} {
		b.Run(alg, func(b *testing.B) {
			p, err := poolFor(alg, schemas.CompressDefault)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				e, err := p.make()
				if err != nil {
					b.Fatal(err)
				}
				e.Reset(io.Discard)
				_, _ = e.Write(body)
				_ = e.Close()
			}
		})
	}
}

// TestCompressLargeStream sends 2 MiB in 4 KiB writes with a flush every
// 64 KiB, spanning many encoder blocks, through a real server.
func TestCompressLargeStream(t *testing.T) {
	t.Parallel()
	var big strings.Builder
	for i := 0; big.Len() < 2<<20; i++ {
		big.WriteString(strconv.Itoa(i*7919) + " lorem ipsum dolor sit amet\n")
	}
	want := big.String()
	for _, alg := range []string{"gzip", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(wrap(t, schemas.Compress{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				for i := 0; i < len(want); i += 4096 {
					_, _ = io.WriteString(w, want[i:min(i+4096, len(want))])
					if i%(64<<10) == 0 {
						http.NewResponseController(w).Flush()
					}
				}
			})))
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("Accept-Encoding", alg)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := decode(t, resp.Header.Get("Content-Encoding"), body); string(got) != want {
				t.Fatalf("%s: decoded %d bytes, want %d equal", resp.Header.Get("Content-Encoding"), len(got), len(want))
			}
		})
	}
}
