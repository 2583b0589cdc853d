//go:build !linux

package budget

import (
	"os"
	"syscall"
)

// executable is the program to start as the child.
func executable() string {
	exe, _ := os.Executable()
	return exe
}

// sysProcAttr starts the child in a process group of its own.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the child's process group.
func killGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGKILL) }

// limitAddressSpace only has the Go memory limit (set by the caller) on
// systems other than Linux, where RLIMIT_AS is not enforced alike.
func limitAddressSpace(int64) error { return nil }
