package admin

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestApplyLogNamesThePeer puts a bundle over the real admin socket,
// without If-Match as an operator's curl would: the "applied bundle" line
// names the writing process by uid and pid (SO_PEERCRED), not by the
// socket's empty remote address.
func TestApplyLogNamesThePeer(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	h := start(t, func(o *Options) { o.Logger = zerolog.New(&logs) })
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))

	var applied map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["message"] == "applied bundle" {
			applied = m
		}
	}
	if applied == nil {
		t.Fatalf("no \"applied bundle\" line in:\n%s", logs.String())
	}
	uid, _ := applied["peer_uid"].(float64)
	pid, _ := applied["peer_pid"].(float64)
	_, hasUID := applied["peer_uid"]
	if !hasUID || int(uid) != os.Getuid() || int(pid) != os.Getpid() {
		t.Fatalf("applied bundle line %v: want peer_uid %d and peer_pid %d", applied, os.Getuid(), os.Getpid())
	}
	if r, ok := applied["remote"]; ok {
		t.Fatalf("applied bundle line keeps the meaningless remote %q of a Unix socket peer", r)
	}
}
