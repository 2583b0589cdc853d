//go:build !unix

package upstream

import "net"

// canProbe is false: an idle connection cannot be checked for unsolicited
// bytes without blocking here, so the fast path keeps no connections and
// every request takes http.Transport, whose per-connection reader drops a
// connection on any byte that no request asked for.
const canProbe = false

type prober struct{}

func newProber(net.Conn) *prober { return nil }

func (*prober) alive() bool { return false }
