package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
)

// streamWriteTimeout bounds each write of an SSE stream.
const streamWriteTimeout = 30 * time.Second

// event is one published watch event with its data already encoded.
type event struct {
	id   uint64
	typ  string
	data []byte
}

// broadcaster keeps the current watch state and the last events in a ring,
// and wakes waiters by closing a channel on each publish. It starts no
// goroutine: each watch request waits in its own handler, so a client that
// goes away leaves nothing behind.
type broadcaster struct {
	mu      sync.Mutex
	ring    []event // circular, len == capacity
	head    int     // index of the oldest event
	n       int     // events held
	lastID  uint64  // id of the newest event, or the base before any
	state   client.WatchState
	changed chan struct{} // closed and replaced by publish
	done    chan struct{} // closed by close
	closed  bool
}

func newBroadcaster(size int, base uint64, st client.WatchState) *broadcaster {
	return &broadcaster{
		ring:    make([]event, size),
		lastID:  base,
		state:   st,
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// publish records an event of type typ carrying st, the new state.
func (b *broadcaster) publish(typ string, st client.WatchState) {
	data, err := json.Marshal(st)
	if err != nil {
		// WatchState holds only strings, times, diagnostics and counts.
		panic(fmt.Sprintf("encoding watch state: %v", err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastID++
	ev := event{id: b.lastID, typ: typ, data: data}
	if b.n < len(b.ring) {
		b.ring[(b.head+b.n)%len(b.ring)] = ev
		b.n++
	} else {
		b.ring[b.head] = ev
		b.head = (b.head + 1) % len(b.ring)
	}
	b.state = st
	close(b.changed)
	b.changed = make(chan struct{})
}

// snapshot is what a waiter needs after waking up.
type snapshot struct {
	state   client.WatchState
	lastID  uint64
	events  []event       // events after the asked-for id
	reset   bool          // the asked-for id is unknown or gone
	changed chan struct{} // closed on the next publish
}

// after returns the events published after id. reset is true when id is
// newer than any event (another process's id) or older than the buffer.
func (b *broadcaster) after(id uint64) snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	sn := snapshot{state: b.state, lastID: b.lastID, changed: b.changed}
	oldest := b.lastID - uint64(b.n) + 1 // id of ring[head]
	switch {
	case id == b.lastID:
	case id > b.lastID || id+1 < oldest:
		sn.reset = true
	default:
		for i := id + 1 - oldest; i < uint64(b.n); i++ {
			sn.events = append(sn.events, b.ring[(b.head+int(i))%len(b.ring)])
		}
	}
	return sn
}

// current returns the state and the channel closed on the next publish.
func (b *broadcaster) current() (client.WatchState, chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.changed
}

// close wakes every waiter for good.
func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
}

// watch serves GET /v1/watch: SSE when the client accepts
// text/event-stream, else a long-poll.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	if n := s.watchers.Add(1); n > int64(s.opts.MaxWatchers) {
		s.watchers.Add(-1)
		// Close the connection: a refused client must not keep holding a
		// file descriptor, which is what the cap protects.
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, client.ErrorBody{Error: "too many watchers"})
		return
	}
	defer s.watchers.Add(-1)
	s.m.streams.Inc()
	defer s.m.streams.Dec()
	// The request is read; a long wait must not trip the server's read
	// deadline, which would cancel the request's context. Writes get their
	// own deadline, so a client that stops reading cannot pin the handler.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		s.stream(w, r, rc)
		return
	}
	s.longPoll(w, r)
}

// longPoll answers 200 with the state as soon as the running version differs
// from ?since=, and 304 Not Modified (ETag: the running version) when
// ?timeout= (default 30s, capped by MaxWatchTimeout) ends first. A shutdown
// answers 503.
func (s *Server) longPoll(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since := q.Get("since")
	timeout := DefaultWatchTimeout
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, client.ErrorBody{Error: fmt.Sprintf("timeout %q is not a duration such as 30s", v)})
			return
		}
		timeout = min(d, s.opts.MaxWatchTimeout)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		st, changed := s.bc.current()
		if st.Version != since {
			w.Header().Set("ETag", client.ETag(st.Version))
			writeJSON(w, http.StatusOK, st)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			w.Header().Set("ETag", client.ETag(st.Version))
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		case <-s.bc.done:
			writeError(w, http.StatusServiceUnavailable, client.ErrorBody{Error: "gateway shutting down"})
			return
		}
	}
}

// stream serves server-sent events. A new stream, or one whose Last-Event-ID
// is not in the buffer any more, first gets a reset event with the current
// state; then applied and rejected events follow as they are published,
// with comment-line heartbeats in between.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, rc *http.ResponseController) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	cursor, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	if err != nil {
		cursor = 0 // absent or garbage: start with a reset
	}
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		sn := s.bc.after(cursor)
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if sn.reset {
			data, err := json.Marshal(sn.state)
			if err != nil {
				return
			}
			if !writeEvent(w, event{id: sn.lastID, typ: client.EventReset, data: data}) {
				return
			}
		}
		for _, ev := range sn.events {
			if !writeEvent(w, ev) {
				return
			}
		}
		cursor = sn.lastID
		if rc.Flush() != nil {
			return
		}
		select {
		case <-sn.changed:
		case <-heartbeat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.bc.done:
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, ev event) bool {
	_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.id, ev.typ, ev.data)
	return err == nil
}
