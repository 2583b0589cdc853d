package schemas

// Config is the whole gateway configuration: the unified content of a config
// repository's directory after validation and defaulting. Every collection is a
// map keyed by name so that files merge.
type Config struct {
	// Upstreams are the pools of targets that routes send traffic to.
	Upstreams map[string]Upstream `json:"upstreams,omitempty"`
	// Routes match requests and send them to weighted backends.
	Routes map[string]Route `json:"routes,omitempty"`
	// Policies are named rate limits, auth rules, CORS and IP lists that routes
	// attach by name.
	Policies map[string]Policy `json:"policies,omitempty"`
	// Safety is the agent's automatic verdict on each config version after
	// it is applied (README "Automatic rollback"). Nil, with no route
	// carrying a safety section of its own: no verdict, nothing rolls back
	// by itself.
	Safety *Safety `json:"safety,omitempty"`
}

// Balance algorithms for Upstream.Balance.
const (
	BalanceRoundRobin    = "round_robin"
	BalanceLeastRequests = "least_requests"
	BalanceRandom        = "random"
	BalanceHash          = "hash"
)

// Upstream is a pool of equivalent targets.
type Upstream struct {
	// Targets are http:// or https:// base URLs. At least one is
	// required, unless the upstream is a Failover.
	Targets []string `json:"targets"`
	// Balance picks a target per request. Default "round_robin".
	Balance string `json:"balance,omitempty"`
	// HashOn chooses the key when Balance is "hash". Default: client IP.
	HashOn *HashOn `json:"hashOn,omitempty"`
	// Discovery bounds how often the upstream's target is resolved again
	// when that target is dns://NAME:PORT (every A and AAAA record of NAME)
	// or srv://_service._tcp.NAME (the SRV records of the name), which must
	// then be its only target. Nil: the defaults (1s and 5m).
	Discovery *Discovery `json:"discovery,omitempty"`
	// HealthCheck enables active health checks. Nil: none.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// OutlierDetection ejects targets after consecutive failures seen on real
	// traffic. Nil: none.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// CircuitBreaker opens for the whole upstream after failures. Nil: none.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// MaxConnsPerTarget caps open connections per target. 0: unlimited.
	MaxConnsPerTarget int `json:"maxConnsPerTarget,omitempty"`
	// MaxIdleConnsPerTarget is the keep-alive pool size per target. Default 64.
	MaxIdleConnsPerTarget int `json:"maxIdleConnsPerTarget,omitempty"`
	// ConnectTimeout bounds dialing a target. Default 5s.
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	// TLS configures connections to https:// targets and their health
	// checks. Nil: the system roots, SNI from the target host, TLS 1.2 or
	// newer.
	TLS *UpstreamTLS `json:"tls,omitempty"`
	// Protocol is what the gateway speaks to the targets: "http1"
	// (HTTP/1.1, the default), "h2" (HTTP/2 over TLS, https:// targets)
	// or "h2c" (HTTP/2 without TLS by prior knowledge, http:// targets).
	// gRPC upstreams need h2 or h2c.
	Protocol string `json:"protocol,omitempty"`
	// Failover makes the upstream an ordered list of other upstreams
	// (groups) instead of targets: each request goes to the first group
	// with enough available targets. An upstream has either Targets or
	// Failover. Nil: a plain upstream.
	Failover *Failover `json:"failover,omitempty"`
}

// Failover is an upstream made of other upstreams, tried in order.
type Failover struct {
	// Groups names plain upstreams (with targets), primary first.
	Groups []string `json:"groups"`
	// MinHealthy is how many available targets (healthy, not ejected,
	// breaker not open) a group needs to take traffic. Default 1.
	MinHealthy int `json:"minHealthy,omitempty"`
}

// TLS versions for UpstreamTLS.MinVersion.
const (
	TLSVersion12 = "1.2"
	TLSVersion13 = "1.3"
)

