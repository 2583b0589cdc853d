//go:build unix

package admin

import "syscall"

// fdSoftLimit returns the process's soft RLIMIT_NOFILE, 0 when unknown. Go
// raises the soft limit to the hard one at start, so this is what the
// process can really open.
func fdSoftLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur)
}
