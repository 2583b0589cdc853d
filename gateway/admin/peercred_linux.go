package admin

import (
	"net"
	"syscall"
)

// readPeerCred reads SO_PEERCRED of c.
func readPeerCred(c *net.UnixConn) (peerCred, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peerCred{}, false
	}
	var (
		cred *syscall.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || gerr != nil {
		return peerCred{}, false
	}
	return peerCred{UID: int(cred.Uid), PID: int(cred.Pid)}, true
}
