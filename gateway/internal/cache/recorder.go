package cache

import (
	"net/http"
	"slices"
	"strconv"
)

// recorder passes a response to the client and keeps a copy of it, up to
// limit bytes of body, for the cache. It adds the cache's member to
// StatusHeader when the status is written. A client that leaves does not
// stop the copy while the body still fits: waiters may want it. Unwrap
// lets the proxy find its observation and http.ResponseController reach
// the real writer.
type recorder struct {
	http.ResponseWriter
	status string // the cache's StatusHeader member

	// pre are the headers set before the route ran (by the policies and
	// the observation, for this request alone): those left as they were
	// are not kept.
	pre       http.Header
	wrote     bool
	code      int
	header    http.Header // the response's headers to keep, without the cache's member
	buf       []byte
	declared  int64 // the response's Content-Length; -1: none
	limit     int64
	auth      bool // the request carried a credential (refused)
	over      bool // the body outgrew limit, or nothing is to be kept
	clientErr error
}

// WriteHeader records the status and headers of a final response and
// passes it on; a 1xx response only passes.
func (rc *recorder) WriteHeader(code int) {
	if rc.wrote {
		return
	}
	if code < 200 {
		rc.ResponseWriter.WriteHeader(code)
		return
	}
	rc.wrote, rc.code, rc.declared = true, code, -1
	hd := rc.ResponseWriter.Header()
	if !rc.over {
		rc.header = make(http.Header, len(hd))
		for k, vs := range hd {
			if pv, ok := rc.pre[k]; !ok || !slices.Equal(pv, vs) {
				rc.header[k] = slices.Clone(vs)
			}
		}
		if refused(code, rc.header, rc.auth) {
			rc.over, rc.header = true, nil // not to be stored: no copy
		} else if n, err := strconv.ParseInt(hd.Get("Content-Length"), 10, 64); err == nil {
			rc.declared = n
			if n > rc.limit {
				rc.over = true
			} else {
				rc.buf = make([]byte, 0, n)
			}
		}
	}
	addStatus(hd, rc.status)
	rc.ResponseWriter.WriteHeader(code)
}

// Write copies p while the body fits and passes it to the client.
func (rc *recorder) Write(p []byte) (int, error) {
	if !rc.wrote {
		rc.WriteHeader(http.StatusOK)
	}
	if !rc.over {
		if int64(len(rc.buf)+len(p)) > rc.limit {
			rc.over, rc.buf = true, nil
		} else {
			if len(rc.buf)+len(p) > cap(rc.buf) {
				// Doubling, up to the limit: append grows a large
				// slice by 1.25, which allocates five times the body.
				n := int(min(int64(max(2*cap(rc.buf), len(rc.buf)+len(p), 4096)), rc.limit))
				rc.buf = append(make([]byte, 0, n), rc.buf...)
			}
			rc.buf = append(rc.buf, p...)
		}
	}
	if rc.clientErr == nil {
		if _, err := rc.ResponseWriter.Write(p); err != nil {
			rc.clientErr = err
		}
	}
	if rc.clientErr != nil && rc.over {
		return 0, rc.clientErr
	}
	return len(p), nil
}

// FlushError flushes the client's connection; while the copy goes on, a
// client that left is not an error.
func (rc *recorder) FlushError() error {
	if rc.clientErr != nil {
		if rc.over {
			return rc.clientErr
		}
		return nil
	}
	if err := http.NewResponseController(rc.ResponseWriter).Flush(); err != nil {
		rc.clientErr = err
		if rc.over {
			return err
		}
	}
	return nil
}

// Unwrap returns the client's writer.
func (rc *recorder) Unwrap() http.ResponseWriter { return rc.ResponseWriter }
