package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// commands returns the help, argument checks and flags of every agent
// subcommand, by name.
func commands() map[string]command {
	return map[string]command{
		"validate": {
			use:   "validate [<dir>] [flags]",
			short: "Validate a config directory (exit 1 when invalid)",
			long: validateLong + `

Arguments:
  <dir>  the repository root the config is in (default: the current directory);
         --path selects the config directory inside it`,
			example: `  # Check the config in ./config, as CI would
  agent validate --path config

  # Annotate a GitHub pull request with the problems
  agent validate . --path config --format github`,
			args:   maxArgs(1, "directory"),
			define: defineValidate,
		},
		"schema": {
			use:     "schema [flags]",
			short:   "Print the config schema (JSON Schema or CUE)",
			long:    schemaLong,
			example: "  agent schema > gitgate.schema.json\n  agent schema --format cue",
			define:  defineSchema,
		},
		"bundle": {
			use:   "bundle [<dir>] [flags]",
			short: "Print the bundle the agent would hand to the gateway",
			long: bundleLong + `

Arguments:
  <dir>  the repository root the config is in (default: the current directory)`,
			example: "  agent bundle --path config > bundle.json",
			args:    maxArgs(1, "directory"),
			define:  defineBundle,
		},
		"diff": {
			use:   "diff <old-dir> <new-dir> | --repo <dir> <old-rev> <new-rev> | --base <rev> [<new-dir>] [flags]",
			short: "Print the route-level plan between two configs",
			long: diffLong + `

Arguments:
  <old-dir> <new-dir>   two config directories
  <old-rev> <new-rev>   with --repo: two revisions (HEAD~1, a branch, a tag, a SHA prefix)
  <new-dir>             with --base: the working-tree config (default: --path in the repository)`,
			example: `  # What the last commit changed
  agent diff --repo . --path config HEAD~1 HEAD

  # A pull request's plan, as a Markdown comment; exit 2 when it changes anything
  agent diff --base origin/main --path config --format markdown --exit-code`,
			args:      cobra.ArbitraryArgs,
			usageExit: diffExitError,
			define:    defineDiff,
		},
		"run": {
			use:   "run [flags]",
			short: "Run the sync agent",
			long: `Runs the sync agent: it watches the branch (polling, and webhooks with
--webhook-addr), validates each new commit and hands its bundle to the
gateway over --gateway-socket, heals a gateway that drifted, and answers the
other commands on its control socket. Every flag is also an agent.yaml key
(--config); flags given on the command line win over the file.`,
			example: `  agent run --repo https://github.com/acme/gateway-config.git --path config \
    --gateway-socket /run/gitgate/admin.sock --state-dir /var/lib/gitgate

  # The same settings from a file
  agent run --config /etc/gitgate/agent.yaml`,
			define: defineRun,
		},
		"status": {
			use:   "status [flags]",
			short: "Show what the running agent tracks and serves",
			long: `Shows what the running agent tracks and serves: pin, branch head, last
applied and attempted commits, the gateway's version and drift, the bake in
progress. It asks the agent on its control socket (--control-socket,
--state-dir or $GITGATE_CONTROL_SOCKET).`,
			example: "  agent status --state-dir /var/lib/gitgate\n  agent status --state-dir /var/lib/gitgate -o yaml",
			define:  defineStatus,
		},
		"history": {
			use:     "history [flags]",
			short:   "List the running agent's sync attempts",
			long:    "Lists the running agent's sync attempts, newest first, with each rejected commit's problems.",
			example: "  agent history --state-dir /var/lib/gitgate -n 5\n  agent history --state-dir /var/lib/gitgate -o json",
			define:  defineHistory,
		},
		"sync": {
			use:   "sync [flags]",
			short: "Ask the running agent to sync now",
			long: `Asks the running agent to check the branch and sync now, and prints its
status afterwards. Exit 1 when the branch tip is not served (rejected or
failed).`,
			example: "  agent sync --state-dir /var/lib/gitgate",
			define:  defineSync,
		},
		"rollback": {
			use:   "rollback [<sha>] [flags]",
			short: "Apply an earlier commit and pin every replica to it",
			long: `Applies an earlier commit and pins to it: the commit the agent serves now is
marked bad. The pin lifts when a new good commit reaches the branch, or with
--hold only by 'agent resume'. When the agent can push the pin tags, the pin
is in the repository and every replica follows it.

With --repo, the pin is written straight to the config repository with your
own Git credentials, no agent involved (for when no agent is reachable).

Arguments:
  <sha>  the commit (a unique prefix) to go back to; default: the last good
         commit before the one served now (required with --repo)`,
			example: `  # Go back to the previous good commit, until a new good commit arrives
  agent rollback --state-dir /var/lib/gitgate

  # Go back to a given commit and hold there until 'agent resume'
  agent rollback 3f2a9c1 --hold --reason "checkout errors" --state-dir /var/lib/gitgate

  # Pin the fleet from your laptop, with your own Git credentials
  agent rollback --repo git@github.com:acme/gateway-config.git 3f2a9c1`,
			args:     maxArgs(1, "<sha>"),
			define:   defineRollback,
			complete: completeHistorySHAs,
		},
		"resume": {
			use:   "resume [flags]",
			short: "Lift the pin and track the branch again",
			long: `Lifts the pin set by 'agent rollback': the agent tracks the branch again.
With --repo, the fleet's pin is deleted straight from the config repository.`,
			example: "  agent resume --state-dir /var/lib/gitgate\n  agent resume --repo git@github.com:acme/gateway-config.git",
			define:  defineResume,
		},
		"fleet": {
			use:   "fleet [flags]",
			short: "Show every replica's versions, pin and lag (exit 1 on drift)",
			long: `Asks every replica (--peers, $GITGATE_PEERS or the peers of --config) for
its state over GET /v1/replica and judges the fleet: exit 1 when a replica
is unreachable, serves another config, or lags behind the desired commit for
longer than --max-lag.`,
			example: "  agent fleet --peers dns:gitgate-agents.shop.svc:9090\n  agent fleet --config /etc/gitgate/agent.yaml -o json",
			define:  defineFleet,
		},
		"version": {
			use:     "version [flags]",
			short:   "Print the version, commit and Go version",
			long:    "Prints the module version (a tag when installed with go install, a pseudo-version such as v0.0.0-20261206044834-63b749fa3088 when built in a Git checkout, \"(devel)\" when built without VCS information, or the -X main.version value), the commit it was built from (\", modified\" with uncommitted changes) and the Go version.",
			example: "  agent version\n  agent version -o json",
			define:  defineVersion,
		},
	}
}

// completeHistorySHAs offers the commits of the running agent's history for
// `agent rollback <TAB>`, newest first, each with its result and subject. It
// offers nothing, quietly, when no agent answers.
func completeHistorySHAs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var cf controlFlags
	cf.socket, _ = cmd.Flags().GetString("control-socket")
	cf.stateDir, _ = cmd.Flags().GetString("state-dir")
	c, err := cf.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	entries, err := c.History(ctx, 0)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	seen := map[string]bool{}
	for _, e := range entries {
		if e.SHA == "" || seen[e.SHA] || !strings.HasPrefix(e.SHA, toComplete) {
			continue
		}
		seen[e.SHA] = true
		sha := short(e.SHA)
		if len(toComplete) >= len(sha) {
			sha = e.SHA
		}
		out = append(out, cobra.CompletionWithDesc(sha, string(e.Result)+": "+e.Subject))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}
