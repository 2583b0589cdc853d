//go:build !unix

package admin

import (
	"fmt"
	"io/fs"
	"net"
	"os"
)

// listenWithMode binds a Unix socket at path and sets its mode after bind:
// this platform has no umask.
func listenWithMode(path string, mode fs.FileMode) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("setting mode: %w", err)
	}
	return l, nil
}
