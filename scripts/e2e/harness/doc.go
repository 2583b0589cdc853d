// Package harness runs the real gitgate binaries for the end-to-end fault
// battery (scripts/e2e) and the push-to-serve benchmark (scripts/bench
// -mode sync): it builds the gateway and the agent, starts them in process
// groups of their own, keeps a config repository made with the git CLI,
// signs GitHub webhook deliveries, and reads the agent's and the gateway's
// state through their sockets and their state directories.
//
// Everything a Stack starts, Stack.Close stops, by process group.
package harness
