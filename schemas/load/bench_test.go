package load

import (
	"fmt"
	"strings"
	"testing"
)

// genConfig writes a config of n routes over 20 upstreams and 5 policies,
// split over files of at most 1,000 routes, as an operator would lay it out.
func genConfig(n int) []File {
	var files []File
	var b strings.Builder
	b.WriteString("upstreams:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "  svc%d:\n    targets: [http://10.0.%d.1:8080, http://10.0.%d.2:8080]\n    healthCheck: {path: /healthz, interval: 5s}\n", i, i, i)
	}
	b.WriteString("policies:\n")
	for i := range 5 {
		fmt.Fprintf(&b, "  limit%d:\n    rateLimit: {rate: %d, burst: %d}\n", i, 10*(i+1), 20*(i+1))
	}
	files = append(files, File{Path: "upstreams.yaml", Data: []byte(b.String())})
	for f := 0; f*1000 < n; f++ {
		b.Reset()
		b.WriteString("routes:\n")
		for i := f * 1000; i < min(n, (f+1)*1000); i++ {
			fmt.Fprintf(&b, "  r%d:\n", i)
			fmt.Fprintf(&b, "    match:\n      hosts: [h%d.example.com]\n      path: /api/v%d/items\n      pathType: prefix\n      methods: [GET, POST]\n", i%50, i)
			if i%10 == 0 {
				fmt.Fprintf(&b, "    backends:\n      - {upstream: svc%d, weight: 90}\n      - {upstream: svc%d, weight: 10}\n", i%20, (i+1)%20)
			} else {
				fmt.Fprintf(&b, "    backends:\n      - upstream: svc%d\n        weight: 100\n", i%20)
			}
			fmt.Fprintf(&b, "    timeout: 15s\n    policies: [limit%d]\n", i%5)
		}
		files = append(files, File{Path: fmt.Sprintf("routes-%02d.yaml", f), Data: []byte(b.String())})
	}
	return files
}

func BenchmarkValidate10kRoutes(b *testing.B) {
	files := genConfig(10000)
	var size int
	for _, f := range files {
		size += len(f.Data)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		r := Files(files, Limits{})
		if len(r.Diagnostics) > 0 {
			b.Fatal(r.Diagnostics[0])
		}
		if len(r.Config.Routes) != 10000 {
			b.Fatalf("got %d routes", len(r.Config.Routes))
		}
	}
}
