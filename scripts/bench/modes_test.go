package main

import (
	"strings"
	"testing"
)

func samplesOf(rps ...float64) []sample {
	var s []sample
	for _, r := range rps {
		s = append(s, sample{wrk: wrkResult{RPS: r}})
	}
	return s
}

// TestPairedMedian: ratios are taken within each run, then their median;
// a host that is twice as fast in one run does not move it.
func TestPairedMedian(t *testing.T) {
	t.Parallel()
	rps := func(s sample) float64 { return s.wrk.RPS }
	cases := []struct {
		name string
		a, b []sample
		want float64
	}{
		{"same ratio in every run, host speed varying", samplesOf(10, 20, 40), samplesOf(20, 40, 80), 0.5},
		{"median of three ratios", samplesOf(10, 30, 10), samplesOf(10, 10, 40), 1},
		{"even count averages the middle two", samplesOf(1, 2, 3, 4), samplesOf(1, 1, 1, 1), 2.5},
		{"a missing run gives none", samplesOf(1, 2), samplesOf(1), 0},
		{"a failed measurement gives none", samplesOf(1, 0), samplesOf(1, 1), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := pairedMedian(c.a, c.b, rps); got != c.want {
				t.Fatalf("pairedMedian = %v, want %v", got, c.want)
			}
		})
	}
}

func TestPairedSummaryNamesThePairsThatRan(t *testing.T) {
	t.Parallel()
	samples := map[string][]sample{
		"gitgate":              samplesOf(20, 40),
		"nginx":                samplesOf(40, 80),
		"gitgate policy chain": samplesOf(10, 20),
	}
	got := pairedSummary(samples, func(s sample) float64 { return s.wrk.RPS })
	for _, want := range []string{"gitgate / nginx requests/s: 0.50", "gitgate policy chain cost per request: +100.0%"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Caddy") || strings.Contains(got, "10k") || strings.Contains(got, "CPU") {
		t.Errorf("summary names a pair that did not run:\n%s", got)
	}
}

func TestPairedSummaryComparesTheBaselineBuild(t *testing.T) {
	t.Parallel()
	samples := map[string][]sample{
		"gitgate":          samplesOf(22, 40, 18),
		"gitgate baseline": samplesOf(20, 40, 20),
		"nginx":            samplesOf(40, 80, 30),
	}
	got := pairedSummary(samples, func(s sample) float64 { return s.wrk.RPS })
	// Ratios within each run: 1.1, 1.0, 0.9 against the baseline; 0.5,
	// 0.5, 0.667 for the baseline against nginx.
	for _, want := range []string{"gitgate / gitgate baseline requests/s: 1.000", "gitgate baseline / nginx requests/s: 0.50"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}

func TestPairedSummaryComparesTheGoFloor(t *testing.T) {
	t.Parallel()
	withCPU := func(cpu ...float64) []sample {
		var s []sample
		for _, c := range cpu {
			s = append(s, sample{wrk: wrkResult{RPS: 1000}, cpuPerReqUS: c})
		}
		return s
	}
	samples := map[string][]sample{
		"gitgate":             withCPU(28, 30, 26),
		"go floor (fasthttp)": withCPU(14, 12, 13),
		"nginx":               withCPU(16, 15, 13),
	}
	got := pairedSummary(samples, func(s sample) float64 { return s.wrk.RPS })
	// Within each run: 2.0, 2.5, 2.0 against the floor; 0.875, 0.8, 1.0
	// for the floor against nginx.
	for _, want := range []string{"gitgate / go floor CPU per request: 2.00", "go floor / nginx CPU per request: 0.88"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}
