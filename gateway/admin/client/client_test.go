package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// unixServer serves h on a Unix socket and returns its path.
func unixServer(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ggc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return path
}

func testBundle(t *testing.T) *schemas.Bundle {
	t.Helper()
	b, err := schemas.NewBundle("v1", schemas.Source{}, schemas.Config{}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGatewayDownIsTransportError(t *testing.T) {
	t.Parallel()
	c := client.New(filepath.Join(t.TempDir(), "missing.sock"))
	defer c.Close()
	ctx := context.Background()
	calls := map[string]func() error{
		"Put":    func() error { _, err := c.Put(ctx, testBundle(t), ""); return err },
		"Get":    func() error { _, _, err := c.Get(ctx); return err },
		"Status": func() error { _, err := c.Status(ctx); return err },
		"Ready":  func() error { return c.Ready(ctx) },
		"Watch":  func() error { _, _, err := c.Watch(ctx, "", time.Second); return err },
		"Subscribe": func() error {
			return c.Subscribe(ctx, 0, func(client.WatchEvent) error { return nil })
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var te *client.TransportError
			if err := call(); !errors.As(err, &te) {
				t.Fatalf("%s with no gateway: %v, want *TransportError", name, err)
			}
		})
	}
}

func TestPutAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    int
		body    string
		wantErr func(t *testing.T, err error)
	}{
		{name: "applied", code: 200, body: `{"version":"v1","digest":"sha256:x"}`},
		{name: "malformed is rejected", code: 400, body: `{"error":"decoding bundle: unexpected EOF"}`, wantErr: func(t *testing.T, err error) {
			var re *client.RejectedError
			if !errors.As(err, &re) || re.Code != 400 || !strings.Contains(re.Message, "unexpected EOF") {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "too large is rejected", code: 413, body: `{"error":"bundle larger than 10 bytes"}`, wantErr: func(t *testing.T, err error) {
			var re *client.RejectedError
			if !errors.As(err, &re) || re.Code != 413 {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "invalid carries diagnostics", code: 422, body: `{"error":"invalid","diagnostics":[{"path":"routes.a","message":"bad"}]}`, wantErr: func(t *testing.T, err error) {
			var re *client.RejectedError
			if !errors.As(err, &re) || len(re.Diagnostics) != 1 || re.Invalid().Diagnostics[0].Path != "routes.a" {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(err.Error(), "routes.a: bad") {
				t.Fatalf("error text %q lacks the diagnostic", err)
			}
		}},
		{name: "precondition carries the running version", code: 412, body: `{"error":"stale","currentVersion":"v9"}`, wantErr: func(t *testing.T, err error) {
			var pe *client.PreconditionError
			if !errors.As(err, &pe) || pe.Current != "v9" || !errors.Is(err, client.ErrPreconditionFailed) {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "server error is a StatusError", code: 500, body: "boom\n", wantErr: func(t *testing.T, err error) {
			var se *client.StatusError
			if !errors.As(err, &se) || se.Code != 500 || se.Message != "boom" {
				t.Fatalf("got %#v", err)
			}
		}},
		{name: "garbled success is a transport error", code: 200, body: `{"version":`, wantErr: func(t *testing.T, err error) {
			var te *client.TransportError
			if !errors.As(err, &te) {
				t.Fatalf("got %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ifMatch := make(chan string, 1)
			sock := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ifMatch <- r.Header.Get("If-Match")
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.code)
				_, _ = io.WriteString(w, tt.body)
			}))
			c := client.New(sock)
			defer c.Close()
			a, err := c.Put(context.Background(), testBundle(t), "v0")
			if gotIfMatch := <-ifMatch; gotIfMatch != `"v0"` {
				t.Errorf("If-Match sent %q, want \"v0\"", gotIfMatch)
			}
			if tt.wantErr == nil {
				if err != nil || a.Version != "v1" {
					t.Fatalf("got %+v, %v", a, err)
				}
				return
			}
			tt.wantErr(t, err)
		})
	}
}

func TestETag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"v1": `"v1"`, "*": "*", `a"b`: `"a\"b"`} {
		if got := client.ETag(in); got != want {
			t.Errorf("ETag(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stream  string
		want    []client.WatchEvent
		wantErr bool
	}{
		{
			name:   "events, heartbeats and CRLF",
			stream: ": hi\n\nid: 7\nevent: reset\ndata: {\"version\":\"a\"}\n\n: heartbeat\n\nid: 8\r\nevent: applied\r\ndata: {\"version\":\"b\"}\r\n\r\n",
			want: []client.WatchEvent{
				{ID: 7, Type: "reset", State: client.WatchState{Version: "a"}},
				{ID: 8, Type: "applied", State: client.WatchState{Version: "b"}},
			},
		},
		{
			name:   "data split over lines",
			stream: "id: 1\nevent: applied\ndata: {\"version\":\ndata: \"c\"}\n\n",
			want:   []client.WatchEvent{{ID: 1, Type: "applied", State: client.WatchState{Version: "c"}}},
		},
		{
			name:   "unfinished event at the end is dropped",
			stream: "id: 1\nevent: applied\ndata: {}\n\nid: 2\nevent: applied\ndata: {}\n",
			want:   []client.WatchEvent{{ID: 1, Type: "applied"}},
		},
		{name: "bad id", stream: "id: x\n\n", wantErr: true},
		{name: "bad data", stream: "id: 1\nevent: applied\ndata: {\n\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []client.WatchEvent
			err := client.ReadEvents(strings.NewReader(tt.stream), func(ev client.WatchEvent) error {
				got = append(got, ev)
				return nil
			})
			var te *client.TransportError
			if tt.wantErr != errors.As(err, &te) {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i].ID != tt.want[i].ID || got[i].Type != tt.want[i].Type || got[i].State.Version != tt.want[i].State.Version {
					t.Errorf("event %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReadEventsReturnsCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	err := client.ReadEvents(strings.NewReader("id: 1\ndata: {}\n\nid: 2\ndata: {}\n\n"), func(client.WatchEvent) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Fatalf("err %v after %d events, want the callback's error after 1", err, n)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add("id: 7\nevent: reset\ndata: {\"version\":\"a\"}\n\n")
	f.Add(": heartbeat\n\nid: 1\ndata: {}\ndata: \n\n")
	f.Add("id:1\n\n\n\ndata:{\"lastRejected\":{\"diagnostics\":[{\"message\":\"m\"}]}}\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		var last uint64
		_ = client.ReadEvents(strings.NewReader(stream), func(ev client.WatchEvent) error {
			last = ev.ID
			return nil
		})
		_ = last
	})
}
