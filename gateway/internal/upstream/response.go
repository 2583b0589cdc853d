package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// readResponse reads a response head (and frames its body) from br, as
// http.ReadResponse does. The common answer (HTTP/1.0 or 1.1, a head that
// arrived whole, CRLF line ends, no obs-fold, no Transfer-Encoding,
// Trailer or Pragma, at most one Content-Length of plain digits) is parsed
// here, from one string that every key and value is a slice of: one
// allocation for the text, one for the values and one for the map, where
// net/textproto allocates each value and its reader. Anything else, and
// anything this parser is unsure of, is left unread for http.ReadResponse,
// so that whatever it refuses is still refused. FuzzReadResponse holds the
// two to the same result.
func readResponse(br *bufio.Reader, req *http.Request, fr *fastResponse) (*http.Response, error) {
	if res := parseResponse(br, req, fr); res != nil {
		return res, nil
	}
	return http.ReadResponse(br, req)
}

// maxFastLines bounds the header lines of a fast parse.
const maxFastLines = 100

// fastResponse holds a fast exchange's response with its body readers:
// one allocation where there were three. hdr is the header map of its last
// fast parse, cleared and reused by the next one when the fastResponse is
// (RoundTripDirect's ResponseBuffer); an answer with more than
// headers.MaxPooledFields header lines gets a map of its own instead.
type fastResponse struct {
	res http.Response
	lb  lengthBody
	fb  fastBody
	hdr http.Header
}

// parseResponse returns the response whose head is buffered whole in br,
// having consumed the head; nil, with nothing consumed, when it leaves the
// response to http.ReadResponse. The response is fr's.
func parseResponse(br *bufio.Reader, req *http.Request, fr *fastResponse) *http.Response {
	if _, err := br.Peek(1); err != nil {
		return nil
	}
	buf, _ := br.Peek(br.Buffered())
	end, lines := headLines(buf)
	if end < 0 || lines == 0 {
		return nil // not buffered whole, or an empty line first
	}
	text := string(buf[:end]) // every line with its CRLF, the empty one aside
	nl := strings.IndexByte(text, '\n')
	line, rest := text[:nl-1], text[nl+1:]
	if strings.IndexByte(line, '\r') >= 0 {
		return nil // a CR inside the status line
	}
	res := &fr.res
	*res = http.Response{Request: req}
	switch {
	case strings.HasPrefix(line, "HTTP/1.1 "):
		res.Proto, res.ProtoMajor, res.ProtoMinor = "HTTP/1.1", 1, 1
	case strings.HasPrefix(line, "HTTP/1.0 "):
		res.Proto, res.ProtoMajor, res.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		return nil
	}
	res.Status = strings.TrimLeft(line[len("HTTP/1.1 "):], " ")
	code, _, _ := strings.Cut(res.Status, " ")
	if len(code) != 3 || !isDigits(code) {
		return nil
	}
	res.StatusCode, _ = strconv.Atoi(code) // three digits: cannot fail

	n := lines - 1 // the header lines, the status line aside
	h := fr.hdr
	switch {
	case n > headers.MaxPooledFields:
		h = make(http.Header, n) // this answer's own: fr's stays small
	case h == nil:
		h = make(http.Header, n)
		fr.hdr = h
	default:
		clear(h)
	}
	vals := make([]string, n)
	// What framing reads is noted on the way: no lookups after.
	clSeen, connSeen := false, false
	clText := ""
	for rest != "" {
		nl = strings.IndexByte(rest, '\n')
		line, rest = rest[:nl-1], rest[nl+1:]
		// A CR left inside the line fails the name's or the value's check.
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil // no name: obs-fold, or no colon
		}
		k, v := line[:colon], line[colon+1:]
		token, canonical := headers.CanonicalToken(k)
		if !token || !validValue(v) {
			return nil
		}
		if !canonical {
			k = textproto.CanonicalMIMEHeaderKey(k)
		}
		v = textproto.TrimString(v) // no CR or LF left in a line: spaces and tabs
		switch k {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil // framing and cache rules that net/http applies
		case "Content-Length":
			if clSeen {
				return nil // repeated: net/http decides
			}
			clSeen, clText = true, v
		case "Connection":
			connSeen = true
		}
		if prior, ok := h[k]; ok {
			h[k] = append(prior, v)
			continue
		}
		vals[0] = v
		h[k], vals = vals[:1:1], vals[1:]
	}
	res.Header = h

	cl := int64(-1)
	if clSeen {
		if clText == "" || len(clText) > 18 || !isDigits(clText) {
			return nil
		}
		cl, _ = strconv.ParseInt(clText, 10, 64) // at most 18 digits: cannot fail
	}
	var conn []string
	if connSeen {
		conn = h["Connection"]
	}
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if res.ProtoMinor == 0 {
		res.Close = hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	} else if hasClose {
		res.Close = true
		delete(h, "Connection")
	}

	head1 := req != nil && req.Method == http.MethodHead
	switch {
	case head1:
		res.ContentLength, res.Body = cl, http.NoBody
	case res.StatusCode/100 == 1 || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified:
		res.ContentLength, res.Body = 0, http.NoBody
	case cl == 0:
		res.ContentLength, res.Body = 0, http.NoBody
	case cl > 0:
		res.ContentLength = cl
		fr.lb = lengthBody{r: br, left: cl}
		res.Body = &fr.lb
	default:
		return nil // a body until the connection closes: rare, left to net/http
	}
	_, _ = br.Discard(end + 2) // the head and its empty line
	return res
}

// headLines finds a head buffered whole in buf: it returns the length of
// its lines (each with its CRLF) before the empty line that ends it, and
// how many they are; -1 when the empty line is not in buf, a line ends in
// a bare LF, or there are more than maxFastLines header lines.
func headLines(buf []byte) (end, lines int) {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j <= 0 || buf[i+j-1] != '\r' {
			return -1, 0
		}
		if j == 1 {
			return i, lines
		}
		if lines++; lines > maxFastLines+1 {
			return -1, 0
		}
		i += j + 1
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// lengthBody reads a body of a known length, as net/http's body does: the
// last bytes come with io.EOF, and an end before the length is
// io.ErrUnexpectedEOF.
type lengthBody struct {
	r    io.Reader
	left int64
	eof  bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.eof || b.left <= 0 {
		b.eof = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		b.eof = true
		if b.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
	}
	if err == nil && n > 0 && b.left == 0 {
		b.eof = true
		err = io.EOF
	}
	return n, err
}

// Close does nothing: the fast transport's body decides the connection's
// fate.
func (b *lengthBody) Close() error { return nil }
