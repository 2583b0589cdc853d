package peers

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary nudge headers to verify: it never panics,
// and nothing but the MAC made with the secret passes.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1796529600, 0)
	req, _ := http.NewRequest(http.MethodPost, "http://peer"+NudgePath, http.NoBody)
	if err := Sign(req, testSecret, "webhook", now); err != nil {
		f.Fatal(err)
	}
	f.Add(req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderNonce), req.Header.Get(HeaderReason), req.Header.Get(HeaderSignature))
	f.Add("1796529600", "00000000000000000000000000000000", "webhook", "sha256=")
	f.Add("-1", "", "", "sha256=zz")
	f.Fuzz(func(t *testing.T, ts, nonce, reason, sig string) {
		r, _ := http.NewRequest(http.MethodPost, "http://peer"+NudgePath, http.NoBody)
		r.Header.Set(HeaderTimestamp, ts)
		r.Header.Set(HeaderNonce, nonce)
		r.Header.Set(HeaderReason, reason)
		r.Header.Set(HeaderSignature, sig)
		if _, err := verify(r, testSecret, now, DefaultWindow); err == nil {
			// Header values are stored trimmed; compare with what was sent.
			h := r.Header
			want := mac(testSecret, http.MethodPost, NudgePath, h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderReason))
			got, _ := hex.DecodeString(strings.TrimPrefix(h.Get(HeaderSignature), "sha256="))
			if !bytes.Equal(got, want) {
				t.Fatalf("verified signature %q, want only %x", sig, want)
			}
		}
	})
}
