package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/agent/internal/fleet"
	"github.com/gitgate/gitgate/agent/internal/peers"
)

// peersEnv names the peers when neither --peers nor --config is given.
const peersEnv = "GITGATE_PEERS"

// fleetReport is what `agent fleet --json` prints.
type fleetReport struct {
	fleet.Verdict
	MaxLagSeconds float64     `json:"maxLagSeconds"`
	Replicas      []fleet.Row `json:"replicas"`
}

func defineFleet(fs *pflag.FlagSet) body {
	spec := fs.String("peers", os.Getenv(peersEnv), "replicas to query: dns:NAME:PORT or host:port,... (default $"+peersEnv+", else the peers of --config)")
	configFile := fs.String("config", "", "agent.yaml whose peers to query")
	var out outputFlags
	out.register(fs)
	maxLag := fs.Duration("max-lag", 2*time.Minute, "a replica behind the fleet's desired commit for longer fails the check")
	timeout := fs.Duration("timeout", 3*time.Second, "time to wait for each replica")
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
		return fleetCheck(ctx, fleetArgs{spec: *spec, configFile: *configFile, out: out, maxLag: *maxLag, timeout: *timeout}, stdout, stderr)
	}
}

// fleetArgs are agent fleet's parsed flags.
type fleetArgs struct {
	spec, configFile string
	out              outputFlags
	maxLag, timeout  time.Duration
}

func fleetCheck(ctx context.Context, a fleetArgs, stdout, stderr io.Writer) int {
	spec, configFile, maxLag, timeout := &a.spec, &a.configFile, &a.maxLag, &a.timeout
	format, err := a.out.resolve()
	if err != nil {
		fmt.Fprintf(stderr, "agent fleet: %v\n", err)
		return exitUsage
	}
	if *spec == "" && *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return fail(stderr, "fleet", fmt.Errorf("reading --config: %w", err))
		}
		// Only the peers key is read; agent run checks the whole file.
		var cfg struct {
			Peers string `json:"peers"`
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return fail(stderr, "fleet", fmt.Errorf("%s: %w", *configFile, err))
		}
		*spec = cfg.Peers
	}
	set, err := peers.NewSet(*spec, peers.SetOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "agent fleet: --peers: %v\n", err)
		return 2
	}
	if set.Empty() {
		fmt.Fprintln(stderr, "agent fleet: give --peers, --config or $"+peersEnv)
		return 2
	}
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	addrs, err := set.All(rctx)
	cancel()
	if err != nil {
		return fail(stderr, "fleet", err)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	rows := fleet.Query(ctx, hc, addrs, 32, *timeout)
	v := fleet.Judge(rows, *maxLag, time.Now())
	if format != "table" {
		_ = writeData(stdout, format, fleetReport{Verdict: v, MaxLagSeconds: maxLag.Seconds(), Replicas: rows})
	} else {
		writeFleet(stdout, v, rows)
	}
	if !v.Healthy {
		return 1
	}
	return 0
}

// writeFleet prints one line per replica, then the fleet's verdict.
func writeFleet(w io.Writer, v fleet.Verdict, rows []fleet.Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tREACHABLE\tAGENT\tGATEWAY\tDIGEST\tAPPLIED\tMODE\tLAG\tPROBLEMS / LAST ERROR")
	for _, r := range rows {
		rep := r.Replica
		if rep == nil {
			fmt.Fprintf(tw, "%s\tno\t-\t-\t-\t-\t-\t-\t%s\n", r.Addr, r.Err)
			continue
		}
		gwv, digest := short(rep.Gateway.Version), shortDigest(rep.Gateway.Digest)
		if !rep.Gateway.Reachable {
			gwv, digest = "down", "-"
		}
		applied := "-"
		if !rep.AppliedAt.IsZero() {
			applied = short(rep.Desired) + " " + rep.Time.Sub(rep.AppliedAt).Round(time.Second).String() + " ago"
		}
		mode := "tracking"
		if rep.Pin != nil {
			mode = "pinned " + short(rep.Pin.SHA) + " (" + rep.Pin.Scope + ")"
		}
		lag := "-"
		if r.Lag > 0 {
			lag = r.Lag.Round(time.Second).String()
		}
		notes := strings.Join(r.Problems, "; ")
		if rep.LastError != "" {
			notes = strings.TrimPrefix(notes+"; last error: "+oneLine(rep.LastError), "; ")
		}
		if notes == "" {
			notes = "ok"
		}
		fmt.Fprintf(tw, "%s\tyes\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Addr, rep.AgentVersion, gwv, digest, applied, mode, lag, notes)
	}
	tw.Flush()
	var versions []string
	for ver, n := range v.Versions {
		if ver == "" {
			ver = "none"
		}
		versions = append(versions, fmt.Sprintf("%s×%d", short(ver), n))
	}
	sort.Strings(versions)
	verdict := "healthy"
	if !v.Healthy {
		verdict = "NOT healthy"
	}
	fmt.Fprintf(w, "\nFleet: %d replicas, desired %s, gateways run %s: %s\n", len(rows), short(v.Desired), strings.Join(versions, ", "), verdict)
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	if d == "" {
		return "-"
	}
	return d
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
