package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// The dependency rule of the module, checked on the real import graph as
// `go list` reports it (test files excluded: a test binary may link what
// the product must not):
//
//   - the gateway never links CUE, go-git or gRPC (gRPC is only the tests'
//     client and server of gRPC upstreams), and never the agent or the
//     agent's loader (schemas/load);
//   - schemas imports nothing of this module, schemas/rules only schemas,
//     schemas/load only packages under schemas;
//   - the agent reaches the gateway only through gateway/admin/client.
//
// The test lives here because schemas is the one package every part
// imports; it looks at the whole module from its root.

const module = "github.com/gitgate/gitgate"

// listedPackage is the part of `go list -json` output the rules read.
type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listModule(t *testing.T) []listedPackage {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", module+"/...")
	cmd.Dir = ".." // the module root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// under reports whether path is dir or a package below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// depRule is one rule of the graph: for the packages it applies to, every
// import (direct or, with deps, transitive) forbid matches is a violation.
type depRule struct {
	name    string
	applies func(pkg string) bool
	deps    bool // check Deps (transitive) rather than Imports (direct)
	forbid  func(pkg, imp string) bool
}

var depRules = []depRule{
	{
		name:    "gateway links neither CUE, go-git nor gRPC",
		applies: func(p string) bool { return under(p, module+"/gateway") },
		deps:    true,
		forbid: func(_, imp string) bool {
			return under(imp, "cuelang.org/go") || under(imp, "github.com/go-git/go-git/v5") || under(imp, "google.golang.org/grpc")
		},
	},
	{
		name:    "gateway never depends on the agent or the loader",
		applies: func(p string) bool { return under(p, module+"/gateway") },
		deps:    true,
		forbid: func(_, imp string) bool {
			return under(imp, module+"/agent") || under(imp, module+"/schemas/load")
		},
	},
	{
		name:    "schemas imports nothing of this module",
		applies: func(p string) bool { return p == module+"/schemas" },
		forbid:  func(_, imp string) bool { return under(imp, module) },
	},
	{
		name:    "schemas/rules imports only schemas",
		applies: func(p string) bool { return under(p, module+"/schemas/rules") },
		forbid:  func(_, imp string) bool { return under(imp, module) && imp != module+"/schemas" },
	},
	{
		name:    "schemas/load imports only schemas packages",
		applies: func(p string) bool { return under(p, module+"/schemas/load") },
		forbid:  func(_, imp string) bool { return under(imp, module) && !under(imp, module+"/schemas") },
	},
	{
		name:    "agent reaches the gateway only through gateway/admin/client",
		applies: func(p string) bool { return under(p, module+"/agent") },
		forbid: func(_, imp string) bool {
			return under(imp, module+"/gateway") && imp != module+"/gateway/admin/client"
		},
	},
}

func TestDependencyRule(t *testing.T) {
	pkgs := listModule(t)
	for _, rule := range depRules {
		t.Run(rule.name, func(t *testing.T) {
			checked := 0
			for _, p := range pkgs {
				if !rule.applies(p.ImportPath) {
					continue
				}
				checked++
				imports := p.Imports
				if rule.deps {
					imports = p.Deps
				}
				for _, imp := range imports {
					if rule.forbid(p.ImportPath, imp) {
						t.Errorf("%s imports %s", p.ImportPath, imp)
					}
				}
			}
			if checked == 0 {
				t.Fatalf("the rule applies to no package: is the module layout still %s/...?", module)
			}
		})
	}
}
