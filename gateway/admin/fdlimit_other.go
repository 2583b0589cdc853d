//go:build !unix

package admin

// fdSoftLimit returns 0: the limit is unknown on this platform.
func fdSoftLimit() uint64 { return 0 }
