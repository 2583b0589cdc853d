package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/control"
	"github.com/gitgate/gitgate/agent/internal/fleet"
	"github.com/gitgate/gitgate/agent/internal/peers"
	"github.com/gitgate/gitgate/agent/internal/safety"
	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/agent/internal/webhook"
	"github.com/gitgate/gitgate/gateway/admin/client"
)

// podIPEnv, when set (Kubernetes' downward API), is one of this replica's
// addresses, so it leaves itself out of --peers.
const podIPEnv = "POD_IP"

// fleetParts are what --peers adds to `agent run`: the fan-out of nudges
// to peers, the POST /v1/nudge receiver and the GET /v1/replica view, all
// on the webhook listener. A nudge received is never fanned out again.
type fleetParts struct {
	loop     *syncer.Loop
	notifier *peers.Notifier // nil without --peers
	receiver *peers.Receiver // nil without a webhook listener
	replica  http.Handler
	log      zerolog.Logger
}

// newFleetParts builds the fleet parts of cfg. Without --webhook-addr
// there is no listener, so nothing is served and nothing fans out.
func newFleetParts(cfg runConfig, loop *syncer.Loop, gw *client.Client, reg prometheus.Registerer, logger zerolog.Logger) (*fleetParts, error) {
	log := logger.With().Str("component", "peers").Logger()
	f := &fleetParts{loop: loop, log: log}
	if cfg.WebhookAddr == "" {
		return f, nil
	}
	secret, err := webhook.LoadSecret(cfg.WebhookSecretFile)
	if err != nil {
		return nil, err
	}
	set, err := newPeerSet(cfg.Peers, cfg.WebhookAddr)
	if err != nil {
		return nil, err
	}
	f.replica = fleet.Handler(replicaReport(loop, gw), set.Hosts())
	if len(secret) == 0 {
		return f, nil // the webhook handler refuses to start without one
	}
	if f.receiver, err = peers.NewReceiver(peers.ReceiverOptions{Secret: secret, Trigger: loop.Trigger, Registerer: reg, Logger: log}); err != nil {
		return nil, err
	}
	if set.Empty() {
		return f, nil
	}
	if f.notifier, err = peers.NewNotifier(peers.NotifierOptions{Peers: set, Secret: secret, Registerer: reg, Logger: log}); err != nil {
		return nil, err
	}
	log.Info().Str("peers", set.String()).Msg("fan-out to peers on")
	return f, nil
}

// newPeerSet parses spec and tells the Set this replica's own addresses:
// the webhook port at the listen address, or at every interface address
// and $POD_IP when it listens on all.
func newPeerSet(spec, listen string) (*peers.Set, error) {
	opts := peers.SetOptions{}
	if host, port, err := net.SplitHostPort(listen); err == nil {
		opts.SelfPort = port
		var addr net.Addr = &net.TCPAddr{}
		if ip := net.ParseIP(host); ip != nil {
			addr = &net.TCPAddr{IP: ip}
		}
		if opts.SelfIPs, err = peers.LocalIPs(addr); err != nil {
			return nil, err
		}
		if ip, err := netip.ParseAddr(os.Getenv(podIPEnv)); err == nil {
			opts.SelfIPs = append(opts.SelfIPs, ip.Unmap())
		}
	}
	set, err := peers.NewSet(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("--peers: %w", err)
	}
	return set, nil
}

// register adds /v1/nudge and /v1/replica to the webhook listener's mux.
func (f *fleetParts) register(mux *http.ServeMux) {
	if f.receiver != nil {
		mux.Handle("POST "+peers.NudgePath, f.receiver)
	}
	if f.replica != nil {
		mux.Handle("GET "+fleet.ReplicaPath, f.replica)
	}
}

// onWebhook is the webhook handler's Nudge: sync here, and nudge the
// peers, which re-check Git themselves.
func (f *fleetParts) onWebhook(reason string) {
	f.loop.Trigger(reason)
	f.fanOut(reason)
}

func (f *fleetParts) fanOut(reason string) {
	if f.notifier != nil {
		f.notifier.Nudge(reason)
	}
}

// Close stops the fan-out worker and waits for it.
func (f *fleetParts) Close() {
	if f.notifier != nil {
		_ = f.notifier.Close()
	}
}

// backend is the control socket's backend: the loop, with a fan-out after
// each rollback and resume so the peers re-check Git at once.
func (f *fleetParts) backend() control.Backend { return nudgingBackend{Loop: f.loop, fan: f} }

type nudgingBackend struct {
	*syncer.Loop
	fan *fleetParts
}

func (b nudgingBackend) Rollback(ctx context.Context, rev string, hold bool, reason string) (syncer.RollbackResult, error) {
	res, err := b.Loop.Rollback(ctx, rev, hold, reason)
	if err == nil {
		b.fan.fanOut("rollback")
	}
	return res, err
}

func (b nudgingBackend) Resume(ctx context.Context) error {
	err := b.Loop.Resume(ctx)
	if err == nil {
		b.fan.fanOut("resume")
	}
	return err
}

// replicaReport returns what GET /v1/replica serves: the loop's status and
// the gateway's answer now (not the last one the loop saw, which a hand
// edit makes stale).
func replicaReport(loop *syncer.Loop, gw *client.Client) func(context.Context) fleet.Replica {
	return func(ctx context.Context) fleet.Replica {
		st := loop.Status(ctx)
		r := fleet.Replica{AgentVersion: agentVersion(), Mode: st.Mode, Desired: st.LastApplied, AppliedAt: st.LastAppliedAt,
			BranchHead: st.BranchHead, LastError: st.LastError}
		if st.Pin != nil {
			r.Pin = &fleet.Pin{SHA: st.Pin.SHA, Scope: pinScope(st), Hold: st.Pin.Hold, Since: st.Pin.Since}
		}
		if gs, err := gw.Status(ctx); err != nil {
			r.Gateway.Error = err.Error()
		} else {
			r.Gateway = fleet.Gateway{Reachable: true, Version: gs.Version, Digest: gs.Digest}
		}
		r.Time = time.Now()
		return r
	}
}

// pinScope says whether a pin holds fleet-wide (kept in the config
// repository) or for this replica only, as the syncer's status says.
func pinScope(st syncer.Status) string {
	if st.PinScope == bundle.PinFleet {
		return fleet.ScopeFleet
	}
	return fleet.ScopeLocal
}

// rollbacker is the automatic rollback of the safety Baker: the loop's,
// followed by a nudge so the peers re-check Git at once.
func (f *fleetParts) rollbacker() safety.Rollbacker { return fanOutRollbacker{f} }

type fanOutRollbacker struct{ f *fleetParts }

func (r fanOutRollbacker) AutoRollback(ctx context.Context, from, to, reason string) error {
	if err := r.f.loop.AutoRollback(ctx, from, to, reason); err != nil {
		return err
	}
	r.f.fanOut("auto-rollback")
	return nil
}

func (r fanOutRollbacker) ReportRegression(ctx context.Context, version, reason string) {
	r.f.loop.ReportRegression(ctx, version, reason)
}
