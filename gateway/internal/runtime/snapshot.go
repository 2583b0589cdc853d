package runtime

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/policy"
	"github.com/gitgate/gitgate/gateway/internal/proxy"
	"github.com/gitgate/gitgate/gateway/internal/router"
	"github.com/gitgate/gitgate/gateway/internal/traffic"
	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
)

// snapshot is one compiled config. It is immutable once published, apart
// from its reference count and the recorded bundle metadata.
type snapshot struct {
	engine   *Engine
	meta     atomic.Pointer[meta]
	table    *router.Table
	handlers []http.Handler // by router Match.Index
	pools    map[string]*upstream.Pool
	// failovers holds the failover upstreams, which have no pool.
	failovers map[string]*proxy.Failover
	policies  *policy.Set
	traffic   *traffic.Set
	// cacheKeep are the response cache namespaces of its routes: an apply
	// keeps their entries and drops the others.
	cacheKeep []string
	// fresh holds the pools this snapshot created, while it is being
	// compiled; nil once compile returns it.
	fresh map[*upstream.Pool]bool

	// refs is 1 while the snapshot is current, plus one per request in
	// flight; the snapshot is released when it drops to 0.
	refs      atomic.Int64
	cleanOnce sync.Once
	polOnce   sync.Once
}

// meta is the bundle a snapshot serves and when it was applied.
type meta struct {
	bundle    *schemas.Bundle
	appliedAt time.Time
}

func (s *snapshot) bundle() *schemas.Bundle { return s.meta.Load().bundle }

// ref takes a reference unless the snapshot has already drained.
func (s *snapshot) ref() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unref drops a reference and releases the snapshot when it was the last.
func (s *snapshot) unref() {
	if s.refs.Add(-1) == 0 {
		s.release()
	}
}

// release hands back the snapshot's pools (closing those no other live
// snapshot uses) and closes its policies.
func (s *snapshot) release() {
	s.cleanOnce.Do(func() {
		e := s.engine
		var closing []*upstream.Pool
		e.liveMu.Lock()
		if _, ok := e.live[s]; ok {
			delete(e.live, s)
			for _, p := range s.pools {
				if e.pools[p]--; e.pools[p] <= 0 {
					delete(e.pools, p)
					closing = append(closing, p)
				}
			}
		}
		e.liveMu.Unlock()
		for _, p := range closing {
			p.Close()
		}
		s.closePolicies()
	})
}

func (s *snapshot) closePolicies() {
	s.polOnce.Do(func() {
		if s.policies != nil {
			s.policies.Close()
		}
	})
}

// discard releases a snapshot that was never published: fresh holds the
// pools it created (nil: all of them).
func (s *snapshot) discard(fresh map[*upstream.Pool]bool) {
	for _, p := range s.pools {
		if fresh == nil || fresh[p] {
			p.Close()
		}
	}
	s.closePolicies()
}
