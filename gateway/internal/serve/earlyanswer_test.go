package serve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestEarlyUpstreamAnswerDuringAnUpload: an upstream that answers without
// reading a chunked upload (a 401) leaves the rest of the upload to the
// gateway: a request inside the upload's chunks never reaches the
// upstream, and the pipelined request after the upload is answered (or the
// connection closed), over either HTTP/1.1 server.
func TestEarlyUpstreamAnswerDuringAnUpload(t *testing.T) {
	t.Parallel()
	log := &requestLog{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		if r.URL.Path == "/upload" {
			// Without reading the body, answered at once.
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusUnauthorized)
			w.(http.Flusher).Flush()
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	addr := serveConfig(t, allTo(up.URL))
	chunk := "2000\r\n" + strings.Repeat("u", 0x2000) + "\r\n"
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	upload := "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat(chunk, 8) + fmt.Sprintf("%x\r\n%s\r\n", len(smuggled), smuggled) + "0\r\n\r\n"
	for round := range 5 {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		go func() { _, _ = io.WriteString(conn, upload+"GET /after HTTP/1.1\r\nHost: x\r\n\r\n") }()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("round %d: reading the upload's answer: %v", round, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("round %d: upload answered %d, want 401", round, resp.StatusCode)
		}
		if resp, err := http.ReadResponse(br, nil); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("round %d: the pipelined request got %d", round, resp.StatusCode)
			}
		}
		_ = conn.Close()
		for _, r := range log.take() {
			if r.path == "/smuggled" {
				t.Fatalf("round %d: a request inside the upload's chunks reached the upstream", round)
			}
		}
	}
}
