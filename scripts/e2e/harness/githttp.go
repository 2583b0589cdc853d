package harness

import (
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// GitServer serves the repositories under a directory over smart HTTP with
// `git http-backend` (push enabled where a repository sets
// http.receivepack) and counts the requests it answers by kind.
type GitServer struct {
	// Addr is the loopback host:port it listens on.
	Addr string

	srv  *http.Server
	log  *os.File
	done chan struct{}

	mu     sync.Mutex
	counts map[string]int
}

// Request kinds GitServer counts.
const (
	// GitAdvertise is GET info/refs?service=git-upload-pack: the head check
	// (advertised refs) every fetch and every poll starts with. In protocol
	// v0/v1, which the agent (go-git) speaks, it is the whole head check; a
	// git CLI speaking v2 adds a POST git-upload-pack (ls-refs) to it.
	GitAdvertise = "advertise"
	// GitUploadPack is POST git-upload-pack: a fetch of objects.
	GitUploadPack = "upload-pack"
	// GitReceive is a push: GET info/refs?service=git-receive-pack or POST
	// git-receive-pack.
	GitReceive = "receive-pack"
	// GitOther is any other request (dumb HTTP, unknown paths).
	GitOther = "other"
)

// ServeGit starts a GitServer for the repositories under root on a free
// loopback port; git's own messages (a refused push, say) go to
// root/git-http-backend.log. It needs the git CLI (exec.ErrNotFound when
// missing).
func ServeGit(root string) (*GitServer, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("serving git over HTTP: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(root, "git-http-backend.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("serving git over HTTP: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("serving git over HTTP: %w", err)
	}
	backend := &cgi.Handler{
		Path: gitPath, Args: []string{"http-backend"},
		Env:    []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null"},
		Stderr: logf,
	}
	g := &GitServer{Addr: ln.Addr().String(), log: logf, done: make(chan struct{}), counts: map[string]int{}}
	g.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.counts[requestKind(r)]++
		g.mu.Unlock()
		backend.ServeHTTP(w, r)
	})}
	go func() {
		_ = g.srv.Serve(ln)
		close(g.done)
	}()
	return g, nil
}

// requestKind classifies one smart-HTTP request.
func requestKind(r *http.Request) string {
	switch {
	case strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack":
		return GitAdvertise
	case strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
		return GitUploadPack
	case strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-receive-pack",
		strings.HasSuffix(r.URL.Path, "/git-receive-pack"):
		return GitReceive
	}
	return GitOther
}

// URL is the address of the repository in directory name under the root.
func (g *GitServer) URL(name string) string { return "http://" + g.Addr + "/" + name }

// Counts returns the requests answered so far, by kind.
func (g *GitServer) Counts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.counts))
	for k, v := range g.counts {
		out[k] = v
	}
	return out
}

// Close stops the server and waits for it.
func (g *GitServer) Close() {
	_ = g.srv.Close()
	<-g.done
	g.log.Close()
}
