package admin

import (
	"net/http"
	"testing"
)

// TestDrainTurnsReadinessOff checks that after Drain /readyz answers 503 on
// both addresses while the other routes keep serving.
func TestDrainTurnsReadinessOff(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	obs := h.observe(t)
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
	for _, base := range []string{h.sock, obs} {
		if a := get(t, base, "/readyz", nil); a.code != http.StatusOK {
			t.Fatalf("%s readyz before Drain: %d", base, a.code)
		}
	}
	h.srv.Drain()
	tests := []struct {
		name string
		base string
		path string
		want int
	}{
		{name: "socket readyz", base: h.sock, path: "/readyz", want: http.StatusServiceUnavailable},
		{name: "observe readyz", base: obs, path: "/readyz", want: http.StatusServiceUnavailable},
		{name: "socket healthz", base: h.sock, path: "/healthz", want: http.StatusOK},
		{name: "observe status", base: obs, path: "/v1/status", want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := get(t, tt.base, tt.path, nil); a.code != tt.want {
				t.Fatalf("%s after Drain: %d %s, want %d", tt.path, a.code, a.body, tt.want)
			}
		})
	}
}
