// Package rawtest runs a scripted HTTP/1.1 upstream on loopback for tests:
// it reads each request with net/http's parser and answers with whatever
// bytes the test writes, well-formed or not, so that a client's handling
// of hostile or unusual upstream answers can be tested on real sockets.
// Serve is the loopback server under it, for a test that reads the
// connection its own way.
package rawtest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// Answer writes the raw answer to the i-th request (counted over all
// connections, from 0), whose body has been read, and reports whether the
// connection stays open for the next request.
type Answer func(w io.Writer, req *http.Request, body []byte, i int) bool

// Server is a scripted upstream. It stops, closing every connection, when
// the test ends.
type Server struct {
	// Addr is the server's host:port.
	Addr    string
	accepts atomic.Int64
}

// Accepts returns how many connections the server has accepted.
func (s *Server) Accepts() int64 { return s.accepts.Load() }

// Start serves answer on a loopback port until t ends.
func Start(t testing.TB, answer Answer) *Server {
	t.Helper()
	var n atomic.Int64
	return Serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			if !answer(c, req, body, int(n.Add(1)-1)) {
				return
			}
		}
	})
}

// Serve runs serve, in a goroutine of its own, for every connection
// accepted on a loopback port, and closes the connection when serve
// returns. When t ends it stops accepting, closes every connection and
// waits for the goroutines.
func Serve(t testing.TB, serve func(c net.Conn)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}
