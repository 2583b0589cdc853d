package compress

import "strings"

// negotiate returns the index in algs (server preference order) of the
// coding to use for a request whose Accept-Encoding values are ae, or -1
// for none. The client's q-values rank first and the server's order
// breaks ties; a coding the client does not name takes the q of "*",
// when present, and is otherwise unacceptable. "x-gzip" is gzip. A
// malformed element is ignored. No Accept-Encoding at all means no
// compression: RFC 9110 allows any coding then, but clients that say
// nothing are often ones that cannot decode.
func negotiate(ae []string, algs []string) int {
	if len(ae) == 0 {
		return -1
	}
	var q [maxAlgs]int // per alg, in thousandths; -1: not named
	for i := range q {
		q[i] = -1
	}
	star := -1
	for _, v := range ae {
		for elem := range strings.SplitSeq(v, ",") {
			name, weight, ok := parseElem(elem)
			if !ok {
				continue
			}
			if name == "*" {
				star = max(star, weight)
				continue
			}
			if strings.EqualFold(name, "x-gzip") {
				name = "gzip"
			}
			for i, a := range algs {
				if i < maxAlgs && strings.EqualFold(name, a) {
					q[i] = max(q[i], weight)
				}
			}
		}
	}
	best, bestQ := -1, 0
	for i := range algs {
		if i >= maxAlgs {
			break
		}
		w := q[i]
		if w < 0 {
			w = star
		}
		if w > bestQ {
			best, bestQ = i, w
		}
	}
	return best
}

// maxAlgs bounds the algorithms a route may list (the schema knows two).
const maxAlgs = 4

// parseElem parses one Accept-Encoding element, "coding" or
// "coding;q=0.5", into its name and weight in thousandths (0..1000).
func parseElem(s string) (name string, q int, ok bool) {
	name, params, _ := strings.Cut(s, ";")
	name = strings.TrimSpace(name)
	if name == "" || !token(name) {
		return "", 0, false
	}
	q = 1000
	for p := range strings.SplitSeq(params, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue // other parameters mean nothing for a coding
		}
		w, good := parseQ(strings.TrimSpace(v))
		if !good {
			return "", 0, false
		}
		q = w
	}
	return name, q, true
}

// parseQ parses a qvalue (RFC 9110 section 12.4.2): "0" or "1", or "0."
// with up to three digits, or "1." with up to three zeros.
func parseQ(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	w := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return w, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		w += int(c-'0') * scale
		scale /= 10
	}
	if w > 1000 {
		return 0, false
	}
	return w, true
}

// token reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func token(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
