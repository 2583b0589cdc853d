package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
)

// NewUpstream starts an in-process upstream that answers every request
// with 200 "ok". The caller closes it.
func NewUpstream() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}))
}

// ConfigYAML renders a whole config repository in one file: upstream "app"
// with target upstream, a catch-all route "main" whose responses carry
// X-Config: label, and one exact route per extra path, each with its own
// X-Config label.
func ConfigYAML(upstream, label string, extra map[string]string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "upstreams:\n  app:\n    targets: [%q]\nroutes:\n", upstream)
	route := func(name, path, pathType, label string) {
		fmt.Fprintf(&b, "  %s:\n    match:\n      path: %s\n      pathType: %s\n    backends:\n      - upstream: app\n        weight: 100\n", name, path, pathType)
		fmt.Fprintf(&b, "    responseHeaders:\n      set:\n        X-Config: %q\n", label)
	}
	route("main", "/", "prefix", label)
	paths := make([]string, 0, len(extra))
	for p := range extra {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for i, p := range paths {
		route("extra"+strconv.Itoa(i), p, "exact", extra[p])
	}
	return b.String()
}

// InvalidYAML is a config the agent must reject: a misspelt field
// ("wieght") that the closed CUE schema refuses.
func InvalidYAML(upstream string) string {
	return fmt.Sprintf("upstreams:\n  app:\n    targets: [%q]\nroutes:\n  main:\n    match:\n      path: /\n      pathType: prefix\n    backends:\n      - upstream: app\n        wieght: 100\n", upstream)
}

// HistoryReport is what CheckHistoryFile found in the agent's history file.
type HistoryReport struct {
	// Lines is the number of complete, intact lines.
	Lines int
	// Bad describes each torn or corrupt line (empty when the file is clean).
	Bad []string
}

// CheckHistoryFile reads the agent's append-only history file
// (<state-dir>/history.jsonl, one "<crc32 hex> <length> <json>\n" line per
// attempt) and reports every line that is torn (no newline), whose length
// or checksum does not match, or whose JSON does not decode.
func CheckHistoryFile(path string) (HistoryReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return HistoryReport{}, fmt.Errorf("reading the agent's history: %w", err)
	}
	return CheckHistory(data), nil
}

// CheckHistory checks the bytes of a history file (see CheckHistoryFile).
func CheckHistory(data []byte) HistoryReport {
	var rep HistoryReport
	lines := bytes.Split(data, []byte("\n"))
	// After the last newline there must be nothing: else the tail is torn.
	if tail := lines[len(lines)-1]; len(tail) > 0 {
		rep.Bad = append(rep.Bad, fmt.Sprintf("line %d: torn (%d bytes without a newline at the end of the file)", len(lines), len(tail)))
	}
	for i, l := range lines[:len(lines)-1] {
		if why := checkLine(l); why != "" {
			rep.Bad = append(rep.Bad, fmt.Sprintf("line %d: %s", i+1, why))
			continue
		}
		rep.Lines++
	}
	return rep
}

func checkLine(line []byte) string {
	sum, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(sum) != 8 {
		return "no checksum field"
	}
	lenField, js, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return "no length field"
	}
	n, err := strconv.Atoi(string(lenField))
	if err != nil || n != len(js) {
		return fmt.Sprintf("length %q does not match %d bytes", lenField, len(js))
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil || uint32(want) != crc32.ChecksumIEEE(js) {
		return "checksum mismatch"
	}
	var e map[string]any
	if err := json.Unmarshal(js, &e); err != nil {
		return "JSON: " + err.Error()
	}
	return ""
}
