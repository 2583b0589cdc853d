// Command prewarm imports every dependency so their build cache and go.sum
// entries exist while the packages that use them are written. Removed once
// they are all imported for real.
package main

import (
	_ "cuelang.org/go/cue/cuecontext"
	_ "cuelang.org/go/cue/load"
	_ "cuelang.org/go/encoding/jsonschema"
	_ "cuelang.org/go/encoding/yaml"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/go-github/v60/github"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/rs/zerolog"
	_ "golang.org/x/net/http2/h2c"
	_ "golang.org/x/time/rate"
	_ "sigs.k8s.io/yaml"
)

func main() {}
