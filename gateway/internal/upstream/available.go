package upstream

// Available returns how many targets would take a request now: healthy by
// the active health check and not ejected by outlier detection; 0 while
// the circuit breaker is open. It only reads the pool's state, so a
// failover upstream can ask it of each group on every request.
func (p *Pool) Available() int {
	if p.breaker.State() == BreakerOpen {
		return 0
	}
	n := 0
	for _, t := range p.targets {
		if t.available(p.now) {
			n++
		}
	}
	return n
}
