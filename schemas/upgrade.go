package schemas

import (
	"fmt"
	"strings"
)

// UpgradeWebSocket is the protocol Route.Upgrades allows by default.
const UpgradeWebSocket = "websocket"

// CheckUpgrade reports why token cannot be listed in Route.Upgrades: it must
// be an HTTP token (protocol names such as "websocket" or "HTTP/2.0" are),
// and it must not be "h2c", which would tunnel HTTP/2 requests past every
// route and policy. The agent's loader and the gateway's compile both call it.
func CheckUpgrade(token string) error {
	if token == "" {
		return fmt.Errorf("an upgrade protocol name is empty")
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+.^_`|~/-", c) >= 0) {
			return fmt.Errorf("upgrade protocol %q is not an HTTP token", token)
		}
	}
	if strings.EqualFold(token, "h2c") {
		return fmt.Errorf("upgrade protocol %q is never allowed: HTTP/2 tunnelled over an upgrade would bypass routes and policies (serve HTTP/2 with TLS or the gateway's h2c listener instead)", token)
	}
	return nil
}
