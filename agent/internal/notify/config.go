package notify

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Event names a user may list in a sink's events.
const (
	Applied       = "applied"
	Rejected      = "rejected"
	Rollback      = "rollback"
	AutoRollback  = "auto-rollback"
	PinLifted     = "pin-lifted"
	DriftHealed   = "drift-healed"
	SyncFailing   = "sync-failing"
	SyncRecovered = "sync-recovered"
)

// EventNames lists every event name a sink may filter on, in README order.
var EventNames = []string{Applied, Rejected, Rollback, AutoRollback, PinLifted, DriftHealed, SyncFailing, SyncRecovered}

// Sink types.
const (
	// TypeWebhook posts the event as JSON, signed with HMAC-SHA256.
	TypeWebhook = "webhook"
	// TypeSlack posts to a Slack incoming webhook.
	TypeSlack = "slack"
)

// Config is the `notifications` section of agent.yaml. It is plain data;
// New resolves it (reads secrets) into a Notifier.
type Config struct {
	// SyncFailingAfter is how long syncs must fail in a row before a
	// sync-failing notification is sent (once per streak; sync-recovered
	// follows the streak's end). It is checked at each failed pass, so the
	// notice comes at most one poll interval late. Default "10m".
	SyncFailingAfter string `json:"syncFailingAfter,omitempty"`
	// QueueSize is how many notifications wait per sink; when full, the
	// oldest is dropped (counted as result "dropped"). Default 100.
	QueueSize int `json:"queueSize,omitempty"`
	// MaxAttempts bounds the deliveries of one notification (the first
	// and its retries). Default 5.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Timeout bounds one delivery attempt. Default "10s".
	Timeout string `json:"timeout,omitempty"`
	// Sinks are where notifications go. Required (at least one).
	Sinks []SinkConfig `json:"sinks"`
}

// SinkConfig is one receiver.
type SinkConfig struct {
	// Name labels the sink in logs and metrics. Required, unique.
	Name string `json:"name"`
	// Type is "webhook" or "slack". Required.
	Type string `json:"type"`
	// URL of a webhook sink (not secret: the body is signed). A Slack URL
	// is a secret: give it with URLFile or URLEnv instead.
	URL string `json:"url,omitempty"`
	// URLFile is a file holding the URL (a Slack incoming webhook URL).
	URLFile string `json:"urlFile,omitempty"`
	// URLEnv names an environment variable holding the URL.
	URLEnv string `json:"urlEnv,omitempty"`
	// SecretFile is a file holding a webhook sink's HMAC key. A webhook
	// sink needs SecretFile or SecretEnv.
	SecretFile string `json:"secretFile,omitempty"`
	// SecretEnv names an environment variable holding the HMAC key.
	SecretEnv string `json:"secretEnv,omitempty"`
	// Events are the event names sent to this sink (EventNames). Empty:
	// all of them.
	Events []string `json:"events,omitempty"`
}

// ConfigError is a mistake in the notifications section; Field is its
// path ("notifications.sinks[0].events[1]").
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

// Defaults.
const (
	DefaultSyncFailingAfter = 10 * time.Minute
	DefaultQueueSize        = 100
	DefaultMaxAttempts      = 5
	DefaultTimeout          = 10 * time.Second
)

// settings are Config's durations and counts with defaults applied.
type settings struct {
	failingAfter time.Duration
	queueSize    int
	maxAttempts  int
	timeout      time.Duration
}

