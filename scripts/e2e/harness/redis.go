package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// RedisBinary is where Debian's redis-server package installs the server.
const RedisBinary = "/usr/bin/redis-server"

// RequireRedisEnv makes tests that need redis-server fail instead of
// skipping when it is missing; the e2e battery sets it after installing
// the package.
const RequireRedisEnv = "GITGATE_REQUIRE_REDIS"

// ErrNoRedis is returned by StartRedis when redis-server is not installed.
var ErrNoRedis = errors.New("redis-server is not installed (Debian: apt-get install redis-server)")

// Redis is a real redis-server on a loopback port, without persistence,
// run in the foreground by this process. Restart stops it and starts a new
// one on the same port with an empty data set.
type Redis struct {
	// Addr is 127.0.0.1:<port>.
	Addr string
	// Log is the server's log file.
	Log  string
	bin  string
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts redis-server on a free loopback port with its files in
// dir and the extra arguments args (such as "--requirepass", "pw"), waits
// until it accepts connections, and returns ErrNoRedis when the binary is
// missing. Stop it with Stop.
func StartRedis(dir string, args ...string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat(RedisBinary); serr != nil {
			return nil, ErrNoRedis
		}
		bin = RedisBinary
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: addr, Log: filepath.Join(dir, "redis.log"), bin: bin, dir: dir, args: args}
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	logf, err := os.OpenFile(r.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the redis log: %w", err)
	}
	r.cmd = exec.Command(r.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--protected-mode", "yes")
	r.cmd.Args = append(r.cmd.Args, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	r.done = done
	cmd := r.cmd
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if Ping(r.Addr) == nil {
			return nil
		}
		select {
		case <-done:
			b, _ := os.ReadFile(r.Log)
			return fmt.Errorf("redis-server exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			r.Stop()
			b, _ := os.ReadFile(r.Log)
			return fmt.Errorf("redis-server did not answer on %s within 10s:\n%s", r.Addr, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ping sends PING to the Redis server at addr and reports an error unless
// it answers PONG (or asks for authentication).
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	// -NOAUTH: a server with requirepass is up as well.
	if l := strings.TrimSpace(line); l != "+PONG" && !strings.HasPrefix(l, "-NOAUTH") {
		return fmt.Errorf("redis at %s answered %q to PING", addr, strings.TrimSpace(line))
	}
	return nil
}

// Stop kills the server (by its pid) and waits for it.
func (r *Redis) Stop() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// Restart stops the server and starts a new one on the same port, its data
// gone, as after a crash of a Redis without persistence.
func (r *Redis) Restart() error {
	r.Stop()
	return r.start()
}
