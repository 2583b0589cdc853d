package schemas

// Redirect answers a route's requests with a redirect built from the
// request and the fields set here. The Location is always absolute; its
// host comes from Host, or from the request's own Host header when Host is
// unset.
type Redirect struct {
	// Scheme is "http" or "https". "": the request's (https when it came
	// over TLS).
	Scheme string `json:"scheme,omitempty"`
	// Host is the host name to redirect to, without a port. "": the
	// request's own host.
	Host string `json:"host,omitempty"`
	// Port is the port to redirect to, left out of the Location when it
	// is the scheme's well-known one. 0: the well-known port of Scheme
	// when Scheme is set, otherwise the request's own port.
	Port int `json:"port,omitempty"`
	// Path replaces the whole request path. At most one of Path and
	// Prefix. Neither: the path is kept.
	Path string `json:"path,omitempty"`
	// Prefix replaces the part of the path that match.path matched; only
	// for match.pathType prefix.
	Prefix string `json:"prefix,omitempty"`
	// StripQuery drops the request's query. Default false: the query is
	// kept.
	StripQuery bool `json:"stripQuery,omitempty"`
	// Status is 301, 302, 307 or 308. Default 302 (DefaultRedirectStatus).
	Status int `json:"status,omitempty"`
}

// DefaultRedirectStatus is the status of a Redirect without one: 302, as
// Caddy's redir and the Kubernetes Gateway API choose, since browsers keep
// a mistaken 301 for good while a 302 is undone by the next commit.
const DefaultRedirectStatus = 302

// MaxDirectResponseBody bounds DirectResponse.Body: a maintenance page or
// a robots.txt, not a file server.
const MaxDirectResponseBody = 64 << 10

// DirectResponse is a fixed response the gateway answers with itself.
type DirectResponse struct {
	// Status is the response status, 200..599. Default 200.
	Status int `json:"status,omitempty"`
	// Body is sent as it is, at most 64 KiB (MaxDirectResponseBody). It
	// must be empty for 204 and 304.
	Body string `json:"body,omitempty"`
	// ContentType of the body. Default "text/plain; charset=utf-8" when
	// Body is set.
	ContentType string `json:"contentType,omitempty"`
	// Headers are set on the response, by name.
	Headers map[string]string `json:"headers,omitempty"`
}

// Compression algorithms of Compress.Algorithms.
const (
	CompressZstd = "zstd"
	CompressGzip = "gzip"
)

// Compression levels of Compress.Level.
const (
	CompressFastest = "fastest"
	CompressDefault = "default"
	CompressBest    = "best"
)

// Compress compresses a route's responses, negotiated by the request's
// Accept-Encoding.
type Compress struct {
	// Algorithms the gateway may use, most preferred first: it uses the
	// first one the client accepts with its highest q-value. Default
	// [zstd, gzip].
	Algorithms []string `json:"algorithms,omitempty"`
	// MinBytes is the smallest Content-Length compressed. A response
	// without Content-Length (streamed) is compressed whatever its size.
	// Default 1024.
	MinBytes int64 `json:"minBytes,omitempty"`
	// ContentTypes are the media types compressed: "text/*"-style
	// wildcards or exact types, without parameters. Default
	// DefaultCompressTypes.
	ContentTypes []string `json:"contentTypes,omitempty"`
	// Level is fastest, default or best. Default "default".
	Level string `json:"level,omitempty"`
}

// DefaultCompressTypes are the media types Compress compresses by default:
// text and the textual application types. Images, video, archives and
// fonts other than SVG are compressed already.
var DefaultCompressTypes = []string{
	"text/*",
	"application/json", "application/javascript", "application/xml",
	"application/xhtml+xml", "application/rss+xml", "application/atom+xml",
	"application/manifest+json", "application/ld+json", "application/problem+json",
	"application/wasm", "image/svg+xml",
}

// DefaultCompressMinBytes is Compress.MinBytes when unset.
const DefaultCompressMinBytes = 1024

func (c *Compress) applyDefaults() {
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{CompressZstd, CompressGzip}
	}
	if c.MinBytes == 0 {
		c.MinBytes = DefaultCompressMinBytes
	}
	if len(c.ContentTypes) == 0 {
		c.ContentTypes = append([]string(nil), DefaultCompressTypes...)
	}
	setStr(&c.Level, CompressDefault)
}

func (r *Redirect) applyDefaults() {
	if r.Status == 0 {
		r.Status = DefaultRedirectStatus
	}
}

func (d *DirectResponse) applyDefaults() {
	if d.Status == 0 {
		d.Status = 200
	}
	if d.Body != "" && d.ContentType == "" {
		d.ContentType = "text/plain; charset=utf-8"
	}
}
