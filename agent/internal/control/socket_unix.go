//go:build unix

package control

import (
	"net"
	"sync"
	"syscall"
)

// umaskMu serializes listenOwnerOnly's umask changes so that two listens
// never restore each other's mask.
var umaskMu sync.Mutex

// listenOwnerOnly binds the control socket under a umask of 077, so the
// file is created without any group or other bit instead of existing with
// the process umask's mode until a chmod narrows it. The umask belongs to
// the process: a directory another goroutine creates during the bind gets
// the same mask, which only takes group and other access away. afterBind,
// when not nil, sees the socket right after bind (for tests).
func listenOwnerOnly(path string, afterBind func(string)) (net.Listener, error) {
	umaskMu.Lock()
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err == nil && afterBind != nil {
		afterBind(path)
	}
	return ln, err
}
