package runtime

// gRPC through the gateway with the real google.golang.org/grpc client and
// server: the four kinds of call, trailers, a bidirectional stream across
// config applies, and the gateway's own answers in gRPC's shape. Only tests
// import grpc; the gateway binary does not (schemas/deps_test.go).

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gitgate/gitgate/schemas"
)

// rawCodec carries messages as the bytes they are, so that the test
// services need no generated code. Calls choose it with
// grpc.CallContentSubtype("raw"): Content-Type application/grpc+raw.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

func init() { encoding.RegisterCodec(rawCodec{}) }

// echoDesc is a service without generated code: Bidi echoes every message,
// Sum answers the concatenation of all it received once the client is
// done, Slow waits for its context to end. Bidi and Sum set trailer
// x-count to the number of messages received.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "gitgate.test.Echo",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{
		{StreamName: "Bidi", ServerStreams: true, ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			n := 0
			defer func() { s.SetTrailer(metadata.Pairs("x-count", strconv.Itoa(n))) }()
			for {
				var b []byte
				if err := s.RecvMsg(&b); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				n++
				if err := s.SendMsg(&b); err != nil {
					return err
				}
			}
		}},
		{StreamName: "Sum", ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			var all []byte
			n := 0
			for {
				var b []byte
				if err := s.RecvMsg(&b); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					return err
				}
				n++
				all = append(all, b...)
			}
			s.SetTrailer(metadata.Pairs("x-count", strconv.Itoa(n)))
			return s.SendMsg(&all)
		}},
		{StreamName: "Slow", Handler: func(_ any, s grpc.ServerStream) error {
			<-s.Context().Done()
			return s.Context().Err()
		}},
	},
}

var (
	bidiDesc = &echoDesc.Streams[0]
	sumDesc  = &echoDesc.Streams[1]
	rawCall  = grpc.CallContentSubtype("raw")
)

// grpcUpstream runs a real gRPC server (health and echo services) on a
// loopback listener, without TLS: the gateway reaches it with h2c.
func grpcUpstream(t testing.TB) (string, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	s.RegisterService(&echoDesc, struct{}{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return "http://" + lis.Addr().String(), hs
}

// grpcFront serves e on a loopback listener that accepts HTTP/1.1 and
// HTTP/2 by prior knowledge (the gateway's --h2c), and returns a gRPC
// client connection to it.
func grpcFront(t testing.TB, e *Engine) *grpc.ClientConn {
	t.Helper()
	srv := httptest.NewUnstartedServer(e)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(srv.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func h2cUps(targets ...string) schemas.Upstream {
	u := ups(targets...)
	u.Protocol = schemas.ProtocolH2C
	return u
}

// grpcConfig routes the health and echo services to the gRPC upstream.
func grpcConfig(target string) schemas.Config {
	return schemas.Config{
		Upstreams: map[string]schemas.Upstream{"g": h2cUps(target)},
		Routes: map[string]schemas.Route{
			"health": route("/grpc.health.v1.Health/", to("g", 100)),
			"echo":   route("/gitgate.test.Echo/", to("g", 100)),
		},
	}
}

func trailerCount(t *testing.T, md metadata.MD, want int) {
	t.Helper()
	if got := md.Get("x-count"); len(got) != 1 || got[0] != strconv.Itoa(want) {
		t.Errorf("trailer x-count = %v, want %d", got, want)
	}
}

func TestGRPCCallsPassThrough(t *testing.T) {
	t.Parallel()
	target, hs := grpcUpstream(t)
	e := newEngine(t, Options{})
	mustApply(t, e, grpcConfig(target))
	conn := grpcFront(t, e)
	hc := healthpb.NewHealthClient(conn)

	tests := []struct {
		name string
		call func(t *testing.T, ctx context.Context)
	}{
		{"unary", func(t *testing.T, ctx context.Context) {
			res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Check = %v, %v; want SERVING", res, err)
			}
		}},
		{"unary error of the upstream keeps its status", func(t *testing.T, ctx context.Context) {
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nobody"})
			if status.Code(err) != codes.NotFound {
				t.Fatalf("Check(nobody) = %v, want NotFound", err)
			}
		}},
		{"server streaming", func(t *testing.T, ctx context.Context) {
			hs.SetServingStatus("watched", healthpb.HealthCheckResponse_SERVING)
			w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "watched"})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := w.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("first Recv = %v, %v; want SERVING", res, err)
			}
			hs.SetServingStatus("watched", healthpb.HealthCheckResponse_NOT_SERVING)
			if res, err := w.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("second Recv = %v, %v; want NOT_SERVING", res, err)
			}
		}},
		{"client streaming", func(t *testing.T, ctx context.Context) {
			s, err := conn.NewStream(ctx, sumDesc, "/gitgate.test.Echo/Sum", rawCall)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"a", "b", "c"} {
				b := []byte(m)
				if err := s.SendMsg(&b); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := s.RecvMsg(&got); err != nil || string(got) != "abc" {
				t.Fatalf("RecvMsg = %q, %v; want abc", got, err)
			}
			if err := s.RecvMsg(&got); !errors.Is(err, io.EOF) {
				t.Fatalf("after the answer: %v, want EOF", err)
			}
			trailerCount(t, s.Trailer(), 3)
		}},
		{"bidirectional", func(t *testing.T, ctx context.Context) {
			s, err := conn.NewStream(ctx, bidiDesc, "/gitgate.test.Echo/Bidi", rawCall)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 { // each answer arrives before the next send
				b := []byte("m" + strconv.Itoa(i))
				if err := s.SendMsg(&b); err != nil {
					t.Fatal(err)
				}
				var got []byte
				if err := s.RecvMsg(&got); err != nil || string(got) != string(b) {
					t.Fatalf("RecvMsg = %q, %v; want %q", got, err, b)
				}
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := s.RecvMsg(&got); !errors.Is(err, io.EOF) {
				t.Fatalf("after CloseSend: %v, want EOF", err)
			}
			trailerCount(t, s.Trailer(), 3)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tc.call(t, ctx)
		})
	}
}

