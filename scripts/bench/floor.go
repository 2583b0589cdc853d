package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// goFloor is the yardstick for what any Go proxy pays on this machine: the
// bench binary itself serving the "40-line fasthttp proxy" (a
// fasthttp.Server whose handler forwards every request through one
// fasthttp.HostClient and adds the X-Bench header the other proxies add).
// It routes nothing, observes nothing and checks nothing beyond fasthttp's
// parser, so the gap from it to gitgate is what gitgate's features cost,
// and the gap from nginx to it what Go's runtime and netpoller cost.
//
// With duties set it is the go floor with gitgate's per-request duties on
// a bare route written natively against fasthttp's request and response
// (floorDuties): an estimate of what a gitgate core without net/http's
// types could cost, to tell how much of the gap a rewrite would close.
type goFloor struct {
	p      *proc
	duties bool
}

func (g *goFloor) Name() string {
	if g.duties {
		return "go floor with duties (fasthttp)"
	}
	return "go floor (fasthttp)"
}
func (g *goFloor) Proc() *proc                             { return g.p }
func (g *goFloor) Stop()                                   { g.p.stop() }
func (g *goFloor) Reload(context.Context, int, bool) error { return nil }

func (g *goFloor) Start(ctx context.Context, dir, cpus, upstream string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{self, "-floor", addr, "-floor-upstream", upstream}
	if g.duties {
		args = append(args, "-floor-duties")
	}
	if g.p, err = startProc(dir, "go-floor", cpus, nil, args...); err != nil {
		return "", err
	}
	return "http://" + addr, g.p.waitListening(ctx, addr)
}

// serveFloor runs goFloor's proxy on addr in front of upstream, with
// gitgate's duties when duties is set.
func serveFloor(addr, upstream string, duties bool) {
	hc := &fasthttp.HostClient{
		Addr:                     upstream,
		MaxConns:                 1024,
		MaxIdleConnDuration:      time.Minute,
		NoDefaultUserAgentHeader: true,
	}
	h := func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			return
		}
		ctx.Response.Header.Set("X-Bench", "r0")
	}
	if duties {
		h = floorDuties(hc)
	}
	srv := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true, ReadTimeout: time.Minute}
	if err := srv.ListenAndServe(addr); err != nil {
		fmt.Fprintln(os.Stderr, "go floor:", err)
		os.Exit(1)
	}
}
