package proxy

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestGRPCTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"1H", time.Hour, true},
		{"2M", 2 * time.Minute, true},
		{"3S", 3 * time.Second, true},
		{"100m", 100 * time.Millisecond, true},
		{"5u", 5 * time.Microsecond, true},
		{"7n", 7, true},
		{"99999999H", math.MaxInt64, true},
		{"", 0, false},
		{"m", 0, false},
		{"123456789m", 0, false}, // nine digits
		{"10s", 0, false},        // unknown unit
		{"-1S", 0, false},
		{"1.5S", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.value != "" {
				h.Set("Grpc-Timeout", tc.value)
			}
			got, ok := grpcTimeout(h)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("grpcTimeout(%q) = %v, %v; want %v, %v", tc.value, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFormatGRPCTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "30000m"},
		{1500 * time.Microsecond, "1m"},
		{99999999 * time.Millisecond, "99999999m"},
		{100000000 * time.Millisecond, "100000S"},
		{math.MaxInt64, "2562047H"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			if got := formatGRPCTimeout(tc.d); got != tc.want {
				t.Fatalf("formatGRPCTimeout(%v) = %q, want %q", tc.d, got, tc.want)
			}
			if back, ok := grpcTimeout(http.Header{"Grpc-Timeout": {tc.want}}); !ok || back > tc.d {
				t.Fatalf("%q parses to %v, %v; want at most %v", tc.want, back, ok, tc.d)
			}
		})
	}
}
