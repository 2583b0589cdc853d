package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// APIVersion is the bundle format this build reads and writes.
const APIVersion = "gitgate.dev/v1"

// Bundle is the unit the agent hands to the gateway: one validated,
// normalized Config with where it came from.
type Bundle struct {
	// APIVersion must equal APIVersion.
	APIVersion string `json:"apiVersion"`
	// Version identifies the bundle; the agent uses the commit SHA.
	Version string `json:"version"`
	// Source says where the config came from.
	Source Source `json:"source"`
	// CreatedAt is when the bundle was built.
	CreatedAt time.Time `json:"createdAt"`
	// Digest is "sha256:<hex>" of the canonical JSON of Config.
	Digest string `json:"digest"`
	// Config is normalized with defaults applied.
	Config Config `json:"config"`
}

// Source describes the commit a bundle was built from.
type Source struct {
	Repo    string    `json:"repo,omitempty"`
	Ref     string    `json:"ref,omitempty"`
	Path    string    `json:"path,omitempty"`
	Commit  string    `json:"commit,omitempty"`
	Author  string    `json:"author,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	Subject string    `json:"subject,omitempty"`
}

// Digest returns "sha256:<hex>" of the canonical JSON of cfg. encoding/json
// sorts map keys and the types have a fixed field order, so equal configs
// give equal digests.
func Digest(cfg *Config) (string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding config for digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// NewBundle builds a bundle of cfg with its digest computed.
func NewBundle(version string, src Source, cfg Config, now time.Time) (*Bundle, error) {
	d, err := Digest(&cfg)
	if err != nil {
		return nil, err
	}
	return &Bundle{APIVersion: APIVersion, Version: version, Source: src, CreatedAt: now.UTC(), Digest: d, Config: cfg}, nil
}

// Errors returned by Verify.
var (
	ErrAPIVersion = errors.New("unsupported bundle apiVersion")
	ErrDigest     = errors.New("bundle digest does not match its config")
	ErrNoVersion  = errors.New("bundle has no version")
)

// Verify checks the apiVersion, the version and the digest of b.
func (b *Bundle) Verify() error {
	if b.APIVersion != APIVersion {
		return fmt.Errorf("%w: got %q, want %q", ErrAPIVersion, b.APIVersion, APIVersion)
	}
	if b.Version == "" {
		return ErrNoVersion
	}
	d, err := Digest(&b.Config)
	if err != nil {
		return err
	}
	if d != b.Digest {
		return fmt.Errorf("%w: computed %s, bundle says %s", ErrDigest, d, b.Digest)
	}
	return nil
}

// DecodeBundle parses a bundle strictly: unknown fields and data after the
// JSON object are errors. It does not verify the digest; call Verify.
func DecodeBundle(data []byte) (*Bundle, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("decoding bundle: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decoding bundle: data after the JSON object")
	}
	return &b, nil
}
