package policy

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// prefixList is a set of networks. Lists in configs are short (tens to a few
// hundred entries), so a scan is as fast as a trie and has no build cost.
type prefixList []netip.Prefix

func (l prefixList) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ipList is a compiled ipAllow or ipDeny policy.
type ipList struct {
	allow    bool
	prefixes prefixList
	clientIP func(*http.Request) netip.Addr
	counters authCounters
	body     *reply.Body
}

func init() {
	for _, allow := range []bool{true, false} {
		name := "ipDeny"
		if allow {
			name = "ipAllow"
		}
		registerKind(name, inOrder, func(b *build, cfg *schemas.IPList) middleware {
			if l := compileIPList(b.name, b.path, cfg, allow, b.set, b.diags); l != nil {
				return l
			}
			return nil
		})
	}
}

func compileIPList(name, path string, cfg *schemas.IPList, allow bool, s *Set, diags *diagnostics) *ipList {
	l := &ipList{
		allow:    allow,
		clientIP: s.opts.ClientIP,
		counters: s.authCounters(name),
		body:     reply.New("forbidden", "client address not allowed", ""),
	}
	ok := true
	if len(cfg.CIDRs) == 0 {
		diags.add(path+".cidrs", "at least one CIDR is required")
		ok = false
	}
	for i, c := range cfg.CIDRs {
		p, err := rules.CIDR(c)
		if err != nil {
			diags.add(fmt.Sprintf("%s.cidrs[%d]", path, i), err.Error())
			ok = false
			continue
		}
		l.prefixes = append(l.prefixes, p)
	}
	if !ok {
		return nil
	}
	return l
}

// wrap refuses with 403 a client outside an allow list or inside a deny list.
// A client without an IP address (a Unix socket peer) never matches: an
// allow list refuses it and a deny list lets it through.
func (l *ipList) wrap(_ string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.prefixes.contains(clientAddr(w, r, l.clientIP)) != l.allow {
			inc(l.counters.forbidden)
			reply.Write(w, http.StatusForbidden, l.body)
			return
		}
		next.ServeHTTP(w, r)
	})
}
