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

var crlfcrlf = []byte("\r\n\r\n")

// fastResponse holds a fast exchange's response with its body readers:
// one allocation where there were three. hdr is the header map of its last
// fast parse, cleared and reused by the next one when the fastResponse is
// (RoundTripDirect's ResponseBuffer).
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
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		return nil
	}
	head := buf[:end+2] // every line with its CRLF
	lf := bytes.Count(head, crlfcrlf[1:2])
	if lf > maxFastLines+1 {
		return nil
	}
	// Lines end in CRLF and hold no other CR or LF.
	lines := bytes.Count(head, crlfcrlf[:2])
	if lf != lines || bytes.Count(head, crlfcrlf[:1]) != lines {
		return nil
	}
	text := string(head)
	line, rest, _ := strings.Cut(text, "\r\n")
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
	if h == nil {
		h = make(http.Header, n)
		fr.hdr = h
	} else {
		clear(h)
	}
	vals := make([]string, n)
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			return nil // obs-fold, or an empty line before the end
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !validName(k) || !validValue(v) {
			return nil
		}
		k = textproto.CanonicalMIMEHeaderKey(k)
		switch k {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil // framing and cache rules that net/http applies
		}
		v = textproto.TrimString(v) // no CR or LF left in a line: spaces and tabs
		if prior, ok := h[k]; ok {
			h[k] = append(prior, v)
			continue
		}
		vals[0] = v
		h[k], vals = vals[:1:1], vals[1:]
	}
	res.Header = h

	cl := int64(-1)
	if v := h["Content-Length"]; len(v) > 0 {
		if len(v) > 1 || v[0] == "" || len(v[0]) > 18 || !isDigits(v[0]) {
			return nil
		}
		cl, _ = strconv.ParseInt(v[0], 10, 64) // at most 18 digits: cannot fail
	}
	conn := h["Connection"]
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
	_, _ = br.Discard(len(head) + 2)
	return res
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
