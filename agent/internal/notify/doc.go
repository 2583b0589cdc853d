// Package notify tells people what the agent did: it turns the sync loop's
// events (syncer.Event) into deliveries to sinks, a generic JSON webhook
// whose body is signed with HMAC-SHA256 and Slack incoming webhooks.
//
// Notify only filters and queues, so a slow or dead receiver never slows a
// sync: each sink has a bounded queue (the oldest notification is dropped
// when it is full) and one worker goroutine that delivers with a timeout
// per attempt and retries transient failures with backoff, up to a bounded
// number of attempts. The Notifier owns the workers: Run starts them and
// waits for them; Close (or the end of Run's context) stops them.
//
// Secrets (the webhook's signing key, the Slack URL) are read from a file
// or an environment variable named in agent.yaml, never written in it, and
// never logged: errors that would carry a URL are reduced to their cause.
package notify
