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
// The socket is created with that mode (under a umask), never chmod-ed
// after bind, so there is no moment when another local user could connect.
// A missing parent directory is created with mode 0700. A file already at
// path is removed only when it is a socket nobody listens on; a live socket
// or any other kind of file is refused with an error.
func ListenUnix(path string, mode fs.FileMode) (net.Listener, error) {
	return listenUnix(path, mode, nil)
}

// listenUnix is ListenUnix; afterBind, when set, is called with the path
// as soon as the socket exists, so that tests can see its first mode.
func listenUnix(path string, mode fs.FileMode, afterBind func(string)) (net.Listener, error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating admin socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := listenWithMode(path, mode)
	if err != nil {
		return nil, fmt.Errorf("listening on admin socket %s: %w", path, err)
	}
	if afterBind != nil {
		afterBind(path)
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
