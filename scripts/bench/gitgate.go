package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// benchAPIKey is the key the policy variant requires; only its hash goes
// into the bundle, as in a real config repo.
const benchAPIKey = "bench-key-0123456789"

// gitgate runs the real gateway binary and configures it over the admin
// socket.
type gitgate struct {
	bin      string
	routes   int  // extra routes beside the measured one
	policies bool // API key + rate limit + header transforms on the measured route
	// limit, when set, is the only policy of the measured route (-mode
	// ratelimit).
	limit   *schemas.RateLimit
	label   string
	tlsCert string // with tlsKey: --tls-cert/--tls-key on the listener
	tlsKey  string
	// extraArgs are more gateway flags (the correlation mode's span export).
	extraArgs []string
	cache     bool   // a response cache (ttl 1m) on the measured route
	http1     string // --http1-server; empty: the default

	p        *proc
	admin    *client.Client
	upstream string
}

func (g *gitgate) Name() string { return g.label }
func (g *gitgate) Proc() *proc  { return g.p }
func (g *gitgate) Stop() {
	if g.admin != nil {
		g.admin.Close()
	}
	g.p.stop()
}

// config builds the measured route "bench" (prefix "/") plus g.routes
// distinct routes that the load never hits.
func (g *gitgate) config(i int, valid bool) schemas.Config {
	up := "origin"
	if !valid {
		up = "no-such-upstream" // fails the gateway's compile: a 422, nothing changes
	}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"origin": {Targets: []string{"http://" + g.upstream}}},
		Routes: map[string]schemas.Route{"bench": {
			Match:           schemas.Match{Path: "/", PathType: schemas.PathPrefix},
			Backends:        []schemas.Backend{{Upstream: up, Weight: 100}},
			ResponseHeaders: &schemas.HeaderOps{Set: map[string]string{"X-Bench": "r" + strconv.Itoa(i)}},
		}},
	}
	if g.policies {
		sum := sha256.Sum256([]byte(benchAPIKey))
		cfg.Policies = map[string]schemas.Policy{
			"key":   {APIKey: &schemas.APIKey{Keys: map[string]string{"bench": "sha256:" + hex.EncodeToString(sum[:])}}},
			"limit": {RateLimit: &schemas.RateLimit{Rate: 1e9, Key: "route"}},
		}
		r := cfg.Routes["bench"]
		r.Policies = []string{"key", "limit"}
		r.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Gateway": "gitgate"}, Remove: []string{"X-Debug"}}
		cfg.Routes["bench"] = r
	}
	if g.limit != nil {
		rl := *g.limit
		cfg.Policies = map[string]schemas.Policy{"limit": {RateLimit: &rl}}
		r := cfg.Routes["bench"]
		r.Policies = []string{"limit"}
		cfg.Routes["bench"] = r
	}
	if g.cache {
		r := cfg.Routes["bench"]
		r.Cache = &schemas.RouteCache{TTL: schemas.Duration(time.Minute)}
		cfg.Routes["bench"] = r
	}
	for n := range g.routes {
		cfg.Routes[fmt.Sprintf("r%05d", n)] = schemas.Route{
			Match:    schemas.Match{Hosts: []string{fmt.Sprintf("h%d.example.com", n%100)}, Path: fmt.Sprintf("/svc%d/items", n), PathType: schemas.PathPrefix},
			Backends: []schemas.Backend{{Upstream: "origin", Weight: 100}},
		}
	}
	cfg.ApplyDefaults()
	return cfg
}

func (g *gitgate) bundle(i int, valid bool) (*schemas.Bundle, error) {
	return schemas.NewBundle(fmt.Sprintf("bench-%d", i), schemas.Source{Repo: "bench"}, g.config(i, valid), time.Now())
}

func (g *gitgate) Start(ctx context.Context, dir, cpus, upstream string) (string, error) {
	g.upstream = upstream
	port, err := freePort()
	if err != nil {
		return "", err
	}
	sock := filepath.Join(dir, "gitgate-admin.sock")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{g.bin, "--listen", addr, "--admin-socket", sock, "--state-dir", filepath.Join(dir, "gitgate-state"), "--log-level", "warn"}
	if g.tlsCert != "" {
		args = append(args, "--tls-cert", g.tlsCert, "--tls-key", g.tlsKey)
	}
	args = append(args, g.extraArgs...)
	if g.http1 != "" {
		args = append(args, "--http1-server", g.http1)
	}
	if g.p, err = startProc(dir, "gitgate", cpus, nil, args...); err != nil {
		return "", err
	}
	if err := g.p.waitListening(ctx, addr); err != nil {
		return "", err
	}
	g.admin = client.New(sock)
	if err := g.Reload(ctx, 0, true); err != nil {
		return "", err
	}
	return scheme(g.tlsCert) + addr, nil
}

func (g *gitgate) Reload(ctx context.Context, i int, valid bool) error {
	b, err := g.bundle(i, valid)
	if err != nil {
		return err
	}
	_, err = g.admin.Put(ctx, b, "")
	if valid {
		return err
	}
	if err == nil {
		return fmt.Errorf("gitgate accepted invalid bundle %d", i)
	}
	return nil
}
