package safety

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// Gateway reads the gateway's status; *client.Client implements it.
type Gateway interface {
	Status(ctx context.Context) (client.Status, error)
}

// Rollbacker acts on a regression. The sync loop implements it with its
// local rollback (mark bad, pin, history, deploy status, metric); the
// fleet-wide pin will implement it for every replica.
type Rollbacker interface {
	// AutoRollback rolls version from back to version to, giving reason.
	// It refuses (with an error) when from is no longer the applied one.
	AutoRollback(ctx context.Context, from, to, reason string) error
	// ReportRegression tells about a regression that is only reported
	// (action "report", or the flapping guard).
	ReportRegression(ctx context.Context, version, reason string)
}

// Options configure a Baker.
type Options struct {
	// Gateway is read every check interval. Required.
	Gateway Gateway
	// Rollbacker acts on a regression. Required.
	Rollbacker Rollbacker
	// Logger logs with constant field names.
	Logger zerolog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Baker watches each applied version for its bake window. Create it with
// NewBaker, tell it about applies with Applied, and run it with Run.
type Baker struct {
	opts    Options
	log     zerolog.Logger
	mailbox chan job

	mu     sync.Mutex
	status *Status
	// lastRollback is when the last automatic rollback happened; a second
	// one within its bake window is only reported (flapping guard).
	lastRollback time.Time
	lastWindow   time.Duration
}

// job is one applied version to bake.
type job struct {
	prev, next *schemas.Bundle
	at         time.Time
}

// Status is the bake in progress (or the last one), as `agent status`
// shows it.
type Status struct {
	Version string    `json:"version"`
	From    string    `json:"from,omitempty"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	// Done is true once the window ended or an action was taken.
	Done   bool   `json:"done"`
	Checks int    `json:"checks"`
	Streak Streak `json:"streak"`
	// Needed is the number of consecutive breaches that act.
	Needed int `json:"needed"`
	// Verdict is the last check's verdict, with the live numbers.
	Verdict Verdict `json:"verdict"`
	// Result says how the bake ended: "passed", "rolled back",
	// "reported", "superseded", "insufficient traffic"; empty while it
	// runs.
	Result string `json:"result,omitempty"`
	// Resets counts the times the gateway's counts started over (a
	// restart) during the bake.
	Resets int `json:"resets,omitempty"`
}

// NewBaker checks opts and returns a Baker that is not yet running.
func NewBaker(opts Options) (*Baker, error) {
	if opts.Gateway == nil || opts.Rollbacker == nil {
		return nil, errors.New("safety: Gateway and Rollbacker are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Baker{opts: opts, log: opts.Logger.With().Str("component", "safety").Logger(), mailbox: make(chan job, 1)}, nil
}

// Applied tells the Baker that next replaced prev (nil when unknown). It
// never blocks: the newest apply wins. A config without any safety section
// is not baked.
func (b *Baker) Applied(prev, next *schemas.Bundle) {
	if next == nil || !next.Config.SafetyEnabled() {
		return
	}
	j := job{prev: prev, next: next, at: b.opts.Now()}
	for {
		select {
		case b.mailbox <- j:
			return
		default:
		}
		select {
		case <-b.mailbox:
		default:
		}
	}
}

// BakeStatus returns a copy of the current or last bake's status; nil
// before any.
func (b *Baker) BakeStatus() *Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status == nil {
		return nil
	}
	s := *b.status
	s.Verdict.Routes = append([]RouteVerdict(nil), s.Verdict.Routes...)
	return &s
}

// Run bakes each applied version until ctx ends; a newer apply ends the
// bake of the one before.
func (b *Baker) Run(ctx context.Context) {
	var next *job
	for {
		if next == nil {
			select {
			case <-ctx.Done():
				return
			case j := <-b.mailbox:
				next = &j
			}
		}
		j := *next
		next = b.bake(ctx, j)
	}
}

// bake watches one version; it returns a newer job that interrupted it.
func (b *Baker) bake(ctx context.Context, j job) *job {
	set := j.next.Config.SafetySettings()
	st := &Status{Version: j.next.Version, Since: j.at, Until: j.at.Add(set.BakeWindow.D()), Needed: set.Breaches}
	if j.prev != nil {
		st.From = j.prev.Version
	}
	b.setStatus(st)
	routes := touched(j.prev, j.next)
	log := b.log.With().Str("version", j.next.Version).Logger()
	log.Info().Dur("window", set.BakeWindow.D()).Int("routes", len(routes)).Msg("baking the new version")
	tick := time.NewTicker(set.CheckInterval.D())
	defer tick.Stop()
	window := time.NewTimer(set.BakeWindow.D())
	defer window.Stop()
	var (
		streak   Streak
		since    time.Time
		lastReqs uint64
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-b.mailbox:
			b.finish(st, "superseded")
			return &n
		case <-window.C:
			res := "passed"
			if st.Verdict.Outcome == Insufficient {
				res = "insufficient traffic"
			}
			b.finish(st, res)
			log.Info().Str("result", res).Msg("bake window over")
			return nil
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, set.CheckInterval.D())
		gs, err := b.opts.Gateway.Status(cctx)
		cancel()
		if err != nil {
			log.Warn().Err(err).Msg("bake check: reading gateway status")
			continue
		}
		tr := gs.Traffic
		if tr == nil || tr.Current == nil || tr.Current.Version != j.next.Version {
			// The gateway runs something else (a heal or a manual push in
			// flight): nothing of this version to judge.
			continue
		}
		// A gateway restart starts the counts over: so does the streak.
		if !since.IsZero() && (!tr.Current.Since.Equal(since) || tr.Current.Total.Requests < lastReqs) {
			streak = Streak{}
			b.update(st, func(s *Status) { s.Resets++ })
			log.Info().Msg("the gateway's counts started over (restart): breach streak reset")
		}
		since, lastReqs = tr.Current.Since, tr.Current.Total.Requests
		prev := tr.Previous
		if prev != nil && (j.prev == nil || prev.Version != j.prev.Version) {
			prev = nil // not the version this one replaced
		}
		v := Judge(Input{Config: &j.next.Config, Current: tr.Current, Previous: prev, Bounds: tr.LatencyBoundsSeconds, Routes: routes})
		streak = streak.Next(v)
		b.update(st, func(s *Status) { s.Checks++; s.Verdict, s.Streak = v, streak })
		if v.Outcome == Breach {
			log.Warn().Str("reason", v.Reason).Int("streak", streak.Breaches).Msg("bake check: breach")
		}
		if streak.Breaches < set.Breaches {
			continue
		}
		b.act(ctx, st, j, v, set.BakeWindow.D())
		return nil
	}
}

// act takes the verdict's action, or only reports it when the action is
// "report", when there is nothing to roll back to, or within the bake
// window of the last automatic rollback (flapping guard).
func (b *Baker) act(ctx context.Context, st *Status, j job, v Verdict, window time.Duration) {
	now := b.opts.Now()
	b.mu.Lock()
	flapping := !b.lastRollback.IsZero() && now.Sub(b.lastRollback) < b.lastWindow
	b.mu.Unlock()
	reason := v.Reason
	switch {
	case v.Action != schemas.SafetyRollback:
	case j.prev == nil:
		reason += " (no earlier version known: reported only)"
	case flapping:
		reason += " (flapping guard: rolled back automatically less than a bake window ago: reported only)"
	default:
		err := b.opts.Rollbacker.AutoRollback(ctx, j.next.Version, j.prev.Version, reason)
		if err == nil {
			b.mu.Lock()
			b.lastRollback, b.lastWindow = now, window
			b.mu.Unlock()
			b.finish(st, "rolled back")
			b.log.Warn().Str("version", j.next.Version).Str("to", j.prev.Version).Str("reason", reason).Msg("regression: rolled back automatically")
			return
		}
		b.log.Error().Err(err).Str("version", j.next.Version).Msg("regression: automatic rollback failed")
		reason += fmt.Sprintf(" (automatic rollback failed: %v)", err)
	}
	b.opts.Rollbacker.ReportRegression(ctx, j.next.Version, reason)
	b.finish(st, "reported")
	b.log.Warn().Str("version", j.next.Version).Str("reason", reason).Msg("regression reported")
}

func (b *Baker) setStatus(st *Status) {
	b.mu.Lock()
	b.status = st
	b.mu.Unlock()
}

func (b *Baker) update(st *Status, f func(*Status)) {
	b.mu.Lock()
	f(st)
	b.mu.Unlock()
}

func (b *Baker) finish(st *Status, result string) {
	b.update(st, func(s *Status) { s.Done, s.Result = true, result })
}

// touched returns the routes of next that the change from prev created or
// changed, counting a change to an upstream or policy they use; nil (every
// route) when prev is unknown. A change to a group of a failover upstream
// counts for the routes that use the failover upstream.
func touched(prev, next *schemas.Bundle) map[string]bool {
	if prev == nil {
		return nil
	}
	o, n := &prev.Config, &next.Config
	out := make(map[string]bool)
	for name, r := range n.Routes {
		old, ok := o.Routes[name]
		if !ok || !reflect.DeepEqual(old, r) {
			out[name] = true
			continue
		}
		for _, be := range r.Backends {
			if !reflect.DeepEqual(o.Upstreams[be.Upstream], n.Upstreams[be.Upstream]) {
				out[name] = true
			}
			// A failover upstream's traffic goes to its groups.
			if f := n.Upstreams[be.Upstream].Failover; f != nil {
				for _, g := range f.Groups {
					if !reflect.DeepEqual(o.Upstreams[g], n.Upstreams[g]) {
						out[name] = true
					}
				}
			}
		}
		for _, p := range r.Policies {
			if !reflect.DeepEqual(o.Policies[p], n.Policies[p]) {
				out[name] = true
			}
		}
	}
	return out
}