// TestGRPCBidiSurvivesApplies keeps one bidirectional stream open while 100
// configs that change an unrelated route are applied, exchanging a message
// after each.
func TestGRPCBidiSurvivesApplies(t *testing.T) {
	t.Parallel()
	target, _ := grpcUpstream(t)
	a := named(t, "a")
	e := newEngine(t, Options{})
	cfg := func(i int) schemas.Config {
		c := grpcConfig(target)
		c.Upstreams["a"] = ups(a.URL)
		c.Routes["other"] = route("/other/"+strconv.Itoa(i), to("a", 100))
		return c
	}
	mustApply(t, e, cfg(0))
	conn := grpcFront(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := conn.NewStream(ctx, bidiDesc, "/gitgate.test.Echo/Bidi", rawCall)
	if err != nil {
		t.Fatal(err)
	}
	const applies = 100
	for i := 1; i <= applies; i++ {
		mustApply(t, e, cfg(i))
		b := []byte("after apply " + strconv.Itoa(i))
		if err := s.SendMsg(&b); err != nil {
			t.Fatalf("send after apply %d: %v", i, err)
		}
		var got []byte
		if err := s.RecvMsg(&got); err != nil || string(got) != string(b) {
			t.Fatalf("receive after apply %d: %q, %v", i, got, err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := s.RecvMsg(&got); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend: %v, want EOF", err)
	}
	trailerCount(t, s.Trailer(), applies)
}

// TestGRPCGatewayErrors calls, with the real gRPC client, routes whose
// answer the gateway makes itself, and checks that each is a gRPC status
// with the gateway's message.
func TestGRPCGatewayErrors(t *testing.T) {
	t.Parallel()
	target, _ := grpcUpstream(t)
	withPolicy := func(path, policy string) schemas.Route {
		r := route(path, to("g", 100))
		r.Policies = []string{policy}
		return r
	}
	slow := route("/gitgate.test.Echo/Slow", to("g", 100))
	slow.Timeout = schemas.Duration(100 * time.Millisecond)
	breaker := h2cUps(refusedURL(t))
	breaker.CircuitBreaker = &schemas.CircuitBreaker{ConsecutiveFailures: 1, OpenDuration: schemas.Duration(time.Hour)}
	ejected := h2cUps(refusedURL(t))
	ejected.OutlierDetection = &schemas.OutlierDetection{ConsecutiveFailures: 1, BaseEjection: schemas.Duration(time.Hour), MaxEjection: schemas.Duration(time.Hour)}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"g": h2cUps(target), "breaker": breaker, "ejected": ejected},
		Routes: map[string]schemas.Route{
			"slow":    slow,
			"breaker": route("/m.Breaker/", to("breaker", 100)),
			"ejected": route("/m.Ejected/", to("ejected", 100)),
			"key":     withPolicy("/m.Key/", "key"),
			"office":  withPolicy("/m.Office/", "office"),
			"limited": withPolicy("/m.Limited/", "limited"),
		},
		Policies: map[string]schemas.Policy{
			"key":     {APIKey: &schemas.APIKey{Keys: map[string]string{"k": "sha256:" + strings.Repeat("0", 64)}}},
			"office":  {IPAllow: &schemas.IPList{CIDRs: []string{"203.0.113.0/24"}}},
			"limited": {RateLimit: &schemas.RateLimit{Rate: 1, Per: schemas.Duration(time.Hour), Burst: 1}},
		},
	}
	e := newEngine(t, Options{})
	mustApply(t, e, cfg)
	conn := grpcFront(t, e)

	tests := []struct {
		name   string
		method string
		calls  int // the last one is checked
		code   codes.Code
		msg    string // the whole grpc-message: the gateway's, not the client's
	}{
		{"no route", "/m.Nowhere/Call", 1, codes.Unimplemented, "no route"},
		{"upstream refuses", "/m.Breaker/Call", 1, codes.Unavailable, "upstream failed"},
		{"breaker open", "/m.Breaker/Call", 2, codes.Unavailable, "circuit breaker open (upstream breaker)"},
		{"no healthy target", "/m.Ejected/Call", 2, codes.Unavailable, "no healthy target (upstream ejected)"},
		{"route timeout", "/gitgate.test.Echo/Slow", 1, codes.DeadlineExceeded, "upstream timeout"},
		{"rate limited", "/m.Limited/Call", 2, codes.ResourceExhausted, "rate limit exceeded; retry after the time in Retry-After"},
		{"no API key", "/m.Key/Call", 1, codes.Unauthenticated, "API key required"},
		{"client address not allowed", "/m.Office/Call", 1, codes.PermissionDenied, "client address not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the breaker and ejection cases count calls
			// of the same upstream.
			var err error
			for range tc.calls {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				in, out := []byte("x"), []byte(nil)
				err = conn.Invoke(ctx, tc.method, &in, &out, rawCall)
				cancel()
			}
			st := status.Convert(err)
			if st.Code() != tc.code || (st.Message() != tc.msg && !upstreamDeadline(tc.code, st.Message())) {
				t.Fatalf("status %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}
}

// TestGRPCTimeoutHeader sends gRPC calls with a grpc-timeout to a method
// that never answers: the gateway ends each at the earlier of grpc-timeout
// and the route timeout, with DEADLINE_EXCEEDED.
func TestGRPCTimeoutHeader(t *testing.T) {
	t.Parallel()
	target, _ := grpcUpstream(t)
	long := route("/gitgate.test.Echo/Slow", to("g", 100))
	long.Timeout = schemas.Duration(time.Hour)
	short := route("/short/gitgate.test.Echo/Slow", to("g", 100))
	short.Timeout = schemas.Duration(100 * time.Millisecond)
	short.Rewrite = &schemas.Rewrite{StripPrefix: "/short"}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"g": h2cUps(target)},
		Routes: map[string]schemas.Route{"long": long, "short": short}})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}

	tests := []struct {
		name, path, timeout string
	}{
		{"grpc-timeout shorter than the route's", "/gitgate.test.Echo/Slow", "100m"},
		{"route timeout shorter than grpc-timeout", "/short/gitgate.test.Echo/Slow", "1H"},
		{"grpc-timeout in nanoseconds", "/gitgate.test.Echo/Slow", "50000000n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One empty message: flag 0, length 0.
			req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Grpc-Timeout", tc.timeout)
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if msg := res.Header.Get("Grpc-Message"); res.StatusCode != http.StatusOK || res.Header.Get("Grpc-Status") != "4" ||
				(msg != "upstream timeout" && !upstreamDeadline(codes.DeadlineExceeded, msg)) {
				t.Fatalf("got %d grpc-status %q grpc-message %q, want 200, 4, upstream timeout",
					res.StatusCode, res.Header.Get("Grpc-Status"), res.Header.Get("Grpc-Message"))
			}
		})
	}
}

