package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// target is one proxy under test (or the upstream itself).
type target interface {
	// Name is the row label.
	Name() string
	// Start launches the target pinned to cpus, proxying to upstream, and
	// returns the base URL to load.
	Start(ctx context.Context, dir, cpus, upstream string) (url string, err error)
	// Reload changes the config; valid=false sends a config the target must
	// refuse while it keeps serving.
	Reload(ctx context.Context, i int, valid bool) error
	// Proc is the started process group (nil for the direct upstream).
	Proc() *proc
	// Stop ends what Start started.
	Stop()
}

// direct measures the upstream without a proxy.
type direct struct{ up string }

func (d *direct) Name() string { return "upstream direct" }
func (d *direct) Start(_ context.Context, _, _, upstream string) (string, error) {
	d.up = upstream
	return "http://" + upstream, nil
}
func (d *direct) Reload(context.Context, int, bool) error { return nil }
func (d *direct) Proc() *proc                             { return nil }
func (d *direct) Stop()                                   {}

// nginx proxies with a keep-alive upstream pool, logs off, one worker;
// with cert and key it listens with TLS (nginx's default session settings).
type nginx struct {
	label, cert, key string
	cache            bool // proxy_cache (200 for 1m, with proxy_cache_lock) on location /

	p        *proc
	dir      string
	port     int
	upstream string
}

func (n *nginx) Name() string {
	if n.label != "" {
		return n.label
	}
	return "nginx"
}
func (n *nginx) Proc() *proc { return n.p }
func (n *nginx) Stop()       { n.p.stop() }

func (n *nginx) conf(i int, valid bool) string {
	broken := ""
	if !valid {
		broken = "this_directive_does_not_exist on;"
	}
	listen := strconv.Itoa(n.port)
	if n.cert != "" {
		listen += " ssl;\n    ssl_certificate " + n.cert + ";\n    ssl_certificate_key " + n.key
	}
	cache := ""
	if n.cache {
		cache = "proxy_cache c;\n      proxy_cache_valid 200 1m;\n      proxy_cache_lock on;\n      add_header X-Cache-Status $upstream_cache_status always;"
	}
	return fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  proxy_cache_path %[1]s/cache keys_zone=c:10m max_size=64m;
  upstream up { server %[2]s; keepalive 64; keepalive_requests 100000; }
  server {
    listen 127.0.0.1:%[3]s;
    keepalive_requests 1000000;
    %[5]s
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Bench "r%[4]d" always;
      %[6]s
    }
  }
}
`, n.dir, n.upstream, listen, i, broken, cache)
}

func (n *nginx) Start(ctx context.Context, dir, cpus, upstream string) (string, error) {
	n.dir, n.upstream = filepath.Join(dir, "nginx"), upstream
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return "", err
	}
	var err error
	if n.port, err = freePort(); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(n.conf(0, true)), 0o644); err != nil {
		return "", err
	}
	if n.cache {
		// Run as root, nginx's workers run as nobody: they must reach and
		// write the cache directory (the bench directory is 0700).
		for d, mode := range map[string]os.FileMode{dir: 0o711, n.dir: 0o711, filepath.Join(n.dir, "cache"): 0o777} {
			if err := os.MkdirAll(d, mode); err != nil {
				return "", err
			}
			if err := os.Chmod(d, mode); err != nil {
				return "", err
			}
		}
	}
	n.p, err = startProc(dir, "nginx", cpus, nil, "nginx", "-e", filepath.Join(n.dir, "error.log"), "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"))
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(n.port)
	return scheme(n.cert) + addr, n.p.waitListening(ctx, addr)
}

func (n *nginx) Reload(ctx context.Context, i int, valid bool) error {
	if err := os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(n.conf(i, valid)), 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "nginx", "-e", filepath.Join(n.dir, "error.log"), "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"), "-s", "reload").CombinedOutput()
	if err != nil && valid {
		return fmt.Errorf("nginx -s reload: %w: %s", err, out)
	}
	return nil
}

// haproxy proxies with connection reuse, one thread.
type haproxy struct{ p *proc }

func (h *haproxy) Name() string                            { return "haproxy" }
func (h *haproxy) Proc() *proc                             { return h.p }
func (h *haproxy) Stop()                                   { h.p.stop() }
func (h *haproxy) Reload(context.Context, int, bool) error { return nil }

func (h *haproxy) Start(ctx context.Context, dir, cpus, upstream string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:%d
  http-response set-header X-Bench r0
  default_backend be
backend be
  server s1 %s maxconn 1000
`, port, upstream)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return "", err
	}
	if h.p, err = startProc(dir, "haproxy", cpus, nil, "haproxy", "-db", "-f", path); err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return "http://" + addr, h.p.waitListening(ctx, addr)
}

// caddy proxies through its JSON config and reloads with POST /load.
type caddy struct {
	p               *proc
	port, adminPort int
	upstream        string
	client          *http.Client
}

func (c *caddy) Name() string { return "caddy" }
func (c *caddy) Proc() *proc  { return c.p }
func (c *caddy) Stop()        { c.p.stop() }

func (c *caddy) conf(i int, valid bool) string {
	handler := "reverse_proxy"
	if !valid {
		handler = "no_such_handler"
	}
	return fmt.Sprintf(`{"admin":{"listen":"127.0.0.1:%d"},
"apps":{"http":{"servers":{"bench":{"listen":["127.0.0.1:%d"],
"routes":[{"handle":[
 {"handler":"headers","response":{"set":{"X-Bench":["r%d"]}}},
 {"handler":"%s","upstreams":[{"dial":"%s"}],
  "transport":{"protocol":"http","keep_alive":{"max_idle_conns_per_host":128}}}]}]}}}}}`,
		c.adminPort, c.port, i, handler, c.upstream)
}

func (c *caddy) Start(ctx context.Context, dir, cpus, upstream string) (string, error) {
	var err error
	c.upstream = upstream
	c.client = &http.Client{Timeout: 10 * time.Second}
	if c.port, err = freePort(); err != nil {
		return "", err
	}
	if c.adminPort, err = freePort(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(path, []byte(c.conf(0, true)), 0o644); err != nil {
		return "", err
	}
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	if c.p, err = startProc(dir, "caddy", cpus, env, "caddy", "run", "--config", path); err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(c.port)
	return "http://" + addr, c.p.waitListening(ctx, addr)
}

func (c *caddy) Reload(ctx context.Context, i int, valid bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/load", c.adminPort), bytes.NewBufferString(c.conf(i, valid)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("caddy POST /load: %w", err)
	}
	resp.Body.Close()
	if valid && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("caddy POST /load: %s", resp.Status)
	}
	return nil
}
