// Command gateway is gitgate's API gateway: it serves HTTP traffic from the
// config bundle the agent hands it over the admin socket.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	fmt.Printf("gateway %s\n", version)
	os.Exit(0)
}
