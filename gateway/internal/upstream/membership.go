package upstream

import (
	"math"
)

// maxRing bounds the length of a weighted membership's ring: weights are
// scaled down to it (each weighted member keeping at least one slot).
const maxRing = 1024

// membership is one immutable set of a pool's targets with their weights.
// Pick reads the current one with a single atomic load.
type membership struct {
	// targets are the members, each once.
	targets []*Target
	// ring is what round robin walks and random and least requests draw
	// from: targets repeated by weight and interleaved, or targets itself
	// when every member weighs the same.
	ring []*Target
	// weights are the targets' weights by index; nil when every member
	// weighs the same.
	weights []float64
	// zero is true when some member has weight 0: such a member is not in
	// the ring and is picked only when no member with a weight is
	// available.
	zero bool
}

// newMembership returns the membership of targets; weights (by index) nil
// or all equal means every target weighs the same. Only weight 0 against
// others is special: if every weight is 0, they all weigh the same.
func newMembership(targets []*Target, weights []uint32) *membership {
	m := &membership{targets: targets, ring: targets}
	if len(weights) != len(targets) {
		return m
	}
	same := true
	for _, w := range weights {
		same = same && w == weights[0]
	}
	if same {
		return m
	}
	m.weights = make([]float64, len(weights))
	var total uint64
	for i, w := range weights {
		m.weights[i] = float64(w)
		total += uint64(w)
		m.zero = m.zero || w == 0
	}
	// Slots per member, scaled to at most about maxRing in all.
	slots := make([]int, len(weights))
	for i, w := range weights {
		switch {
		case w == 0:
		case total <= maxRing:
			slots[i] = int(w)
		default:
			slots[i] = max(1, int(math.Round(float64(w)*maxRing/float64(total))))
		}
	}
	if g := gcdAll(slots); g > 1 {
		for i := range slots {
			slots[i] /= g
		}
	}
	m.ring = smoothRing(targets, slots)
	return m
}

// smoothRing orders the slots of the targets by smooth weighted round
// robin (as nginx does), so that a walk of the ring spreads each member's
// turns evenly instead of in runs.
func smoothRing(targets []*Target, slots []int) []*Target {
	total := 0
	for _, s := range slots {
		total += s
	}
	ring := make([]*Target, 0, total)
	cur := make([]int, len(slots))
	for range total {
		best := -1
		for i, s := range slots {
			if s == 0 {
				continue
			}
			cur[i] += s
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		ring = append(ring, targets[best])
	}
	return ring
}

func gcdAll(xs []int) int {
	g := 0
	for _, x := range xs {
		a, b := g, x
		for b != 0 {
			a, b = b, a%b
		}
		g = a
	}
	return g
}

// weightedScore is the weighted rendezvous score of hash h for weight w:
// the member with the highest score wins, and each wins for a share of
// the keys proportional to its weight.
func weightedScore(h uint64, w float64) float64 {
	u := (float64(h>>11) + 0.5) / (1 << 53) // uniform in (0, 1)
	return w / -math.Log(u)
}
