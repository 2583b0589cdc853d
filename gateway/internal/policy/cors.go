package policy

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// wildcardOrigin is "scheme://*.suffix": any non-empty run of DNS labels
// before suffix, and no port unless suffix has one.
type wildcardOrigin struct {
	prefix string // "https://"
	suffix string // ".example.com"
}

func (o wildcardOrigin) match(origin string) bool {
	if len(origin) <= len(o.prefix)+len(o.suffix) ||
		!strings.HasPrefix(origin, o.prefix) || !strings.HasSuffix(origin, o.suffix) {
		return false
	}
	mid := origin[len(o.prefix) : len(origin)-len(o.suffix)]
	if mid[0] == '.' || mid[len(mid)-1] == '.' {
		return false
	}
	for i := 0; i < len(mid); i++ {
		c := mid[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// wildcardOf splits a wildcard origin as rules.Origin returns it
// ("https://*.example.com").
func wildcardOf(norm string) wildcardOrigin {
	scheme, suffix, _ := strings.Cut(norm, "://*")
	return wildcardOrigin{prefix: scheme + "://", suffix: suffix}
}

// cors is a compiled cors policy.
type cors struct {
	anyOrigin   bool
	exact       map[string]bool
	wildcards   []wildcardOrigin
	methods     map[string]bool
	anyHeader   bool
	headers     map[string]bool // lower case
	credentials bool

	allowMethods []string
	allowHeaders []string // configured list, joined; nil when anyHeader
	expose       []string
	maxAge       []string
	body         *reply.Body
}

func init() {
	registerKind("cors", runFirst, func(b *build, cfg *schemas.CORS) middleware {
		if c := compileCORS(b.path, cfg, b.diags); c != nil {
			return c
		}
		return nil
	})
}

func compileCORS(path string, cfg *schemas.CORS, diags *diagnostics) *cors {
	c := &cors{
		exact:       map[string]bool{},
		methods:     map[string]bool{},
		headers:     map[string]bool{},
		credentials: cfg.AllowCredentials,
		body:        reply.New("forbidden", "CORS preflight refused: origin, method or headers not allowed", ""),
	}
	ok := true
	if len(cfg.AllowOrigins) == 0 {
		diags.add(path+".allowOrigins", "at least one origin is required")
		ok = false
	}
	for i, o := range cfg.AllowOrigins {
		p := fmt.Sprintf("%s.allowOrigins[%d]", path, i)
		// Compile checked the origins with rules.CORS.
		norm, err := rules.Origin(o)
		switch {
		case err != nil:
			diags.add(p, err.Error())
			ok = false
		case norm == "*":
			c.anyOrigin = true
		case strings.Contains(norm, "*"):
			c.wildcards = append(c.wildcards, wildcardOf(norm))
		default:
			c.exact[norm] = true
		}
	}
	for i, m := range cfg.AllowMethods {
		if !rules.Token(m) || strings.ToUpper(m) != m {
			diags.add(fmt.Sprintf("%s.allowMethods[%d]", path, i), fmt.Sprintf("%q is not an upper-case HTTP method", m))
			ok = false
			continue
		}
		c.methods[m] = true
	}
	c.allowMethods = []string{strings.Join(cfg.AllowMethods, ", ")}
	for i, h := range cfg.AllowHeaders {
		if h == "*" {
			c.anyHeader = true
			continue
		}
		if !rules.Token(h) {
			diags.add(fmt.Sprintf("%s.allowHeaders[%d]", path, i), fmt.Sprintf("%q is not a header name", h))
			ok = false
			continue
		}
		c.headers[strings.ToLower(h)] = true
	}
	if !c.anyHeader && len(cfg.AllowHeaders) > 0 {
		c.allowHeaders = []string{strings.Join(cfg.AllowHeaders, ", ")}
	}
	for i, h := range cfg.ExposeHeaders {
		if !rules.Token(h) {
			diags.add(fmt.Sprintf("%s.exposeHeaders[%d]", path, i), fmt.Sprintf("%q is not a header name", h))
			ok = false
		}
	}
	if len(cfg.ExposeHeaders) > 0 {
		c.expose = []string{strings.Join(cfg.ExposeHeaders, ", ")}
	}
	if cfg.MaxAge > 0 {
		c.maxAge = []string{strconv.FormatInt(int64(cfg.MaxAge.D().Seconds()), 10)}
	}
	if !ok {
		return nil
	}
	return c
}

func (c *cors) originAllowed(origin string) bool {
	if c.anyOrigin {
		return true
	}
	if c.exact[origin] {
		return true
	}
	for _, w := range c.wildcards {
		if w.match(origin) {
			return true
		}
	}
	return false
}

// headersAllowed reports whether every header of a preflight's
// Access-Control-Request-Headers list is allowed.
func (c *cors) headersAllowed(list []string) bool {
	if c.anyHeader {
		return true
	}
	for _, line := range list {
		for h := range strings.SplitSeq(line, ",") {
			h = strings.ToLower(textproto.TrimString(h))
			if h != "" && !c.headers[h] {
				return false
			}
		}
	}
	return true
}

var (
	varyPreflight = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	trueValue     = []string{"true"}
	starValue     = []string{"*"}
)

// wrap answers preflights itself (204, or 403 for an origin, method or
// header not allowed) and adds CORS headers to the answers of allowed
// origins. A request from an origin not listed is forwarded with no CORS
// headers: the browser then keeps the answer from the script.
func (c *cors) wrap(_ string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origins := r.Header["Origin"]
		h := w.Header()
		if r.Method == http.MethodOptions && len(origins) > 0 && len(r.Header["Access-Control-Request-Method"]) > 0 {
			h.Add("Vary", varyPreflight)
			origin := origins[0]
			reqMethod := r.Header.Get("Access-Control-Request-Method")
			if len(origins) != 1 || !c.originAllowed(origin) || !c.methods[reqMethod] ||
				!c.headersAllowed(r.Header["Access-Control-Request-Headers"]) {
				reply.Write(w, http.StatusForbidden, c.body)
				return
			}
			c.setOrigin(h, origin)
			h["Access-Control-Allow-Methods"] = c.allowMethods
			if c.anyHeader {
				if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
					h["Access-Control-Allow-Headers"] = []string{req}
				}
			} else if c.allowHeaders != nil {
				h["Access-Control-Allow-Headers"] = c.allowHeaders
			}
			if c.maxAge != nil {
				h["Access-Control-Max-Age"] = c.maxAge
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if len(origins) == 1 && c.originAllowed(origins[0]) {
			c.setOrigin(h, origins[0])
			if c.expose != nil {
				h["Access-Control-Expose-Headers"] = c.expose
			}
		}
		if !c.anyOrigin || c.credentials {
			h.Add("Vary", "Origin")
		}
		next.ServeHTTP(w, r)
	})
}

func (c *cors) setOrigin(h http.Header, origin string) {
	if c.anyOrigin && !c.credentials {
		h["Access-Control-Allow-Origin"] = starValue
		return
	}
	h["Access-Control-Allow-Origin"] = []string{origin}
	if c.credentials {
		h["Access-Control-Allow-Credentials"] = trueValue
	}
}
