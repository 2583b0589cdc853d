//go:build !unix

package control

import "net"

// listenOwnerOnly binds the control socket; without a umask the chmod in
// Listen is what narrows its mode.
func listenOwnerOnly(path string, afterBind func(string)) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err == nil && afterBind != nil {
		afterBind(path)
	}
	return ln, err
}
