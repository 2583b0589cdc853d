package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// lazyPair returns the server side of a loopback TCP connection, as the
// lazyListener hands it out, and the client side.
func lazyPair(t *testing.T) (*lazyConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	c, err := lazyListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	lc, ok := c.(*lazyConn)
	if !ok {
		t.Fatalf("accepted a %T, want a *lazyConn", c)
	}
	return lc, client
}

// A lazyConn's reads end when the last read deadline asked for passes,
// whichever deadlines came before it: a later one or none is waited for
// past an earlier one, an earlier one ends the read, and one in the past
// cuts a read in flight.
func TestLazyConnDeadlines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		first     time.Duration // set first, from now; 0: none
		then      time.Duration // set next, from now; 0: none; <0: in the past, while the read runs
		send      time.Duration // the peer writes after this; 0: never
		wantData  bool
		notBefore time.Duration // a timeout does not come earlier
	}{
		{name: "an earlier deadline ends the read", first: time.Hour, then: 100 * time.Millisecond, notBefore: 100 * time.Millisecond},
		{name: "a later deadline is waited for", first: 50 * time.Millisecond, then: 5 * time.Second, send: 300 * time.Millisecond, wantData: true},
		{name: "no deadline after one", first: 50 * time.Millisecond, send: 300 * time.Millisecond, wantData: true},
		{name: "a later deadline still ends the read", first: 50 * time.Millisecond, then: 300 * time.Millisecond, notBefore: 300 * time.Millisecond},
		{name: "a deadline in the past cuts a read in flight", first: 50 * time.Millisecond, then: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, peer := lazyPair(t)
			start := time.Now()
			_ = c.SetReadDeadline(start.Add(tc.first))
			switch {
			case tc.then > 0:
				_ = c.SetReadDeadline(start.Add(tc.then))
			case tc.then == 0:
				_ = c.SetReadDeadline(time.Time{})
			default:
				_ = c.SetReadDeadline(start.Add(time.Hour))
				time.AfterFunc(100*time.Millisecond, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
			}
			if tc.send > 0 {
				time.AfterFunc(tc.send, func() { _, _ = io.WriteString(peer, "x") })
			}
			// The guard: a read that nothing ends fails the test.
			guard := time.AfterFunc(10*time.Second, func() { _ = c.TCPConn.SetReadDeadline(time.Unix(1, 0)) })
			defer guard.Stop()
			var b [1]byte
			n, err := c.Read(b[:])
			took := time.Since(start)
			if took >= 10*time.Second {
				t.Fatalf("the read ran to the test's guard: %d, %v", n, err)
			}
			if tc.wantData {
				if n != 1 || err != nil {
					t.Fatalf("read %d, %v; want the byte sent after %v", n, err, tc.send)
				}
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read %d, %v; want a timeout", n, err)
			}
			if took < tc.notBefore {
				t.Fatalf("timed out after %v, before the deadline asked for (%v)", took, tc.notBefore)
			}
		})
	}
}

// io.Copy from a lazyConn honours the deadline asked for too (through its
// Read), not an earlier one still on the socket.
func TestLazyConnCopy(t *testing.T) {
	t.Parallel()
	c, peer := lazyPair(t)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_ = c.SetReadDeadline(time.Time{}) // lifted: the socket keeps the earlier one
	time.AfterFunc(300*time.Millisecond, func() {
		_, _ = io.WriteString(peer, "late")
		_ = peer.Close()
	})
	guard := time.AfterFunc(10*time.Second, func() { _ = c.TCPConn.SetReadDeadline(time.Unix(1, 0)) })
	defer guard.Stop()
	var got strings.Builder
	if _, err := io.Copy(&got, c); err != nil || got.String() != "late" {
		t.Fatalf("copied %q, %v; want the bytes sent after the lifted deadline", got.String(), err)
	}
}
