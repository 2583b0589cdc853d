package admin

import (
	"io/fs"
	"os"
	"testing"
)

// TestListenUnixModeFromTheStart checks that from the moment the socket
// exists, no group or other user has more access than the final mode
// grants: it is created under a restrictive umask, not left with the
// process umask's 0755 until a chmod, a window in which any local user
// could connect.
func TestListenUnixModeFromTheStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode fs.FileMode
		want fs.FileMode
	}{
		{name: "default", mode: 0, want: 0o600},
		{name: "group may connect", mode: 0o660, want: 0o660},
		{name: "owner only", mode: 0o600, want: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := socketPath(t)
			var atBind fs.FileMode
			l, err := listenUnix(path, tt.mode, func(p string) {
				fi, err := os.Lstat(p)
				if err != nil {
					t.Errorf("socket missing right after bind: %v", err)
					return
				}
				atBind = fi.Mode().Perm()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if extra := atBind & 0o077 &^ tt.want; extra != 0 {
				t.Fatalf("socket mode right after bind %o grants %o beyond %o", atBind, extra, tt.want)
			}
			fi, err := os.Lstat(path)
			if err != nil || fi.Mode().Perm() != tt.want {
				t.Fatalf("socket mode after ListenUnix: %v, %v; want %o", fi.Mode(), err, tt.want)
			}
		})
	}
}
