package statelock

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// holderEnv makes the test binary a lock holder: it takes the lock of the
// directory named there, says "locked" and waits to be killed.
const holderEnv = "STATELOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		l, err := Acquire(dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Println("locked")
		defer l.Release()
		select {}
	}
	os.Exit(m.Run())
}

// TestSecondAcquireRefused is not parallel with the other tests: a child
// process forked by one of them holds a copy of every open descriptor until
// it execs, and so, for that moment, the flock of a lock just released here.
func TestSecondAcquireRefused(t *testing.T) {
	tests := []struct {
		name string
		// again re-acquires after the first lock was released this way.
		release func(*Lock) error
	}{
		{name: "released", release: (*Lock).Release},
		{name: "released twice", release: func(l *Lock) error {
			if err := l.Release(); err != nil {
				return err
			}
			return l.Release()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			first, err := Acquire(dir)
			if err != nil {
				t.Fatal(err)
			}
			// flock locks belong to an open file description, so a
			// second open in the same process conflicts like another
			// process would.
			_, err = Acquire(dir)
			var held *HeldError
			if !errors.As(err, &held) || held.PID != os.Getpid() || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
				t.Fatalf("second Acquire: %v, want a HeldError naming pid %d", err, os.Getpid())
			}
			if err := tc.release(first); err != nil {
				t.Fatal(err)
			}
			again, err := Acquire(dir)
			if err != nil {
				t.Fatalf("Acquire after release: %v", err)
			}
			again.Release()
		})
	}
}

// TestHeldByAnotherProcess takes the lock in a child process: the parent is
// refused with the child's pid, and once the child is killed with SIGKILL
// (no chance to clean up) the lock is free.
func TestHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	n, err := out.Read(buf)
	if err != nil || strings.TrimSpace(string(buf[:n])) != "locked" {
		t.Fatalf("holder said %q, %v", buf[:n], err)
	}

	_, err = Acquire(dir)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != cmd.Process.Pid {
		t.Fatalf("Acquire while a child holds the lock: %v, want a HeldError naming pid %d", err, cmd.Process.Pid)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	defer l.Release()
	// The lock file now names this process.
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, %v; want this pid", b, err)
	}
}
