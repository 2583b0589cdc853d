package main

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestDemo runs the whole walk-through with the real gateway and agent
// binaries: every step checks what it shows (traffic moved, the invalid
// commit rejected with the old config serving, the rollback pinned, the pin
// lifted, the restarted gateway serving), and no request may fail.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binaries")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d := &demo{}
	err := d.run(ctx, false, 4)
	d.cleanup()
	if err != nil {
		t.Fatal(err)
	}
}