// UpstreamTLS is how the gateway verifies and authenticates to an
// upstream's https:// targets. Certificates and keys are secret references
// resolved by the gateway at apply time; their values never appear in a
// bundle.
type UpstreamTLS struct {
	// CARef is a PEM bundle of the CAs that may sign the targets'
	// certificates, instead of the system roots. Nil: the system roots.
	CARef *SecretRef `json:"caRef,omitempty"`
	// ServerName is sent as SNI and verified against the certificate.
	// Empty: the target URL's host.
	ServerName string `json:"serverName,omitempty"`
	// ClientCertRef is a PEM client certificate (chain) presented to
	// targets that require mTLS. Set together with ClientKeyRef.
	ClientCertRef *SecretRef `json:"clientCertRef,omitempty"`
	// ClientKeyRef is the PEM private key of ClientCertRef.
	ClientKeyRef *SecretRef `json:"clientKeyRef,omitempty"`
	// MinVersion is "1.2" or "1.3". Default "1.2".
	MinVersion string `json:"minVersion,omitempty"`
	// InsecureSkipVerify accepts any certificate from the targets. It
	// exists for tests and migrations only: the gateway logs a warning
	// naming the upstream at each apply, and the agent's plan says so.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// Discovery bounds the re-resolution of an upstream's dns:// or srv://
// target: the next resolution comes after the smallest TTL of the answer,
// raised to MinInterval and lowered to MaxInterval.
type Discovery struct {
	// MinInterval is the shortest time between two resolutions, whatever
	// the TTL. Default 1s.
	MinInterval Duration `json:"minInterval,omitempty"`
	// MaxInterval is the longest time between two resolutions, whatever
	// the TTL, and the longest wait before a retry after a failure.
	// Default 5m.
	MaxInterval Duration `json:"maxInterval,omitempty"`
}

// The protocols of Upstream.Protocol.
const (
	ProtocolHTTP1 = "http1"
	ProtocolH2    = "h2"
	ProtocolH2C   = "h2c"
)

// HashOn names the request attribute hashed for sticky choices. Exactly one
// of the fields is set.
type HashOn struct {
	// Header hashes the value of this request header.
	Header string `json:"header,omitempty"`
	// Cookie hashes the value of this cookie.
	Cookie string `json:"cookie,omitempty"`
	// ClientIP hashes the client address.
	ClientIP bool `json:"clientIP,omitempty"`
}

// HealthCheck is an active HTTP probe of every target.
type HealthCheck struct {
	// Path is requested with GET. Default "/healthz".
	Path string `json:"path,omitempty"`
	// Interval between probes. Default 10s.
	Interval Duration `json:"interval,omitempty"`
	// Timeout of one probe. Default 2s, or the interval when that is
	// shorter. At most the interval.
	Timeout Duration `json:"timeout,omitempty"`
	// HealthyThreshold is the number of passing probes that mark a target
	// healthy. Default 2.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is the number of failing probes that mark a target
	// unhealthy. Default 3.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
	// ExpectedStatuses pass the probe. Default: any 2xx.
	ExpectedStatuses []int `json:"expectedStatuses,omitempty"`
	// GRPC, when set, probes with the gRPC health protocol
	// (grpc.health.v1.Health/Check) instead of a GET of Path; the upstream's
	// protocol must be h2 or h2c.
	GRPC *GRPCHealthCheck `json:"grpc,omitempty"`
}

// GRPCHealthCheck is a probe by the gRPC health protocol: it passes when
// the target answers SERVING for Service.
type GRPCHealthCheck struct {
	// Service is the name asked about. Default "": the server as a whole.
	Service string `json:"service,omitempty"`
}

// OutlierDetection ejects a target after consecutive failures, for a time
// that doubles on each ejection up to MaxEjection.
type OutlierDetection struct {
	// ConsecutiveFailures before ejection. Default 5.
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
	// BaseEjection is the first ejection time. Default 30s.
	BaseEjection Duration `json:"baseEjection,omitempty"`
	// MaxEjection caps the ejection time. Default 5m.
	MaxEjection Duration `json:"maxEjection,omitempty"`
}

// CircuitBreaker stops sending to an upstream that keeps failing.
type CircuitBreaker struct {
	// ConsecutiveFailures opens the breaker. Default 5.
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
	// ErrorRatio in (0,1] over the last window also opens it. 0: not used.
	ErrorRatio float64 `json:"errorRatio,omitempty"`
	// MinRequests in the window before ErrorRatio applies. Default 20.
	MinRequests int `json:"minRequests,omitempty"`
	// OpenDuration before half-open probes are let through. Default 30s.
	OpenDuration Duration `json:"openDuration,omitempty"`
	// HalfOpenRequests let through while half-open. Default 1.
	HalfOpenRequests int `json:"halfOpenRequests,omitempty"`
}

// Path match types for Match.PathType.
const (
	PathExact    = "exact"
	PathPrefix   = "prefix"
	PathRegex    = "regex"
	PathTemplate = "template"
)

// Route matches requests and forwards them to backends.
type Route struct {
	// Match selects the requests this route serves.
	Match Match `json:"match"`
	// Backends are upstreams with weights that sum to 100. A route has
	// exactly one of Backends, Redirect and DirectResponse.
	Backends []Backend `json:"backends,omitempty"`
	// Redirect answers every request of the route with a redirect instead
	// of forwarding it. Nil: no redirect.
	Redirect *Redirect `json:"redirect,omitempty"`
	// DirectResponse answers every request of the route with a fixed
	// response instead of forwarding it. Nil: none.
	DirectResponse *DirectResponse `json:"directResponse,omitempty"`
	// Compress compresses the route's responses for clients that accept
	// it. Nil: responses pass as they are.
	Compress *Compress `json:"compress,omitempty"`
	// Split makes the weighted choice sticky. Nil: each request is drawn anew.
	Split *Split `json:"split,omitempty"`
	// Priority orders routes before specificity; higher wins. Default 0.
	Priority int `json:"priority,omitempty"`
	// Rewrite changes the path or host sent upstream. Nil: unchanged.
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	// RequestHeaders edits the headers sent upstream.
	RequestHeaders *HeaderOps `json:"requestHeaders,omitempty"`
	// ResponseHeaders edits the headers sent to the client.
	ResponseHeaders *HeaderOps `json:"responseHeaders,omitempty"`
	// Timeout is the total time for the request including retries. Default 30s.
	Timeout Duration `json:"timeout,omitempty"`
	// PerTryTimeout bounds each attempt. 0: only Timeout applies. At most
	// Timeout.
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
	// Retries retries failed attempts. Nil: no retries.
	Retries *Retries `json:"retries,omitempty"`
	// Policies are names of entries in Config.Policies, applied in order.
	Policies []string `json:"policies,omitempty"`
	// MaxBodyBytes caps the request body. Default 10 MiB.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// Upgrades are the protocols a client may switch to with an Upgrade
	// header (RFC 9110 section 7.8), compared case-insensitively. A request
	// asking for another protocol is refused with 403. Default
	// ["websocket"]; an empty list allows none. "h2c" is never allowed:
	// the gateway drops an h2c upgrade and serves the request as HTTP/1.1,
	// because an HTTP/2 connection tunnelled to the upstream would carry
	// requests that no route or policy ever sees.
	Upgrades []string `json:"upgrades,omitzero"`
	// AllowPathParameters forwards paths with ";" path parameters
	// ("/a;jsessionid=1"). Default false: such paths are refused with 400,
	// since Tomcat, Jetty and Spring read "/pub/..;/priv" as "/priv". Dot
	// segments with parameters ("..;x") are refused either way.
	AllowPathParameters bool `json:"allowPathParameters,omitempty"`
	// Safety overrides, for this route, the thresholds of the top-level
	// Safety section field by field: a field left unset takes the
	// top-level value (or its default). Nil: the top-level thresholds.
	Safety *SafetyRule `json:"safety,omitempty"`
	// Cache stores this route's responses (RFC 9111, as a shared cache).
	// Nil: nothing is cached.
	Cache *RouteCache `json:"cache,omitempty"`
}

// Match is the request predicate of a route. Empty fields match anything.
type Match struct {
	// Hosts are exact names or "*.example.com" wildcards. Empty: any host.
	Hosts []string `json:"hosts,omitempty"`
	// Path to match. Default "/".
	Path string `json:"path,omitempty"`
	// PathType is exact, prefix, regex or template. Default "prefix".
	PathType string `json:"pathType,omitempty"`
	// Methods are upper-case HTTP methods. Empty: any method.
	Methods []string `json:"methods,omitempty"`
	// Headers must all match, keyed by header name.
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// Query parameters must all match, keyed by parameter name.
	Query map[string]StringMatch `json:"query,omitempty"`
}

// StringMatch matches one header or query value. Exactly one field is set.
type StringMatch struct {
	// Exact value.
	Exact string `json:"exact,omitempty"`
	// Prefix of the value.
	Prefix string `json:"prefix,omitempty"`
	// Regex the whole value must match (RE2, size-bounded).
	Regex string `json:"regex,omitempty"`
	// Present matches when the header or parameter exists at all.
	Present bool `json:"present,omitempty"`
}

// Backend is one weighted destination of a route.
type Backend struct {
	// Upstream names an entry of Config.Upstreams.
	Upstream string `json:"upstream"`
	// Weight in percent, 0..100; a route's weights sum to 100.
	Weight int `json:"weight"`
}

// Split makes a route's weighted backend choice sticky.
type Split struct {
	// HashOn is the attribute hashed to pick a backend.
	HashOn HashOn `json:"hashOn"`
}

// Rewrite changes the request before it goes upstream. Applied in field order.
type Rewrite struct {
	// StripPrefix is removed from the start of the path.
	StripPrefix string `json:"stripPrefix,omitempty"`
	// AddPrefix is put before the path.
	AddPrefix string `json:"addPrefix,omitempty"`
	// Regex replaces the path: matches of Regex.Pattern become Regex.Replacement.
	Regex *RegexRewrite `json:"regex,omitempty"`
	// Path replaces the whole path; "{param}" takes a template parameter of
	// the match.
	Path string `json:"path,omitempty"`
	// Host replaces the Host header sent upstream.
	Host string `json:"host,omitempty"`
}

// RegexRewrite is a regular expression path rewrite.
type RegexRewrite struct {
	// Pattern is an RE2 expression.
	Pattern string `json:"pattern"`
	// Replacement may use $1 or ${name}.
	Replacement string `json:"replacement"`
}

// HeaderOps edits headers: Remove first, then Set, then Add.
type HeaderOps struct {
	// Set replaces the header's values.
	Set map[string]string `json:"set,omitempty"`
	// Add appends a value.
	Add map[string]string `json:"add,omitempty"`
	// Remove deletes the header.
	Remove []string `json:"remove,omitempty"`
}

// Retry conditions for Retries.On.
const (
	RetryConnectFailure = "connect-failure"
	RetryReset          = "reset"
	Retry502            = "502"
	Retry503            = "503"
	Retry504            = "504"
)

// Retries retries a failed attempt on another target.
type Retries struct {
	// Attempts is the number of retries after the first try. Default 2.
	Attempts int `json:"attempts,omitempty"`
	// BackoffBase is the first backoff; it doubles with jitter. Default 25ms.
	BackoffBase Duration `json:"backoffBase,omitempty"`
	// BackoffMax caps the backoff. Default 250ms.
	BackoffMax Duration `json:"backoffMax,omitempty"`
	// On lists the failures retried. Default connect-failure, reset, 502, 503, 504.
	On []string `json:"on,omitempty"`
	// NonIdempotent allows retrying POST, PATCH and other unsafe methods.
	NonIdempotent bool `json:"nonIdempotent,omitempty"`
	// BudgetPercent caps retries to this share of active requests. Default 20.
	BudgetPercent int `json:"budgetPercent,omitempty"`
	// MinRetriesPerSecond is always allowed regardless of the budget. Default 3.
	MinRetriesPerSecond int `json:"minRetriesPerSecond,omitempty"`
}

// Policy is exactly one of its fields, each a kind of policy (see
// PolicyKinds). A kind is a pointer field whose JSON name is the kind's
// name; the gateway compiles it with the kind registered under that name in
// gateway/internal/policy. A kind's settings type may have an
// applyDefaults method (defaults.go), and tags its sensitive fields with
// secret:"value" (the diff shows the field masked) or secret:"values" (a
// map whose keys stay visible and values are masked).
type Policy struct {
	// RateLimit is a token bucket, local or fleet-wide in Redis.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// APIKey requires a known API key.
	APIKey *APIKey `json:"apiKey,omitempty"`
	// JWT requires a valid bearer token.
	JWT *JWT `json:"jwt,omitempty"`
	// CORS answers preflights and sets CORS response headers.
	CORS *CORS `json:"cors,omitempty"`
	// IPAllow lets through only these client networks.
	IPAllow *IPList `json:"ipAllow,omitempty"`
	// IPDeny refuses these client networks.
	IPDeny *IPList `json:"ipDeny,omitempty"`
}

// RateLimit is a token bucket per key.
type RateLimit struct {
	// Rate is the number of requests allowed per Per.
	Rate float64 `json:"rate"`
	// Per is the period of Rate. Default 1s.
	Per Duration `json:"per,omitempty"`
	// Burst is the bucket size. Default: Rate rounded up, at least 1.
	Burst int `json:"burst,omitempty"`
	// Key is "client_ip", "route" or "header:NAME". Default "client_ip".
	Key string `json:"key,omitempty"`
	// MaxKeys bounds the number of buckets kept. Default 100000.
	MaxKeys int `json:"maxKeys,omitempty"`
	// Store is where the buckets live: "local" (this gateway process, the
	// default) or "redis" (a Redis or Valkey server shared by every
	// gateway of the fleet, so the limit holds fleet-wide).
	Store string `json:"store,omitempty"`
	// Redis is the server of store "redis". Required with it, refused
	// without it.
	Redis *RedisStore `json:"redis,omitempty"`
	// OnStoreError is what a store "redis" policy does while Redis does not
	// answer within its timeout: "local" (the default) decides with this
	// gateway's own bucket of the same rate and burst, so a fleet of N
	// gateways admits up to N times the limit during the outage; "allow"
	// lets every request through (fail open).
	OnStoreError string `json:"onStoreError,omitempty"`
}

// Stores of RateLimit.Store.
const (
	RateLimitStoreLocal = "local"
	RateLimitStoreRedis = "redis"
)

// Behaviours of RateLimit.OnStoreError.
const (
	OnStoreErrorLocal = "local"
	OnStoreErrorAllow = "allow"
)

// RedisStore is a Redis (or Valkey) server holding rate-limit buckets.
// Credentials are secret references resolved by the gateway at apply time.
type RedisStore struct {
	// Address is host:port of the server.
	Address string `json:"address"`
	// UsernameRef is the ACL user name. Nil: the default user.
	UsernameRef *SecretRef `json:"usernameRef,omitempty"`
	// PasswordRef is the password (AUTH). Nil: no authentication.
	PasswordRef *SecretRef `json:"passwordRef,omitempty"`
	// DB is the database number. Default 0.
	DB int `json:"db,omitempty"`
	// TLS, when set, connects with TLS.
	TLS *RedisTLS `json:"tls,omitempty"`
	// Timeout bounds one decision's round trip, connecting included;
	// past it the policy follows OnStoreError. Default 50ms.
	Timeout Duration `json:"timeout,omitempty"`
	// KeyPrefix starts the name of every key the gateway writes. Default
	// "gitgate:ratelimit:".
	KeyPrefix string `json:"keyPrefix,omitempty"`
}

// RedisTLS is how the gateway verifies a Redis server over TLS.
type RedisTLS struct {
	// CARef is a PEM bundle of the CAs that may sign the server's
	// certificate. Nil: the system roots.
	CARef *SecretRef `json:"caRef,omitempty"`
	// ServerName is verified against the certificate. Empty: the host of
	// Address.
	ServerName string `json:"serverName,omitempty"`
}

// APIKey checks a key sent in a header or query parameter.
type APIKey struct {
	// In is "header" or "query". Default "header".
	In string `json:"in,omitempty"`
	// Name of the header or parameter. Default "X-API-Key".
	Name string `json:"name,omitempty"`
	// Keys maps a consumer name to "sha256:<64 hex>" of its key; keys are never
	// stored in clear.
	Keys map[string]string `json:"keys" secret:"values"`
	// ConsumerHeader, when set, carries the consumer name upstream.
	ConsumerHeader string `json:"consumerHeader,omitempty"`
}

// JWT validates bearer tokens.
type JWT struct {
	// Issuer must equal the iss claim. Empty: not checked.
	Issuer string `json:"issuer,omitempty"`
	// Audiences: the aud claim must contain one. Empty: not checked.
	Audiences []string `json:"audiences,omitempty"`
	// Algorithms accepted: HS256, RS256, ES256. Required.
	Algorithms []string `json:"algorithms"`
	// Secret is the HS256 key, by reference only.
	Secret *SecretRef `json:"secret,omitempty"`
	// JWKS holds the public keys for RS256 and ES256.
	JWKS *JWKS `json:"jwks,omitempty" secret:"value"`
	// JWKSRef reads a JWKS document from a reference at apply time.
	JWKSRef *SecretRef `json:"jwksRef,omitempty"`
	// JWKSURL is an https URL the gateway fetches the JWKS from, caches and
	// refreshes every JWKSRefresh and when a token names an unknown kid.
	JWKSURL string `json:"jwksURL,omitempty"`
	// JWKSCARef is a PEM CA bundle, by reference, that verifies the JWKS
	// server instead of the system roots (a private CA).
	JWKSCARef *SecretRef `json:"jwksCARef,omitempty"`
	// JWKSRefresh is how often a JWKS from JWKSURL is fetched again.
	// Default 5m when JWKSURL is set.
	JWKSRefresh Duration `json:"jwksRefresh,omitempty"`
	// Header carrying the token. Default "Authorization" with a Bearer prefix.
	Header string `json:"header,omitempty"`
	// ClaimsToHeaders copies claims (key) to upstream request headers (value).
	ClaimsToHeaders map[string]string `json:"claimsToHeaders,omitempty"`
	// RequireExp refuses tokens without an exp claim. Default true; nil
	// (a bundle from before the field existed) is true as well.
	RequireExp *bool `json:"requireExp,omitempty"`
	// Leeway tolerated on exp, nbf and iat. Default 30s.
	Leeway Duration `json:"leeway,omitempty"`
}

// ExpRequired reports whether tokens must carry exp: RequireExp, true when
// unset.
func (j *JWT) ExpRequired() bool { return j.RequireExp == nil || *j.RequireExp }

// JWKS is a JSON Web Key Set (RFC 7517).
type JWKS struct {
	// Keys of the set.
	Keys []JWK `json:"keys"`
}

// JWK is one public key of a JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// CORS configures cross-origin requests.
type CORS struct {
	// AllowOrigins are exact origins or "https://*.example.com"; "*" for any.
	AllowOrigins []string `json:"allowOrigins"`
	// AllowMethods. Default GET, HEAD, POST.
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders requested by preflights.
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// ExposeHeaders to scripts.
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// AllowCredentials permits cookies; not with origin "*".
	AllowCredentials bool `json:"allowCredentials,omitempty"`
	// MaxAge of a preflight answer in caches. 0: not sent.
	MaxAge Duration `json:"maxAge,omitempty"`
}

// IPList is a list of client networks.
type IPList struct {
	// CIDRs such as "10.0.0.0/8" or "2001:db8::/32"; a bare address is a /32 or /128.
	CIDRs []string `json:"cidrs"`
}

// SecretRef points at a secret resolved by the gateway at apply time. Exactly
// one field is set. The secret value never appears in a bundle.
type SecretRef struct {
	// Env names an environment variable of the gateway process.
	Env string `json:"env,omitempty"`
	// File is a path readable by the gateway process.
	File string `json:"file,omitempty"`
}

// String describes the reference without its value.
func (r SecretRef) String() string {
	if r.Env != "" {
		return "env:" + r.Env
	}
	return "file:" + r.File
}

// Safety actions for SafetyRule.Action.
const (
	// SafetyRollback rolls a regressing version back to the previously
	// applied commit and marks it bad.
	SafetyRollback = "rollback"
	// SafetyReport only reports the regression (log, status, history,
	// GitHub deploy status); the version keeps serving.
	SafetyReport = "report"
)

// Error classes for SafetyRule.ErrorStatuses.
const (
	// ErrorClass5xx counts every 5xx the client got, the gateway's own
	// 502/503/504 for a failed upstream included.
	ErrorClass5xx = "5xx"
	// ErrorClass4xx counts 4xx answers of the upstream, except 429. A
	// policy's refusals (401, 403, 429) are never counted at all.
	ErrorClass4xx = "4xx"
)

// Safety is the top-level `safety` section: how the agent judges a config
// version during its bake window after each apply, comparing the new
// version's traffic with the previous version's on the same routes, and
// a canary backend with the stable one on a split route.
type Safety struct {
	// BakeWindow is how long after an apply the agent watches the new
	// version. Default 2m.
	BakeWindow Duration `json:"bakeWindow,omitempty"`
	// CheckInterval is how often the agent reads the gateway's counts
	// during the bake window. Default 5s. At most BakeWindow.
	CheckInterval Duration `json:"checkInterval,omitempty"`
	// Breaches is the number of consecutive checks that must find the same
	// breach before the action is taken. Default 2.
	Breaches int `json:"breaches,omitempty"`
	// SafetyRule holds the thresholds every route gets unless its own
	// safety section overrides them.
	SafetyRule
}

// SafetyRule are the thresholds of a verdict on one route. The zero value
// of each field means its default.
type SafetyRule struct {
	// MinRequests is the number of requests the new version must have
	// served on a route (and each side of a comparison must have seen)
	// before any verdict on it; below it the verdict is "insufficient
	// traffic", never a rollback. Default 100.
	MinRequests int `json:"minRequests,omitempty"`
	// ErrorRatio is the share of error responses (0..1) above which a
	// route breaches. With a baseline, the route must also exceed the
	// baseline's ratio by ErrorRatioIncrease: a version that fails as
	// much as the one before it is not a regression. Default 0.05.
	ErrorRatio float64 `json:"errorRatio,omitempty"`
	// ErrorRatioIncrease is how far (0..1, in ratio points) the error
	// ratio may rise above the baseline's (the previous version's on the
	// same route, or the stable backend's for a canary) before it
	// breaches, when it is also above ErrorRatio. Default 0.02.
	ErrorRatioIncrease float64 `json:"errorRatioIncrease,omitempty"`
	// LatencyP99Factor is how many times the baseline's p99 latency the
	// new p99 may reach. Default 2. A breach also needs the p99 to rise
	// by more than LatencyP99Margin.
	LatencyP99Factor float64 `json:"latencyP99Factor,omitempty"`
	// LatencyP99Margin is the smallest p99 rise that can breach, so that
	// 1 ms becoming 3 ms is no regression. Default 50ms.
	LatencyP99Margin Duration `json:"latencyP99Margin,omitempty"`
	// ErrorStatuses are the status classes counted as errors: "5xx",
	// "4xx" (an upstream's 429 excluded). Default ["5xx"].
	ErrorStatuses []string `json:"errorStatuses,omitempty"`
	// Action is what a regression does: "rollback" or "report". Default
	// "rollback".
	Action string `json:"action,omitempty"`
}
