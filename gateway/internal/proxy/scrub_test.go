package proxy

import "testing"

// TestIsPeerSetIsPeerSetHeaders: the direct path's switch (isPeerSet)
// names exactly peerSetHeaders, which ReverseProxy's path removes, so a
// name added to one and not the other fails here rather than reaching an
// upstream on one path only.
func TestIsPeerSetIsPeerSetHeaders(t *testing.T) {
	t.Parallel()
	for _, k := range peerSetHeaders {
		if !isPeerSet(k) {
			t.Errorf("isPeerSet(%q) = false: it is in peerSetHeaders", k)
		}
	}
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Request-Id", "Host", "X-Real-IP", "X_Real_Ip"} {
		if isPeerSet(k) {
			t.Errorf("isPeerSet(%q) = true: not in peerSetHeaders (canonical names only)", k)
		}
	}
}
