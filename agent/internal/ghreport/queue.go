package ghreport

import "sync"

// job is one unit of work for Run: exactly one field is set.
type job struct {
	pr     *PullRequest
	deploy *Deploy
}

// queue holds pending reports: the newest event per pull request (in the
// order pull requests first arrived) and deploy reports (newest per SHA).
// Deploy reports go first: they say what is live.
type queue struct {
	mu         sync.Mutex
	prs        map[int]PullRequest
	order      []int
	deploys    []Deploy
	maxPRs     int
	maxDeploys int
	wake       chan struct{}
}

func newQueue(maxPRs, maxDeploys int) *queue {
	return &queue{
		prs:        make(map[int]PullRequest),
		maxPRs:     maxPRs,
		maxDeploys: maxDeploys,
		wake:       make(chan struct{}, 1),
	}
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pushPR queues pr, replacing a queued event of the same pull request. When
// the queue is full the oldest pull request is dropped and returned.
func (q *queue) pushPR(pr PullRequest) (dropped int, wasDropped bool) {
	q.mu.Lock()
	if _, ok := q.prs[pr.Number]; !ok {
		if len(q.order) >= q.maxPRs {
			dropped, wasDropped = q.order[0], true
			delete(q.prs, dropped)
			q.order = q.order[1:]
		}
		q.order = append(q.order, pr.Number)
	}
	q.prs[pr.Number] = pr
	q.mu.Unlock()
	q.signal()
	return dropped, wasDropped
}

// pushDeploy queues d, replacing a queued report for the same SHA. When the
// queue is full the oldest report is dropped and its SHA returned.
func (q *queue) pushDeploy(d Deploy) (dropped string, wasDropped bool) {
	q.mu.Lock()
	replaced := false
	for i := range q.deploys {
		if q.deploys[i].SHA == d.SHA {
			q.deploys[i] = d
			replaced = true
			break
		}
	}
	if !replaced {
		if len(q.deploys) >= q.maxDeploys {
			dropped, wasDropped = q.deploys[0].SHA, true
			q.deploys = q.deploys[1:]
		}
		q.deploys = append(q.deploys, d)
	}
	q.mu.Unlock()
	q.signal()
	return dropped, wasDropped
}

func (q *queue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.deploys) > 0 {
		d := q.deploys[0]
		q.deploys = q.deploys[1:]
		return job{deploy: &d}, true
	}
	if len(q.order) > 0 {
		n := q.order[0]
		q.order = q.order[1:]
		pr := q.prs[n]
		delete(q.prs, n)
		return job{pr: &pr}, true
	}
	return job{}, false
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.deploys) + len(q.order)
}

// boundedMap is a map safe for concurrent use that forgets its oldest key
// once it holds max keys.
type boundedMap[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]V
	order []K
	max   int
}

func newBoundedMap[K comparable, V any](max int) *boundedMap[K, V] {
	return &boundedMap[K, V]{m: make(map[K]V), max: max}
}

func (b *boundedMap[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

// set stores v under k; a new key evicts the oldest one when full.
func (b *boundedMap[K, V]) set(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; !ok {
		if len(b.order) >= b.max {
			delete(b.m, b.order[0])
			b.order = b.order[1:]
		}
		b.order = append(b.order, k)
	}
	b.m[k] = v
}

// update stores v under k only when k is already there, keeping its place.
func (b *boundedMap[K, V]) update(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; ok {
		b.m[k] = v
	}
}

// postedMemo remembers the last status posted per SHA and context, bounded
// (oldest forgotten first), so the same status is never posted twice.
type postedMemo struct{ last *boundedMap[string, string] }

func newPostedMemo(max int) *postedMemo {
	return &postedMemo{last: newBoundedMap[string, string](max)}
}

// seen reports whether state+description is what was last posted for key.
func (m *postedMemo) seen(key, value string) bool {
	v, ok := m.last.get(key)
	return ok && v == value
}

// has reports whether anything was posted for key.
func (m *postedMemo) has(key string) bool {
	_, ok := m.last.get(key)
	return ok
}

func (m *postedMemo) remember(key, value string) { m.last.set(key, value) }

// commentCache remembers the plan comment's id per pull request, bounded.
type commentCache struct{ ids *boundedMap[int, int64] }

func newCommentCache(max int) *commentCache {
	return &commentCache{ids: newBoundedMap[int, int64](max)}
}

func (c *commentCache) get(pr int) int64 {
	id, _ := c.ids.get(pr)
	return id
}

func (c *commentCache) set(pr int, id int64) { c.ids.set(pr, id) }

// forget marks the comment of pr unknown (0), keeping its place in order.
func (c *commentCache) forget(pr int) { c.ids.update(pr, 0) }
