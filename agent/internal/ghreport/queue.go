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

// postedMemo remembers the last status posted per SHA and context, bounded
// (oldest forgotten first), so the same status is never posted twice.
type postedMemo struct {
	mu    sync.Mutex
	last  map[string]string
	order []string
	max   int
}

func newPostedMemo(max int) *postedMemo {
	return &postedMemo{last: make(map[string]string), max: max}
}

// seen reports whether state+description is what was last posted for key.
func (m *postedMemo) seen(key, value string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.last[key]
	return ok && v == value
}

// has reports whether anything was posted for key.
func (m *postedMemo) has(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.last[key]
	return ok
}

func (m *postedMemo) remember(key, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.last[key]; !ok {
		if len(m.order) >= m.max {
			delete(m.last, m.order[0])
			m.order = m.order[1:]
		}
		m.order = append(m.order, key)
	}
	m.last[key] = value
}

// commentCache remembers the plan comment's id per pull request, bounded.
type commentCache struct {
	mu    sync.Mutex
	ids   map[int]int64
	order []int
	max   int
}

func newCommentCache(max int) *commentCache {
	return &commentCache{ids: make(map[int]int64), max: max}
}

func (c *commentCache) get(pr int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[pr]
}

func (c *commentCache) set(pr int, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ids[pr]; !ok {
		if len(c.order) >= c.max {
			delete(c.ids, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, pr)
	}
	c.ids[pr] = id
}

func (c *commentCache) forget(pr int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ids[pr]; ok {
		c.ids[pr] = 0 // keep its place in order; 0 means unknown
	}
}
