package upstream

import (
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// BenchmarkPick measures one Pick and Done of each balancer over four
// targets, from parallel goroutines.
func BenchmarkPick(b *testing.B) {
	for _, balance := range []string{schemas.BalanceRoundRobin, schemas.BalanceLeastRequests, schemas.BalanceHash} {
		b.Run(balance, func(b *testing.B) {
			p, err := NewPool("u", defaulted(schemas.Upstream{Targets: targets(4), Balance: balance}), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.RunParallel(func(pb *testing.PB) {
				var k uint64
				for pb.Next() {
					k++
					t, err := p.Pick(mix(k), nil)
					if err != nil {
						b.Error(err)
						return
					}
					p.Done(t, Success)
				}
			})
		})
	}
}
