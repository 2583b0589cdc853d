package runtime

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkGRPCUnary makes grpc.health.v1 Check calls with the real gRPC
// client, from parallel goroutines on one connection, straight to the
// gRPC server and through the gateway (h2c in, h2c out). Compare the
// calls/s of the two:
//
//	go test -run '^$' -bench BenchmarkGRPCUnary -benchtime 3s ./gateway/internal/runtime/
func BenchmarkGRPCUnary(b *testing.B) {
	target, _ := grpcUpstream(b)
	e := newEngine(b, Options{})
	mustApply(b, e, grpcConfig(target))
	direct, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(target, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = direct.Close() })
	for _, bc := range []struct {
		name string
		conn *grpc.ClientConn
	}{
		{"direct", direct},
		{"gateway", grpcFront(b, e)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hc := healthpb.NewHealthClient(bc.conn)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
