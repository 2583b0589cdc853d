package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Signature errors. ErrUnsigned and ErrSHA1Only mean the sender is not set
// up for this receiver; ErrBadSignature means a wrong secret or a forgery.
var (
	ErrUnsigned     = errors.New("delivery is not signed (no X-Hub-Signature-256)")
	ErrSHA1Only     = errors.New("delivery is signed with SHA-1 only; configure a secret so GitHub sends X-Hub-Signature-256")
	ErrBadSignature = errors.New("X-Hub-Signature-256 does not match the body")
)

// Verify checks that sig256 (the X-Hub-Signature-256 value,
// "sha256=<hex>") is the HMAC-SHA256 of body under secret, in constant time.
// sha1 is the legacy X-Hub-Signature header, used only to pick the error.
func Verify(secret, body []byte, sig256, sha1 string) error {
	if len(secret) == 0 {
		return errors.New("verifying webhook: no secret configured")
	}
	if sig256 == "" {
		if sha1 != "" {
			return ErrSHA1Only
		}
		return ErrUnsigned
	}
	hexSig, ok := strings.CutPrefix(sig256, "sha256=")
	if !ok || len(hexSig) != sha256.Size*2 {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value of body under secret, as
// GitHub computes it. Tests and the demo use it to send deliveries.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// SecretEnv is the environment variable holding the webhook secret.
const SecretEnv = "GITGATE_WEBHOOK_SECRET"

// LoadSecret reads the secret from file (trailing newlines trimmed) or, when
// file is empty, from $GITGATE_WEBHOOK_SECRET. An empty result is nil.
func LoadSecret(file string) ([]byte, error) {
	if file == "" {
		if v := os.Getenv(SecretEnv); v != "" {
			return []byte(v), nil
		}
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading webhook secret file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return nil, fmt.Errorf("webhook secret file %s is empty", file)
	}
	return []byte(s), nil
}
