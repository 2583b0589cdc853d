package compress

import "sync/atomic"

// DefaultBudget bounds the memory of the encoders in use at once, across
// every route: an encoder is held for as long as its response lasts, and
// a zstd one holds megabytes, so slow readers of compressible streams
// would otherwise hold memory without bound. A response that finds the
// budget spent goes out uncompressed.
const DefaultBudget = 256 << 20

// shared is the process's budget, used by every Handler.
var shared = newBudget(DefaultBudget)

// budget counts the bytes of encoders in use against a bound.
type budget struct {
	max  int64
	used atomic.Int64
}

func newBudget(max int64) *budget { return &budget{max: max} }

// take reserves n bytes and reports whether they fit.
func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

// give returns n bytes taken.
func (b *budget) give(n int64) { b.used.Add(-n) }
