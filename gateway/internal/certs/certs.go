// Package certs serves a listener's TLS certificates: several pairs, chosen
// by SNI, read from files and from a directory, and reloaded while the
// listener runs when their contents change.
//
// Reloading polls: every interval it reads the certificate and key files
// (a few kilobytes) and compares their SHA-256 with what it last loaded.
// Polling the contents rather than watching with inotify works the same for
// a Kubernetes Secret volume (cert-manager swaps the "..data" symlink, and
// the files a watcher was told about are not the ones that changed), a
// bind mount, a ConfigMap and a plain rename, needs no dependency, and
// cannot miss an event. A new set that does not load keeps the old one.
package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Log field names used by this package.
const (
	logComponent = "component"
	logPath      = "path"
	logNames     = "names"
	logCount     = "certificates"
)

// DefaultInterval is how often the files are read for changes.
const DefaultInterval = 5 * time.Second

// Pair names a certificate file (PEM, leaf first, then intermediates) and
// its key file.
type Pair struct {
	Cert, Key string
}

// Options says where a Store's certificates come from.
type Options struct {
	// Pairs are explicit certificate and key files. The first is the
	// default for a client that sends no SNI or an unknown name.
	Pairs []Pair
	// Dir, when set, is scanned on every reload for NAME.crt files with a
	// NAME.key beside them, in Dir itself and in its direct subdirectories
	// (a Secret volume mounted at Dir/SUB holds tls.crt and tls.key).
	// Entries whose name starts with "." are skipped (the "..data" links of
	// a Secret volume). A .crt without a .key (a CA's ca.crt) is skipped.
	Dir string
	// ClientCA, when set, is a PEM bundle of client-certificate CAs,
	// read and reloaded with the pairs (ClientCAs).
	ClientCA string
	// Interval is the poll period. Default DefaultInterval.
	Interval time.Duration
	// Errors, when set, counts reloads that failed (the old set kept).
	Errors prometheus.Counter
	// Reloads, when set, counts reloads that installed a new set.
	Reloads prometheus.Counter
	// Logger receives reload results.
	Logger zerolog.Logger
}

// set is one loaded generation of certificates.
type set struct {
	byName map[string][]*tls.Certificate // lower-case DNS name or "*.suffix"
	all    []*tls.Certificate            // in load order; all[0] is the default
	cas    *x509.CertPool                // nil without Options.ClientCA
	sum    [sha256.Size]byte
}

// Store holds the current certificate set; GetCertificate reads it
// without locking, reloads swap it whole.
type Store struct {
	opts    Options
	lg      zerolog.Logger
	cur     atomic.Pointer[set]
	mu      sync.Mutex // serializes Reload
	lastBad string     // what last failed: the contents' sum or the read error

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// ErrNoCertificates is returned when the sources hold no usable pair.
var ErrNoCertificates = errors.New("no certificate and key pair found")

// New loads the certificates once; an error here means the listener
// cannot start. Call Start to reload them while serving.
func New(opts Options) (*Store, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	s := &Store{opts: opts, lg: opts.Logger.With().Str(logComponent, "certs").Logger(), stop: make(chan struct{})}
	files, sum, err := s.read()
	if err != nil {
		return nil, err
	}
	st, err := build(files)
	if err != nil {
		return nil, err
	}
	st.sum = sum
	s.cur.Store(st)
	return s, nil
}

// Start polls for changes until ctx ends or Close is called.
func (s *Store) Start(ctx context.Context) {
	s.wg.Go(func() {
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-t.C:
				_ = s.Reload()
			}
		}
	})
}

// Close stops the poll loop and waits for it.
func (s *Store) Close() {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// Reload reads the files and, when their contents changed, installs the
// new set. A set that does not load leaves the current one serving; the
// error is logged and counted once per distinct content, and returned.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, sum, err := s.read()
	if err == nil && sum == s.cur.Load().sum {
		s.lastBad = "" // a bad change undone: the next one is news again
		return nil
	}
	var st *set
	if err == nil {
		st, err = build(files)
	}
	if err != nil {
		bad := err.Error()
		if files != nil {
			bad = string(sum[:])
		}
		if bad != s.lastBad {
			s.lastBad = bad
			s.lg.Error().Err(err).Msg("TLS certificates changed but did not load; still serving the previous ones")
			if s.opts.Errors != nil {
				s.opts.Errors.Inc()
			}
		}
		return err
	}
	st.sum = sum
	s.cur.Store(st)
	s.lastBad = ""
	if s.opts.Reloads != nil {
		s.opts.Reloads.Inc()
	}
	s.lg.Info().Int(logCount, len(st.all)).Strs(logNames, names(st)).Msg("TLS certificates reloaded")
	return nil
}

// GetCertificate is a tls.Config.GetCertificate: the certificate whose
// name equals the SNI name, else one whose wildcard covers it, else the
// default. Among several for one name it takes the first the client
// supports (an ECDSA and an RSA certificate for one host).
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := s.cur.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := pick(hello, st.byName[name]); c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := pick(hello, st.byName["*"+name[i:]]); c != nil {
				return c, nil
			}
		}
	}
	return st.all[0], nil
}

