package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// parsed is what a caller of a response parser can observe.
type parsed struct {
	Err           bool
	Status        string
	StatusCode    int
	Proto         string
	Major, Minor  int
	Header        http.Header
	ContentLength int64
	Close         bool
	TE            []string
	Trailer       http.Header
	NoBody        bool
	Body          string
	BodyErr       string
	Rest          string // what is left on the connection after the body
}

func observe(read func(*bufio.Reader, *http.Request) (*http.Response, error), input, method string) parsed {
	br := bufio.NewReaderSize(strings.NewReader(input), 4<<10)
	res, err := read(br, &http.Request{Method: method})
	if err != nil {
		return parsed{Err: true}
	}
	p := parsed{Status: res.Status, StatusCode: res.StatusCode, Proto: res.Proto, Major: res.ProtoMajor, Minor: res.ProtoMinor,
		Header: res.Header, ContentLength: res.ContentLength, Close: res.Close, TE: res.TransferEncoding, Trailer: res.Trailer,
		NoBody: res.Body == http.NoBody}
	b, err := io.ReadAll(res.Body)
	p.Body = string(b)
	if err != nil {
		p.BodyErr = err.Error()
	}
	rest, _ := io.ReadAll(br)
	p.Rest = string(rest)
	return p
}

// gatewayRead is readResponse with a response of its own.
func gatewayRead(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	return readResponse(br, req, new(fastResponse))
}

// staleRead is readResponse into a fastResponse that read another answer
// before, with headers of its own: a pooled ResponseBuffer.
func staleRead(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	fr := new(fastResponse)
	prev := "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\nX-Old: 1\r\nContent-Type: a\r\n\r\nx"
	if parseResponse(bufio.NewReader(strings.NewReader(prev)), req, fr) == nil {
		panic("the earlier answer was not parsed")
	}
	return readResponse(br, req, fr)
}

// parseOnly is readResponse without the fallback: it reports whether the
// fast parse took the response.
func parseOnly(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if res := parseResponse(br, req, new(fastResponse)); res != nil {
		return res, nil
	}
	return nil, io.ErrNoProgress
}

