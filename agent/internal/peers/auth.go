package peers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// NudgePath is where a replica's webhook listener takes nudges.
const NudgePath = "/v1/nudge"

// Headers of a nudge. The body is empty.
const (
	HeaderTimestamp = "X-Gitgate-Timestamp" // Unix seconds
	HeaderNonce     = "X-Gitgate-Nonce"     // 32 hex digits, random
	HeaderReason    = "X-Gitgate-Reason"    // webhook, rollback, resume
	HeaderSignature = "X-Gitgate-Signature" // "sha256=" + hex HMAC
)

// DefaultWindow is how far a nudge's timestamp may be from the receiver's
// clock.
const DefaultWindow = 30 * time.Second

// Errors of Verify; each says why a nudge was refused.
var (
	ErrMalformed = errors.New("nudge headers missing or malformed")
	ErrStale     = errors.New("nudge timestamp outside the allowed window")
	ErrSignature = errors.New("nudge signature does not match")
)

// reasonRE is what a reason may be: a short word, so logs stay clean.
var reasonRE = regexp.MustCompile(`^[a-z][a-z-]{0,31}$`)

// nonceRE is a nonce: 16 random bytes in hex.
var nonceRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// mac is the HMAC-SHA256 under secret of a nudge's method, path,
// timestamp, nonce and reason, one per line after a version tag, so no
// field can be moved into another.
func mac(secret []byte, method, path, ts, nonce, reason string) []byte {
	m := hmac.New(sha256.New, secret)
	for _, s := range []string{"gitgate-nudge-v1", method, path, ts, nonce, reason} {
		m.Write([]byte(s))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

// Sign sets the headers of a nudge on req, with a new random nonce and
// the time now.
func Sign(req *http.Request, secret []byte, reason string, now time.Time) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	nonce := hex.EncodeToString(b[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderReason, reason)
	req.Header.Set(HeaderSignature, "sha256="+hex.EncodeToString(mac(secret, req.Method, req.URL.Path, ts, nonce, reason)))
	return nil
}

// signed is a nudge whose signature and timestamp checked out.
type signed struct {
	nonce  string
	reason string
	at     time.Time
}

// verify checks req's signature in constant time and its timestamp
// against now ± window. It does not check for replays.
func verify(req *http.Request, secret []byte, now time.Time, window time.Duration) (signed, error) {
	ts, nonce, reason := req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderNonce), req.Header.Get(HeaderReason)
	sig, ok := strings.CutPrefix(req.Header.Get(HeaderSignature), "sha256=")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || !nonceRE.MatchString(nonce) || !reasonRE.MatchString(reason) || len(sig) != 2*sha256.Size {
		return signed{}, ErrMalformed
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return signed{}, ErrMalformed
	}
	if !hmac.Equal(got, mac(secret, req.Method, req.URL.Path, ts, nonce, reason)) {
		return signed{}, ErrSignature
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > window || d < -window {
		return signed{}, ErrStale
	}
	return signed{nonce: nonce, reason: reason, at: at}, nil
}
