package proxy

import (
	"errors"
	"io"
	"sync/atomic"
)

// errBodyNotFit says a body is larger than the retry buffer.
var errBodyNotFit = errors.New("body larger than the retry buffer")

// readUpTo reads all of r when it has at most limit bytes; otherwise it
// returns the bytes read so far and errBodyNotFit.
func readUpTo(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if int64(len(buf)) > limit {
			return buf, errBodyNotFit
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), int(limit)+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return buf, errBodyNotFit
			}
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errBodyTooLarge is returned by limitedBody past the route's limit.
var errBodyTooLarge = errors.New("request body too large")

// limitedBody enforces MaxBodyBytes and remembers that it did, and whether
// reading the client's body failed (a malformed chunk, a truncated body);
// the flags are read after the transport's writer goroutine has used the
// body.
type limitedBody struct {
	rc       io.ReadCloser
	left     int64
	exceeded atomic.Bool
	broken   atomic.Bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	if int64(n) > l.left {
		l.exceeded.Store(true)
		n = int(l.left)
		l.left = -1
		return n, errBodyTooLarge
	}
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.broken.Store(true)
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
