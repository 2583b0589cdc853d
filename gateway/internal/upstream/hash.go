package upstream

import (
	"math/rand/v2"
	"net/http"
	"net/netip"

	"github.com/gitgate/gitgate/schemas"
)

// Key hashes the attribute of r that h names. client is the request's
// client address. A request without the attribute gets a random key, so it
// is spread like an unsticky request. The hash is stable across processes,
// so every gateway of a fleet makes the same choice for the same user.
func Key(r *http.Request, h *schemas.HashOn, client netip.Addr) uint64 {
	switch {
	case h == nil:
	case h.Header != "":
		if v := r.Header.Get(h.Header); v != "" {
			return mix(fnv64(v))
		}
	case h.Cookie != "":
		if c, err := r.Cookie(h.Cookie); err == nil && c.Value != "" {
			return mix(fnv64(c.Value))
		}
	case h.ClientIP:
		if client.IsValid() {
			b := client.As16()
			return mix(fnv64Bytes(b[:]))
		}
	}
	return rand.Uint64()
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv64(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnv64Bytes(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// mix is the splitmix64 finalizer: it spreads FNV's weak low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