var responseSeeds = []struct {
	name, input, method string
	fast                bool // the fast parse takes it
}{
	{"plain", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nokNEXT", "GET", true},
	{"no reason", "HTTP/1.1 204\r\n\r\n", "DELETE", true},
	{"lower-case names, repeated values", "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-length: 0\r\nx-empty:\r\n\r\n", "GET", true},
	{"spaces around values", "HTTP/1.1 200 OK\r\nX-A:   v  \t\r\nContent-Length: 1\r\n\r\nx", "GET", true},
	{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", "GET", true},
	{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", true},
	{"Connection close removed", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", "GET", true},
	{"HEAD keeps its length", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HEAD", true},
	{"HEAD without length", "HTTP/1.1 200 OK\r\n\r\n", "HEAD", true},
	{"304 with a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET", true},
	{"103 hints", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n", "GET", true},
	{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET", true},
	{"obs-text value", "HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", "GET", true},
	// Left to net/http.
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", "GET", false},
	{"chunked and a length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", "GET", false},
	{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", "GET", false},
	{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", "GET", false},
	{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", "GET", false},
	{"until close", "HTTP/1.1 200 OK\r\n\r\nall of it", "GET", false},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", false},
	{"LF inside a line", "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"CR inside the status line", "HTTP/1.1 200 O\rK\nX: y\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "GET", false},
	{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"HTTP/2 in the status line", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"Pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"Trailer", "HTTP/1.1 200 OK\r\nTrailer: X-S\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"head not whole", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "GET", false},
	{"empty", "", "GET", false},
	// A hostile upstream: more header lines than the fast parse takes, a
	// length past int64, a header name with a delimiter.
	{"more lines than the fast parse takes", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: 1\r\n", maxFastLines+1) + "Content-Length: 0\r\n\r\n", "GET", false},
	{"length past int64", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nx", "GET", false},
	{"delimiter in a name", "HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 0\r\n\r\n", "GET", false},
}

// TestReadResponseMatchesNetHTTP: readResponse and http.ReadResponse give
// the same response, body, framing and leftover bytes (or both refuse),
// and the fast parse takes exactly the responses it is meant to.
func TestReadResponseMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	for _, c := range responseSeeds {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := observe(http.ReadResponse, c.input, c.method)
			if got := observe(gatewayRead, c.input, c.method); !reflect.DeepEqual(got, want) {
				t.Errorf("readResponse:\n%+v\nhttp.ReadResponse:\n%+v", got, want)
			}
			if fast := !observe(parseOnly, c.input, c.method).Err; fast != c.fast {
				t.Errorf("fast parse took it: %v, want %v", fast, c.fast)
			}
		})
	}
}

// TestReadResponseHeadInPieces: a head that arrives in several reads is
// left to net/http, with nothing consumed, and still read right.
func TestReadResponseHeadInPieces(t *testing.T) {
	t.Parallel()
	input := "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok"
	br := bufio.NewReader(iotest.OneByteReader(strings.NewReader(input)))
	res, err := readResponse(br, &http.Request{Method: "GET"}, new(fastResponse))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("X-A") != "1" || string(b) != "ok" {
		t.Fatalf("got %d %v %q", res.StatusCode, res.Header, b)
	}
}

// FuzzReadResponse is a differential fuzz target: whatever the bytes,
// readResponse must agree with http.ReadResponse.
func FuzzReadResponse(f *testing.F) {
	for _, c := range responseSeeds {
		f.Add(c.input, c.method == "HEAD")
	}
	f.Fuzz(func(t *testing.T, input string, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		want := observe(http.ReadResponse, input, method)
		got := observe(gatewayRead, input, method)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q:\nreadResponse:\n%+v\nhttp.ReadResponse:\n%+v", input, got, want)
		}
		if got := observe(staleRead, input, method); !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q, after another answer:\nreadResponse:\n%+v\nhttp.ReadResponse:\n%+v", input, got, want)
		}
	})
}

// reusedRead is readResponse into one fastResponse, as a pooled
// ResponseBuffer is.
func reusedRead() func(*bufio.Reader, *http.Request) (*http.Response, error) {
	fr := new(fastResponse)
	return func(br *bufio.Reader, req *http.Request) (*http.Response, error) { return readResponse(br, req, fr) }
}

// BenchmarkReadResponse compares the parse of a typical answer.
func BenchmarkReadResponse(b *testing.B) {
	input := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 08:00:00 GMT\r\nX-Upstream: a\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100))
	for _, c := range []struct {
		name string
		read func(*bufio.Reader, *http.Request) (*http.Response, error)
	}{{"readResponse", gatewayRead}, {"readResponse reused", reusedRead()}, {"http.ReadResponse", http.ReadResponse}} {
		b.Run(c.name, func(b *testing.B) {
			r := bytes.NewReader(input)
			br := bufio.NewReaderSize(r, 4<<10)
			req := &http.Request{Method: "GET"}
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(input)
				br.Reset(r)
				res, err := c.read(br, req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
			}
		})
	}
}

// TestParseResponseKeepsPooledMapSmall: an answer with more than
// headers.MaxPooledFields header lines is read into a map of its own, so
// that the pooled map of the ResponseBuffer, reused by the next answers,
// never grows past the bound.
func TestParseResponseKeepsPooledMapSmall(t *testing.T) {
	t.Parallel()
	req := &http.Request{Method: http.MethodGet}
	answer := func(names int) string {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n")
		for i := range names {
			fmt.Fprintf(&b, "X-F%d: v\r\n", i)
		}
		b.WriteString("\r\n")
		return b.String()
	}
	ptr := func(h http.Header) unsafe.Pointer { return reflect.ValueOf(h).UnsafePointer() }
	fr := new(fastResponse)
	read := func(names int) *http.Response {
		t.Helper()
		res := parseResponse(bufio.NewReader(strings.NewReader(answer(names))), req, fr)
		if res == nil || len(res.Header) != names+1 {
			t.Fatalf("answer with %d names: parsed %v", names, res)
		}
		return res
	}
	pooled := ptr(read(3).Header)
	if ptr(fr.hdr) != pooled {
		t.Fatal("a small answer's map is not the pooled one")
	}
	if big := read(headers.MaxPooledFields + 10); ptr(big.Header) == pooled {
		t.Fatal("an answer with many fields was read into the pooled map")
	}
	if ptr(fr.hdr) != pooled {
		t.Fatal("the pooled map was replaced")
	}
	if ptr(read(4).Header) != pooled {
		t.Fatal("the next small answer did not reuse the pooled map")
	}
}
