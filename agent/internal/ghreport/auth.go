package ghreport

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-github/v60/github"
)

// TokenEnv is the environment variable that holds a GitHub token.
const TokenEnv = "GITGATE_GITHUB_TOKEN"

// maxTokenFile bounds a token or key file read from disk.
const maxTokenFile = 64 << 10

// LoadToken returns the GitHub token from file when file is not empty
// (surrounding whitespace trimmed), else from $GITGATE_GITHUB_TOKEN. It
// returns "" and no error when neither is set.
func LoadToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(TokenEnv)), nil
	}
	b, err := readSmallFile(file)
	if err != nil {
		return "", fmt.Errorf("reading GitHub token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("reading GitHub token file %s: the file is empty", file)
	}
	return tok, nil
}

func readSmallFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxTokenFile)
	}
	return b, nil
}

// ClientConfig says how to reach and authenticate to GitHub. Set Token, or
// AppID + InstallationID + PrivateKeyFile (a GitHub App installation, which
// check runs require).
type ClientConfig struct {
	// Token is a personal or installation access token.
	Token string
	// BaseURL is a GitHub Enterprise Server URL such as
	// "https://github.example.com/"; "/api/v3/" is added as needed.
	// Default: api.github.com.
	BaseURL string
	// AppID is the GitHub App's id.
	AppID int64
	// InstallationID is the App's installation on the config repository.
	InstallationID int64
	// PrivateKeyFile is the App's private key (PEM).
	PrivateKeyFile string
	// HTTPClient is the client to build on; its Transport is wrapped for an
	// App. Default: a client with a 30s timeout.
	HTTPClient *http.Client
}

// NewClient returns a go-github client for c.
func NewClient(c ClientConfig) (*github.Client, error) {
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	app := c.AppID != 0 || c.InstallationID != 0 || c.PrivateKeyFile != ""
	if app && c.Token != "" {
		return nil, errors.New("GitHub auth: give either a token or a GitHub App, not both")
	}
	var at *AppTransport
	if app {
		if c.AppID == 0 || c.InstallationID == 0 || c.PrivateKeyFile == "" {
			return nil, errors.New("GitHub App auth needs the app id, the installation id and the private key file")
		}
		pem, err := readSmallFile(c.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading GitHub App private key: %w", err)
		}
		key, err := jwt.ParseRSAPrivateKeyFromPEM(pem)
		if err != nil {
			return nil, fmt.Errorf("parsing GitHub App private key %s: %w", c.PrivateKeyFile, err)
		}
		at = &AppTransport{AppID: c.AppID, InstallationID: c.InstallationID, Key: key, Base: hc.Transport}
		hc2 := *hc
		hc2.Transport = at
		hc = &hc2
	}
	gc := github.NewClient(hc)
	if c.BaseURL != "" {
		var err error
		if gc, err = gc.WithEnterpriseURLs(c.BaseURL, c.BaseURL); err != nil {
			return nil, fmt.Errorf("GitHub Enterprise base URL %q: %w", c.BaseURL, err)
		}
	}
	if at != nil {
		at.BaseURL = gc.BaseURL.String()
	} else if c.Token != "" {
		gc = gc.WithAuthToken(c.Token)
	}
	return gc, nil
}

// AppTransport authenticates requests as a GitHub App installation: it
// mints an RS256 app JWT, exchanges it at
// POST {BaseURL}app/installations/{id}/access_tokens, and caches the
// installation token until shortly before it expires.
type AppTransport struct {
	// AppID is the App's id (the JWT's issuer).
	AppID int64
	// InstallationID is the installation whose token is asked for.
	InstallationID int64
	// Key signs the app JWT.
	Key *rsa.PrivateKey
	// BaseURL is the API root with a trailing slash. Default
	// "https://api.github.com/".
	BaseURL string
	// Base sends the requests. Default http.DefaultTransport.
	Base http.RoundTripper

	// now is the clock; tests may replace it.
	now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// refreshBefore is how long before expires_at a cached token is replaced.
const refreshBefore = 5 * time.Minute

// RoundTrip adds the installation token to a copy of req and sends it.
func (t *AppTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.Header.Set("Authorization", "token "+tok)
	return t.base().RoundTrip(r2)
}

func (t *AppTransport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *AppTransport) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// Token returns the cached installation token, or exchanges a new app JWT
// for one when there is none or it expires within five minutes.
func (t *AppTransport) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	if t.token != "" && now.Add(refreshBefore).Before(t.expires) {
		return t.token, nil
	}
	appJWT, err := t.appJWT(now)
	if err != nil {
		return "", err
	}
	base := t.BaseURL
	if base == "" {
		base = "https://api.github.com/"
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	u := base + "app/installations/" + strconv.FormatInt(t.InstallationID, 10) + "/access_tokens"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(nil))
	if err != nil {
		return "", fmt.Errorf("requesting GitHub App installation token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+appJWT)
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := t.base().RoundTrip(req)
	if err != nil {
		return "", fmt.Errorf("requesting GitHub App installation token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		return "", fmt.Errorf("requesting GitHub App installation token for installation %d: %s: %s", t.InstallationID, resp.Status, e.Message)
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("requesting GitHub App installation token: unexpected answer (%v)", err)
	}
	t.token, t.expires = out.Token, out.ExpiresAt
	return t.token, nil
}

// appJWT signs the short-lived JWT that identifies the App: issued a minute
// in the past against clock drift, valid for nine minutes (GitHub allows ten).
func (t *AppTransport) appJWT(now time.Time) (string, error) {
	if t.Key == nil {
		return "", errors.New("GitHub App auth: no private key")
	}
	claims := jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(t.AppID, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(t.Key)
	if err != nil {
		return "", fmt.Errorf("signing GitHub App JWT: %w", err)
	}
	return s, nil
}