func pick(hello *tls.ClientHelloInfo, cands []*tls.Certificate) *tls.Certificate {
	for _, c := range cands {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return nil
}

// file is one pair's contents as read; a file with an empty pair.Key is
// the client CA bundle.
type file struct {
	pair      Pair
	cert, key []byte
}

// read lists the pairs and reads them, and hashes everything read (the
// paths too, so a renamed pair counts as a change).
func (s *Store) read() ([]file, [sha256.Size]byte, error) {
	pairs := slices.Clone(s.opts.Pairs)
	if s.opts.Dir != "" {
		found, err := scan(s.opts.Dir)
		if err != nil {
			return nil, [sha256.Size]byte{}, err
		}
		pairs = append(pairs, found...)
	}
	h := sha256.New()
	out := make([]file, 0, len(pairs)+1)
	if s.opts.ClientCA != "" {
		b, err := os.ReadFile(s.opts.ClientCA)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("reading client CA bundle: %w", err)
		}
		fmt.Fprintf(h, "ca%d:", len(b))
		h.Write(b)
		out = append(out, file{pair: Pair{Cert: s.opts.ClientCA}, cert: b})
	}
	for _, p := range pairs {
		c, err := os.ReadFile(p.Cert)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("reading TLS certificate: %w", err)
		}
		k, err := os.ReadFile(p.Key)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("reading TLS key: %w", err)
		}
		for _, b := range [][]byte{[]byte(p.Cert), c, []byte(p.Key), k} {
			fmt.Fprintf(h, "%d:", len(b))
			h.Write(b)
		}
		out = append(out, file{pair: p, cert: c, key: k})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return out, sum, nil
}

// scan finds NAME.crt + NAME.key in dir and its direct subdirectories.
func scan(dir string) ([]Pair, error) {
	var out []Pair
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		ents, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("reading TLS directory: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, ".") {
				continue
			}
			p := filepath.Join(d, n)
			fi, err := os.Stat(p) // follows the symlinks of a Secret volume
			if err != nil {
				continue // a dangling link mid-swap; the next poll sees the result
			}
			if fi.IsDir() {
				if depth == 0 {
					if err := walk(p, 1); err != nil {
						return err
					}
				}
				continue
			}
			base, ok := strings.CutSuffix(n, ".crt")
			if !ok {
				continue
			}
			key := filepath.Join(d, base+".key")
			if _, err := os.Stat(key); err != nil {
				continue
			}
			out = append(out, Pair{Cert: p, Key: key})
		}
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// build parses every pair; one bad pair fails the whole set, so a
// half-written rotation never serves.
func build(files []file) (*set, error) {
	st := &set{byName: map[string][]*tls.Certificate{}}
	if len(files) > 0 && files[0].pair.Key == "" {
		st.cas = x509.NewCertPool()
		if !st.cas.AppendCertsFromPEM(files[0].cert) {
			return nil, fmt.Errorf("client CA bundle %s: no PEM certificate in it", files[0].pair.Cert)
		}
		files = files[1:]
	}
	if len(files) == 0 {
		return nil, ErrNoCertificates
	}
	for _, f := range files {
		c, err := tls.X509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("loading TLS pair %s and %s: %w", f.pair.Cert, f.pair.Key, err)
		}
		leaf := c.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parsing TLS certificate %s: %w", f.pair.Cert, err)
			}
			c.Leaf = leaf
		}
		cp := &c
		st.all = append(st.all, cp)
		hosts := slices.Clone(leaf.DNSNames)
		for _, ip := range leaf.IPAddresses {
			hosts = append(hosts, ip.String())
		}
		if len(hosts) == 0 && leaf.Subject.CommonName != "" {
			hosts = append(hosts, leaf.Subject.CommonName)
		}
		for _, n := range hosts {
			n = strings.ToLower(n)
			st.byName[n] = append(st.byName[n], cp)
		}
	}
	return st, nil
}

func names(st *set) []string {
	out := make([]string, 0, len(st.byName))
	for n := range st.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ClientCAs is the current pool of Options.ClientCA (nil without it). A
// pool is never modified after it is returned: a reload makes a new one.
func (s *Store) ClientCAs() *x509.CertPool { return s.cur.Load().cas }

// ConfigForClient returns a tls.Config.GetConfigForClient that hands out
// base with the current ClientCAs, so a reloaded CA bundle verifies the
// next handshake. base must hold everything else the listener needs
// (NextProtos included: the returned config replaces the listener's).
func (s *Store) ConfigForClient(base *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	type cached struct {
		pool *x509.CertPool
		cfg  *tls.Config
	}
	var cur atomic.Pointer[cached]
	return func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool := s.ClientCAs()
		if c := cur.Load(); c != nil && c.pool == pool {
			return c.cfg, nil
		}
		cfg := base.Clone()
		cfg.ClientCAs = pool
		cur.Store(&cached{pool: pool, cfg: cfg})
		return cfg, nil
	}
}
