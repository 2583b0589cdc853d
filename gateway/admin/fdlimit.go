package admin

// watcherShareOfFDs is the share of the process's file descriptors that
// watch requests may hold: each holds a connection, and the data plane, the
// upstream pools and the admin socket need the rest.
const watcherShareOfFDs = 4

// watcherCap returns the number of concurrent watchers allowed: at most a
// quarter of the soft RLIMIT_NOFILE, never more than configured, never less
// than one. A limit of 0 (unknown) or RLIM_INFINITY leaves configured as is.
func watcherCap(configured int, softLimit uint64) int {
	if softLimit == 0 || softLimit == ^uint64(0) {
		return configured
	}
	share := max(softLimit/watcherShareOfFDs, 1)
	if share < uint64(configured) {
		return int(share)
	}
	return configured
}
