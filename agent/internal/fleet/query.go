package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Row is one replica as `agent fleet` saw it.
type Row struct {
	// Addr is the replica's webhook listener, host:port.
	Addr string `json:"addr"`
	// Replica is its answer; nil when unreachable.
	Replica *Replica `json:"replica,omitempty"`
	// Err is why it could not be read.
	Err string `json:"error,omitempty"`
	// Lag is how long it has been behind the fleet's desired commit.
	Lag time.Duration `json:"-"`
	// LagSeconds is Lag in seconds, for JSON.
	LagSeconds float64 `json:"lagSeconds"`
	// Problems say why this replica fails the check; empty when healthy.
	Problems []string `json:"problems,omitempty"`
}

// Query reads every replica's Replica at once, at most concurrency at a
// time, each within timeout. Rows come back in the order of addrs.
func Query(ctx context.Context, hc *http.Client, addrs []string, concurrency int, timeout time.Duration) []Row {
	rows := make([]Row, len(addrs))
	sem := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rows[i] = queryOne(ctx, hc, addr, timeout)
		}()
	}
	wg.Wait()
	return rows
}

func queryOne(ctx context.Context, hc *http.Client, addr string, timeout time.Duration) Row {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	row := Row{Addr: addr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+ReplicaPath, nil)
	if err != nil {
		row.Err = err.Error()
		return row
	}
	resp, err := hc.Do(req)
	if err != nil {
		row.Err = fmt.Sprintf("unreachable: %v", err)
		return row
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		row.Err = fmt.Sprintf("reading the answer: %v", err)
		return row
	}
	if resp.StatusCode != http.StatusOK {
		row.Err = fmt.Sprintf("answered %s", resp.Status)
		return row
	}
	var r Replica
	if err := json.Unmarshal(body, &r); err != nil {
		row.Err = fmt.Sprintf("answer does not parse: %v", err)
		return row
	}
	row.Replica = &r
	return row
}
