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

// cpuSamplesOf is samplesOf for CPU per request, at one request rate.
func cpuSamplesOf(cpu ...float64) []sample {
	var s []sample
	for _, c := range cpu {
		s = append(s, sample{wrk: wrkResult{RPS: 1000}, cpuPerReqUS: c})
	}
	return s
}

// TestPairedSummaryComparesPairs: the lines for a baseline build and for
// the go floor, from the medians of the ratios within each run.
func TestPairedSummaryComparesPairs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		samples map[string][]sample
		want    []string
	}{
		{
			// Ratios within each run: 1.1, 1.0, 0.9 against the
			// baseline; 0.5, 0.5, 0.667 for the baseline against nginx.
			name: "the baseline build",
			samples: map[string][]sample{
				"gitgate":          samplesOf(22, 40, 18),
				"gitgate baseline": samplesOf(20, 40, 20),
				"nginx":            samplesOf(40, 80, 30),
			},
			want: []string{"gitgate / gitgate baseline requests/s: 1.000", "gitgate baseline / nginx requests/s: 0.50"},
		},
		{
			// Within each run: 2.0, 2.5, 2.0 against the floor; 0.875,
			// 0.8, 1.0 for the floor against nginx.
			name: "the go floor",
			samples: map[string][]sample{
				"gitgate":             cpuSamplesOf(28, 30, 26),
				"go floor (fasthttp)": cpuSamplesOf(14, 12, 13),
				"nginx":               cpuSamplesOf(16, 15, 13),
			},
			want: []string{"gitgate / go floor CPU per request: 2.00", "go floor / nginx CPU per request: 0.88"},
		},
		{
			// Within each run: 1.4, 1.5, 1.3 against the floor with
			// duties; 1.25, 1.333, 1.385 for it against nginx, whose
			// requests/s it reaches 0.8, 0.75, 0.9 of.
			name: "the go floor with duties",
			samples: map[string][]sample{
				"gitgate":                         {{wrk: wrkResult{RPS: 500}, cpuPerReqUS: 28}, {wrk: wrkResult{RPS: 500}, cpuPerReqUS: 30}, {wrk: wrkResult{RPS: 500}, cpuPerReqUS: 23.4}},
				"go floor with duties (fasthttp)": {{wrk: wrkResult{RPS: 800}, cpuPerReqUS: 20}, {wrk: wrkResult{RPS: 750}, cpuPerReqUS: 20}, {wrk: wrkResult{RPS: 900}, cpuPerReqUS: 18}},
				"nginx":                           {{wrk: wrkResult{RPS: 1000}, cpuPerReqUS: 16}, {wrk: wrkResult{RPS: 1000}, cpuPerReqUS: 15}, {wrk: wrkResult{RPS: 1000}, cpuPerReqUS: 13}},
			},
			want: []string{"gitgate / go floor with duties CPU per request: 1.40", "go floor with duties / nginx CPU per request: 1.33", "go floor with duties / nginx requests/s: 0.80"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := pairedSummary(tc.samples, func(s sample) float64 { return s.wrk.RPS })
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("summary lacks %q:\n%s", want, got)
				}
			}
		})
	}
}