// TestGRPCDeadlineForwarded checks the grpc-timeout the upstream gets: the
// caller's when it is the shorter, else the route's timeout, so that the
// upstream gives up when the gateway does.
func TestGRPCDeadlineForwarded(t *testing.T) {
	t.Parallel()
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Seen-Timeout", r.Header.Get("Grpc-Timeout"))
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0")
	}))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	t.Cleanup(up.Close)
	r := route("/svc.S/", to("g", 100))
	r.Timeout = schemas.Duration(2 * time.Second)
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"g": h2cUps(up.URL)}, Routes: map[string]schemas.Route{"r": r}})
	srv := front(t, e)

	tests := []struct {
		name, sent, want string
	}{
		{"none sent: the route's", "", "2000m"},
		{"longer than the route's: the route's", "1H", "2000m"},
		{"shorter: the caller's", "500m", "500m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/svc.S/M", strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			if tc.sent != "" {
				req.Header.Set("Grpc-Timeout", tc.sent)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if got := res.Header.Get("X-Seen-Timeout"); got != tc.want {
				t.Fatalf("upstream saw grpc-timeout %q, want %q", got, tc.want)
			}
		})
	}
}

// TestGRPCDeadlineMidStream lets the route's timeout cut a bidirectional
// call after messages have flowed: the client, which set no deadline of
// its own, gets DEADLINE_EXCEEDED from the gateway, not a reset stream.
func TestGRPCDeadlineMidStream(t *testing.T) {
	t.Parallel()
	target, _ := grpcUpstream(t)
	cfg := grpcConfig(target)
	r := cfg.Routes["echo"]
	r.Timeout = schemas.Duration(300 * time.Millisecond)
	cfg.Routes["echo"] = r
	e := newEngine(t, Options{})
	mustApply(t, e, cfg)
	conn := grpcFront(t, e)
	s, err := conn.NewStream(context.Background(), bidiDesc, "/gitgate.test.Echo/Bidi", rawCall)
	if err != nil {
		t.Fatal(err)
	}
	b, got := []byte("x"), []byte(nil)
	if err := s.SendMsg(&b); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(&got); err != nil {
		t.Fatalf("first message: %v", err)
	}
	err = s.RecvMsg(&got) // nothing more is sent: the deadline ends the call
	// The upstream holds the same deadline (the gateway forwards it in
	// grpc-timeout), so either side may end the call first; both must end
	// it with DEADLINE_EXCEEDED, never a reset stream (INTERNAL).
	st := status.Convert(err)
	if st.Code() != codes.DeadlineExceeded || (st.Message() != "upstream timeout" && !upstreamDeadline(st.Code(), st.Message())) {
		t.Fatalf("status %v %q, want DeadlineExceeded from the gateway or the upstream", st.Code(), st.Message())
	}
}

// upstreamDeadline reports whether a DEADLINE_EXCEEDED came from the
// upstream's grpc-go server rather than the gateway: the gateway forwards
// the deadline it holds a call to in grpc-timeout, so the upstream's timer
// may fire first. Either way the call ends with DEADLINE_EXCEEDED, never a
// reset stream.
func upstreamDeadline(code codes.Code, msg string) bool {
	return code == codes.DeadlineExceeded && msg == "context deadline exceeded"
}
