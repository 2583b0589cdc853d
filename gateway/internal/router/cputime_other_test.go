//go:build !linux

package router

import "testing"

// measureCPU runs loop; per-thread CPU time is only measured on Linux.
func measureCPU(_ *testing.B, loop func()) { loop() }
