//go:build unix

package admin

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
)

// umaskMu serializes the umask changes of listenWithMode, so that two
// listens never restore each other's mask.
//
// The umask is a property of the process, not of a goroutine: while it is
// set, a file or directory created by any other goroutine gets it too. So
// the mask used here only clears group and other bits (those mode does not
// grant), never the owner's: a directory created meanwhile elsewhere keeps
// its owner's search bit and stays usable, and its group and other access
// can only shrink. The window is one bind(2).
var umaskMu sync.Mutex

// listenWithMode binds a Unix socket at path that nobody but its owner and
// the bits of mode can connect to from the moment it exists: bind(2) creates
// the file with 0777 minus the umask, and the umask is set for the call to
// clear every group and other bit mode does not grant. The chmod after it
// only removes owner bits that mode leaves out (the execute bit, meaningless
// on a socket), so access is never wider than mode at any moment.
func listenWithMode(path string, mode fs.FileMode) (net.Listener, error) {
	umaskMu.Lock()
	old := syscall.Umask(int(0o077 &^ mode.Perm()))
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("narrowing the mode: %w", err)
	}
	return l, nil
}
