package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run printed.
type wrkResult struct {
	Requests     int64
	RPS          float64
	P50, P99     time.Duration
	SocketErrors int64 // connect + read + write + timeout
	ReadErrors   int64
	Non2xx       int64
}

var (
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reLat      = regexp.MustCompile(`^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)`)
	reSock     = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// runWrk runs wrk pinned to cpus against url for d with conns connections.
func runWrk(ctx context.Context, cpus string, conns int, d time.Duration, url string, headers ...string) (wrkResult, string, error) {
	args := []string{"wrk", "-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return wrkResult{}, string(out), fmt.Errorf("running wrk: %w: %s", err, out)
	}
	r, err := parseWrk(string(out))
	return r, string(out), err
}

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	if m := reRequests.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	m := reRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := reLat.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
			d := time.Duration(v * float64(unit))
			if m[1] == "50" {
				r.P50 = d
			} else {
				r.P99 = d
			}
		}
	}
	if m := reSock.FindStringSubmatch(out); m != nil {
		for i := 1; i <= 4; i++ {
			n, _ := strconv.ParseInt(m[i], 10, 64)
			r.SocketErrors += n
		}
		r.ReadErrors, _ = strconv.ParseInt(m[2], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}
