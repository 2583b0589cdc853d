package main

// Notifications: the `notifications` section of agent.yaml. It
// is nested (a list of sinks), so it is not a row of runFlags: readAgentYAML
// hands this one key to readNotifications and stays strict about every
// other key. There is no flag for it: it names secrets' files and
// variables, and belongs in agent.yaml (never in the config repository).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/notify"
	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// notificationsKey is the agent.yaml key of the notifications section.
const notificationsKey = "notifications"

// yamlOnlyFields maps the runConfig fields that no flag sets to the
// agent.yaml section that fills them.
var yamlOnlyFields = map[string]string{"Notifications": notificationsKey}

// readNotifications decodes the notifications section strictly (an unknown
// key is an error) and validates it without reading any secret.
func readNotifications(file string, raw json.RawMessage, cfg *runConfig) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		cfg.Notifications = nil
		return nil
	}
	var nc notify.Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&nc); err != nil {
		return fmt.Errorf("%s: field %q: %w", file, notificationsKey, err)
	}
	if err := nc.Validate(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	cfg.Notifications = &nc
	return nil
}

// startNotifier builds the notifier of cfg.Notifications and starts its
// delivery goroutines; stop stops and waits for them. Without
// notifications it returns a nil syncer.Notifier and a no-op stop.
func startNotifier(cfg runConfig, reg prometheus.Registerer, logger zerolog.Logger) (syncer.Notifier, func(), error) {
	if cfg.Notifications == nil {
		return nil, func() {}, nil
	}
	n, err := notify.New(*cfg.Notifications, notify.Options{Logger: logger, Registerer: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("notifications: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			logger.Warn().Err(err).Msg("notifier stopped")
		}
	}()
	logger.Info().Int("sinks", len(cfg.Notifications.Sinks)).Msg("notifications on")
	return n, func() { _ = n.Close(); <-done }, nil
}
