package statelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// FileName is the lock file inside the state directory.
const FileName = "agent.lock"

// HeldError is returned by Acquire when another process (or another
// Acquire in this one) holds the lock.
type HeldError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's pid as it wrote it; 0 when not known yet.
	PID int
}

func (e *HeldError) Error() string {
	holder := "another agent"
	if e.PID > 0 {
		holder += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("state directory %s is in use by %s: run one agent per --state-dir", filepath.Dir(e.Path), holder)
}

// Lock is a held state directory lock. Release it when the agent stops; the
// kernel releases it if the process dies first.
type Lock struct {
	f    *os.File
	once sync.Once
	err  error
}

// Acquire takes the lock of dir (created with mode 0700 when missing)
// without waiting. It fails with a *HeldError when the lock is held.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening state lock %s: %w", path, err)
	}
	if err := flock(f); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &HeldError{Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// The pid is for the message of whoever is refused; failing to write
	// it does not weaken the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// flock takes an exclusive lock on f without blocking, retrying when a
// signal interrupts the call.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// readPID returns the pid written in the lock file, or 0.
func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Release drops the lock. It is safe to call more than once.
func (l *Lock) Release() error {
	l.once.Do(func() { l.err = l.f.Close() })
	return l.err
}
