package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultSocketMode is the mode of the admin socket: owner only.
const DefaultSocketMode fs.FileMode = 0o600

// ListenUnix listens on a Unix socket at path with the given mode (0: 0600).
// A missing parent directory is created with mode 0700. A file already at
// path is removed only when it is a socket nobody listens on; a live socket
// or any other kind of file is refused with an error.
func ListenUnix(path string, mode fs.FileMode) (net.Listener, error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating admin socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("setting mode of admin socket %s: %w", path, err)
	}
	return l, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking admin socket path %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket path %s exists and is not a socket (%s); refusing to remove it", path, fi.Mode().Type())
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("admin socket %s is in use by another process", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale admin socket %s: %w", path, err)
	}
	return nil
}