// Validate checks c without reading any secret; the first mistake is
// returned as a *ConfigError.
func (c Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c Config) settings() (settings, error) {
	s := settings{failingAfter: DefaultSyncFailingAfter, queueSize: DefaultQueueSize, maxAttempts: DefaultMaxAttempts, timeout: DefaultTimeout}
	const root = "notifications"
	var err error
	if c.SyncFailingAfter != "" {
		if s.failingAfter, err = time.ParseDuration(c.SyncFailingAfter); err != nil || s.failingAfter < 0 {
			return s, &ConfigError{root + ".syncFailingAfter", fmt.Sprintf("%q is not a duration of 0s or more", c.SyncFailingAfter)}
		}
	}
	if c.Timeout != "" {
		if s.timeout, err = time.ParseDuration(c.Timeout); err != nil || s.timeout < 100*time.Millisecond || s.timeout > 5*time.Minute {
			return s, &ConfigError{root + ".timeout", fmt.Sprintf("%q is not a duration between 100ms and 5m", c.Timeout)}
		}
	}
	switch {
	case c.QueueSize < 0 || c.QueueSize > 100000:
		return s, &ConfigError{root + ".queueSize", fmt.Sprintf("%d is not between 1 and 100000", c.QueueSize)}
	case c.QueueSize > 0:
		s.queueSize = c.QueueSize
	}
	switch {
	case c.MaxAttempts < 0 || c.MaxAttempts > 20:
		return s, &ConfigError{root + ".maxAttempts", fmt.Sprintf("%d is not between 1 and 20", c.MaxAttempts)}
	case c.MaxAttempts > 0:
		s.maxAttempts = c.MaxAttempts
	}
	if len(c.Sinks) == 0 {
		return s, &ConfigError{root + ".sinks", "name at least one sink (or leave notifications out)"}
	}
	names := map[string]bool{}
	for i, sk := range c.Sinks {
		if err := sk.validate(fmt.Sprintf("%s.sinks[%d]", root, i), names); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (sk SinkConfig) validate(path string, names map[string]bool) error {
	switch {
	case sk.Name == "":
		return &ConfigError{path + ".name", "required"}
	case names[sk.Name]:
		return &ConfigError{path + ".name", fmt.Sprintf("%q names another sink too", sk.Name)}
	}
	names[sk.Name] = true
	refs := 0
	for _, v := range []string{sk.URL, sk.URLFile, sk.URLEnv} {
		if v != "" {
			refs++
		}
	}
	switch sk.Type {
	case TypeWebhook:
		if refs != 1 {
			return &ConfigError{path + ".url", "give exactly one of url, urlFile and urlEnv"}
		}
		if (sk.SecretFile == "") == (sk.SecretEnv == "") {
			return &ConfigError{path + ".secretFile", "a webhook sink signs its bodies: give exactly one of secretFile and secretEnv"}
		}
		if sk.URL != "" {
			if err := checkURL(sk.URL, false); err != nil {
				return &ConfigError{path + ".url", err.Error()}
			}
		}
	case TypeSlack:
		if sk.URL != "" {
			return &ConfigError{path + ".url", "a Slack webhook URL is a secret: give it with urlFile or urlEnv"}
		}
		if refs != 1 {
			return &ConfigError{path + ".urlFile", "give exactly one of urlFile and urlEnv"}
		}
		if sk.SecretFile != "" || sk.SecretEnv != "" {
			return &ConfigError{path + ".secretFile", "a Slack sink has no signing secret (its URL is the secret)"}
		}
	default:
		return &ConfigError{path + ".type", fmt.Sprintf("%q is not webhook or slack", sk.Type)}
	}
	for j, ev := range sk.Events {
		if !slices.Contains(EventNames, ev) {
			return &ConfigError{fmt.Sprintf("%s.events[%d]", path, j), fmt.Sprintf("%q is not one of %s", ev, strings.Join(EventNames, ", "))}
		}
	}
	return nil
}

// checkURL accepts https URLs, and http URLs when plain is allowed or the
// host is a loopback address. Its errors never quote the URL (it may be a
// secret).
func checkURL(raw string, plain bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Host == "" {
		return fmt.Errorf("the URL has no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if plain || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("the URL must be https (it carries a secret)")
	default:
		return fmt.Errorf("the URL must be https")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readRef returns the trimmed content of file, or the value of $env.
// Errors name the file or variable, never the value.
func readRef(file, env, what string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the %s: %w", what, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("the %s file %s is empty", what, file)
		}
		return v, nil
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		return "", fmt.Errorf("the %s variable $%s is empty or unset", what, env)
	}
	return v, nil
}
