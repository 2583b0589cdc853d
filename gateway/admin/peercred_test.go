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
// TestApplyLogNamesThePeer: every write over the admin socket is logged
// with the writer's uid and pid (SO_PEERCRED), whether it was applied,
// rejected (422) or refused as stale (412).
func TestApplyLogNamesThePeer(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	h := start(t, func(o *Options) { o.Logger = zerolog.New(&logs) })
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
	if _, err := h.put(t, bundle(t, "bad", "http://127.0.0.1:1", "nope"), ""); err == nil {
		t.Fatal("a bundle naming an unknown upstream was applied")
	}
	if _, err := h.put(t, bundle(t, "v2", "http://127.0.0.1:2"), `"v0"`); err == nil {
		t.Fatal("a stale If-Match was applied")
	}

	lines := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := m["message"].(string); msg != "" {
			lines[msg] = m
		}
	}
	for _, msg := range []string{"applied bundle", "rejected bundle", "stale writer refused"} {
		l, ok := lines[msg]
		if !ok {
			t.Fatalf("no %q line in:\n%s", msg, logs.String())
		}
		uid, hasUID := l["peer_uid"].(float64)
		pid, _ := l["peer_pid"].(float64)
		if !hasUID || int(uid) != os.Getuid() || int(pid) != os.Getpid() {
			t.Errorf("%s line %v: want peer_uid %d and peer_pid %d", msg, l, os.Getuid(), os.Getpid())
		}
		if r, ok := l["remote"]; ok {
			t.Errorf("%s line keeps the meaningless remote %q of a Unix socket peer", msg, r)
		}
	}
}
