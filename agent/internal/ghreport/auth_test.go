package ghreport

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-github/v60/github"
)

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		env     string
		file    string
		want    string
		wantErr string
	}{
		{name: "env", env: "ghp_env\n", want: "ghp_env"},
		{name: "file wins over env", env: "ghp_env", file: write("tok", "  ghp_file\n"), want: "ghp_file"},
		{name: "neither", want: ""},
		{name: "empty file", file: write("empty", "\n"), wantErr: "the file is empty"},
		{name: "missing file", file: filepath.Join(dir, "nope"), wantErr: "reading GitHub token file"},
		{name: "oversized file", file: write("big", strings.Repeat("x", maxTokenFile+1)), wantErr: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(TokenEnv, tc.env) // not parallel: the environment is shared
			got, err := LoadToken(tc.file)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("LoadToken = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// appServer is a GitHub that mints installation tokens for a valid app JWT
// and records the Authorization of every other request.
type appServer struct {
	srv       *httptest.Server
	pub       *rsa.PublicKey
	mu        sync.Mutex
	exchanges int
	auths     []string
	paths     []string
	expiresIn time.Duration
}

func newAppServer(t *testing.T, pub *rsa.PublicKey, prefix string) *appServer {
	s := &appServer{pub: pub, expiresIn: time.Hour}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.paths = append(s.paths, r.Method+" "+r.URL.Path)
		if r.URL.Path == prefix+"/app/installations/99/access_tokens" {
			raw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			claims := &jwt.RegisteredClaims{}
			_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return s.pub, nil },
				jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("12345"))
			if err != nil || r.Method != http.MethodPost {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "A JSON web token could not be decoded"})
				return
			}
			s.exchanges++
			writeJSON(w, http.StatusCreated, map[string]any{
				"token":       "ghs_installation" + strings.Repeat("x", s.exchanges),
				"expires_at":  time.Now().Add(s.expiresIn).UTC().Format(time.RFC3339),
				"permissions": map[string]any{"checks": "write", "statuses": "write", "pull_requests": "write"},
			})
			return
		}
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		writeJSON(w, http.StatusCreated, map[string]any{"id": 1, "state": "success", "context": "gitgate/deploy"})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func writeKey(t *testing.T) (string, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "app.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, key
}

func TestGitHubAppClient(t *testing.T) {
	t.Parallel()
	keyFile, key := writeKey(t)
	s := newAppServer(t, &key.PublicKey, "/api/v3")

	// A GitHub Enterprise URL: the client and the token exchange both use /api/v3/.
	c, err := NewClient(ClientConfig{BaseURL: s.srv.URL, AppID: 12345, InstallationID: 99, PrivateKeyFile: keyFile, HTTPClient: s.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL.String(); got != s.srv.URL+"/api/v3/" {
		t.Fatalf("BaseURL = %s", got)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, _, err := c.Repositories.CreateStatus(ctx, owner, repo, shaA, &github.RepoStatus{State: github.String("success")}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exchanges != 1 {
		t.Errorf("token exchanges = %d, want 1 (cached)", s.exchanges)
	}
	for _, a := range s.auths {
		if a != "token ghs_installationx" {
			t.Errorf("Authorization = %q, want the installation token", a)
		}
	}
}

func TestAppTransportRefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	_, key := writeKey(t)
	s := newAppServer(t, &key.PublicKey, "")
	s.expiresIn = time.Hour
	now := time.Now()
	at := &AppTransport{AppID: 12345, InstallationID: 99, Key: key, BaseURL: s.srv.URL + "/", Base: s.srv.Client().Transport}
	at.now = func() time.Time { return now }
	ctx := context.Background()
	steps := []struct {
		name    string
		advance time.Duration
		want    string
	}{
		{"first use exchanges", 0, "ghs_installationx"},
		{"cached while fresh", 30 * time.Minute, "ghs_installationx"},
		{"refreshed within five minutes of expiry", 26 * time.Minute, "ghs_installationxx"},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		got, err := at.Token(ctx)
		if err != nil || got != st.want {
			t.Fatalf("%s: Token = %q, %v; want %q", st.name, got, err, st.want)
		}
	}

	bad := &AppTransport{AppID: 1, InstallationID: 99, Key: key, BaseURL: s.srv.URL + "/", Base: s.srv.Client().Transport}
	if _, err := bad.Token(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong app id: error = %v, want the 401 reported", err)
	}
}

func TestNewClientConfigs(t *testing.T) {
	t.Parallel()
	keyFile, _ := writeKey(t)
	var gotAuth string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotAuth = r.Header.Get("Authorization")
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 1})
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		cfg     ClientConfig
		wantErr string
	}{
		{name: "token and app", cfg: ClientConfig{Token: "t", AppID: 1, InstallationID: 2, PrivateKeyFile: keyFile}, wantErr: "not both"},
		{name: "app without key", cfg: ClientConfig{AppID: 1, InstallationID: 2}, wantErr: "private key file"},
		{name: "key not PEM", cfg: ClientConfig{AppID: 1, InstallationID: 2, PrivateKeyFile: os.DevNull}, wantErr: "parsing GitHub App private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewClient(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}

	c, err := NewClient(ClientConfig{Token: "ghp_secret", BaseURL: srv.URL + "/api/v3/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Repositories.CreateStatus(context.Background(), owner, repo, shaA, &github.RepoStatus{State: github.String("success")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotAuth != "Bearer ghp_secret" {
		t.Errorf("Authorization = %q, want the token", gotAuth)
	}
}
