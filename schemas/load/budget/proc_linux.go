package budget

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// executable is the program to start as the child: /proc/self/exe is this
// very binary even when the file it was started from has been replaced or
// removed since (an upgrade in place).
func executable() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe"
	}
	exe, _ := os.Executable()
	return exe
}

// sysProcAttr starts the child in a process group of its own, to be killed
// whole, and has the kernel kill it if the parent dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the child's process group.
func killGroup(p *os.Process) error {
	return syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// threadSlack is address space left for the thread stacks (8 MiB each) the
// runtime may still create.
const threadSlack = 64 << 20

// limitAddressSpace sets RLIMIT_AS to what the process maps now plus mem:
// the Go runtime reserves several hundred MiB of address space at start,
// more under the race detector, so a fixed value would be either too tight
// to start or too loose to bound anything.
func limitAddressSpace(mem int64) error {
	size, err := mappedBytes()
	if err != nil {
		return fmt.Errorf("limiting memory: %w", err)
	}
	lim := uint64(size) + uint64(mem) + threadSlack
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		return fmt.Errorf("limiting memory: setting RLIMIT_AS to %d bytes: %w", lim, err)
	}
	return nil
}

// mappedBytes returns the process's virtual memory size (VmSize).
func mappedBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/self/status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "VmSize:" && string(f[2]) == "kB" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("reading VmSize: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}
