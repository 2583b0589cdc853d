// Package statusmetrics exports what the sync loop wants its gateway to
// serve as Prometheus gauges, read from the loop's status at scrape time:
//
//	gitgate_agent_desired_info{version,mode}  1 for the version this replica
//	                                           should serve; mode is
//	                                           "tracking" or "pinned"
//	gitgate_agent_pin_timestamp_seconds        Unix time the pin was set, 0
//	                                           while tracking
//	gitgate_agent_head_rejected                1 while the branch head is a
//	                                           rejected commit
//
// Compared with the gateway's gitgate_config_info of the same pod, the first
// one shows a replica off its desired version (drift, a hand edit, a stuck
// apply); examples/monitoring alerts on it. Nothing here touches Git or the
// gateway: a scrape costs one status read.
package statusmetrics
