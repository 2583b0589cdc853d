package upstream

import (
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gitgate/gitgate/schemas"
)

// TestGRPCHealthCheck probes a real gRPC server's health service over h2c
// and follows its serving status, for the whole server and for one
// service.
func TestGRPCHealthCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		service string
	}{
		{"whole server", ""},
		{"one service", "shop.Orders"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := grpc.NewServer()
			hs := health.NewServer()
			healthpb.RegisterHealthServer(s, hs)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = s.Serve(lis)
			}()
			t.Cleanup(func() { s.Stop(); <-done })
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_NOT_SERVING)

			p := mustPool(t, schemas.Upstream{
				Targets:  []string{"http://" + lis.Addr().String()},
				Protocol: schemas.ProtocolH2C,
				HealthCheck: &schemas.HealthCheck{GRPC: &schemas.GRPCHealthCheck{Service: tc.service},
					Interval: schemas.Duration(50 * time.Millisecond), Timeout: schemas.Duration(50 * time.Millisecond), HealthyThreshold: 2, UnhealthyThreshold: 2},
			}, nil)
			p.Start()
			eventually(t, func() bool { return !p.Status()[0].Healthy })
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_SERVING)
			eventually(t, func() bool { return p.Status()[0].Healthy })
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_NOT_SERVING)
			eventually(t, func() bool { return !p.Status()[0].Healthy })
		})
	}
}

func TestServingOf(t *testing.T) {
	t.Parallel()
	frame := func(msg ...byte) []byte { return append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...) }
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"serving", frame(0x08, 0x01), true},
		{"not serving", frame(0x08, 0x02), false},
		{"unknown field then serving", frame(0x12, 0x01, 'x', 0x08, 0x01), true},
		{"empty message (UNKNOWN)", frame(), false},
		{"compressed flag", append([]byte{1}, frame(0x08, 0x01)[1:]...), false},
		{"length disagrees", []byte{0, 0, 0, 0, 9, 0x08, 0x01}, false},
		{"truncated varint", frame(0x08), false},
		{"short", []byte{0, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := servingOf(tc.frame); got != tc.want {
				t.Fatalf("servingOf(%x) = %v, want %v", tc.frame, got, tc.want)
			}
		})
	}
}
