package main

import (
	"bytes"
	"debug/elf"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const k8sDir = "../examples/kubernetes"

// k8sObject is the part of a Kubernetes object these tests read: a
// Deployment, a Service or a ConfigMap.
type k8sObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		// Service
		ClusterIP string         `json:"clusterIP"`
		Selector  map[string]any `json:"selector"`
		Ports     []struct {
			Name       string `json:"name"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
		// Deployment
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Containers []k8sContainer `json:"containers"`
				Volumes    []struct {
					Name      string `json:"name"`
					ConfigMap *struct {
						Name string `json:"name"`
					} `json:"configMap"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// k8sProbe is a container probe; HTTPGet is nil for other kinds.
type k8sProbe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port string `json:"port"`
	} `json:"httpGet"`
}

type k8sContainer struct {
	Name  string   `json:"name"`
	Image string   `json:"image"`
	Args  []string `json:"args"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	ReadinessProbe *k8sProbe `json:"readinessProbe"`
	LivenessProbe  *k8sProbe `json:"livenessProbe"`
	StartupProbe   *k8sProbe `json:"startupProbe"`
	VolumeMounts   []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		SubPath   string `json:"subPath"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"volumeMounts"`
	SecurityContext struct {
		ReadOnlyRootFilesystem bool `json:"readOnlyRootFilesystem"`
	} `json:"securityContext"`
}

// readK8s reads every object of every YAML file in examples/kubernetes.
func readK8s(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", k8sDir, err)
	}
	var objs []k8sObject
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o k8sObject
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func k8sFind(objs []k8sObject, kind, name string) (k8sObject, bool) {
	for _, o := range objs {
		if o.Kind == kind && (name == "" || o.Metadata.Name == name) {
			return o, true
		}
	}
	return k8sObject{}, false
}

func containerNamed(dep k8sObject, name string) (k8sContainer, bool) {
	for _, c := range dep.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return k8sContainer{}, false
}

// flagValue returns the value of --name=value or --name value in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--"+name+"="):
			return strings.TrimPrefix(a, "--"+name+"="), true
		case a == "--"+name && i+1 < len(args):
			return args[i+1], true
		}
	}
	return "", false
}

// mountedFile returns what a container sees at path when path is a file
// mounted from a ConfigMap (by subPath or by key under a directory mount).
func mountedFile(t *testing.T, objs []k8sObject, dep k8sObject, c k8sContainer, path string) (string, bool) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		key := ""
		switch {
		case m.SubPath != "" && m.MountPath == path:
			key = m.SubPath
		case m.SubPath == "" && filepath.Dir(path) == m.MountPath:
			key = filepath.Base(path)
		default:
			continue
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm, ok := k8sFind(objs, "ConfigMap", v.ConfigMap.Name)
			if !ok {
				t.Fatalf("volume %s names ConfigMap %s, which examples/kubernetes does not define", v.Name, v.ConfigMap.Name)
			}
			data, ok := cm.Data[key]
			return data, ok
		}
	}
	return "", false
}

// underMount reports whether path lies in one of c's volume mounts
// (writable ones only when writable is true).
func underMount(c k8sContainer, path string, writable bool) bool {
	for _, m := range c.VolumeMounts {
		if writable && (m.ReadOnly || m.SubPath != "") {
			continue
		}
		if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// TestKubernetesExampleAgentRuns keeps the agent container of
// examples/kubernetes runnable: its arguments are a command and flags the
// real parser accepts (agent.yaml read from the ConfigMap it mounts), its
// declared port is the one it listens on, its probes name that port, every
// path it is configured with lies on a volume (the root filesystem is read
// only), it talks to the gateway's admin socket on a shared volume, and the
// Services' target ports exist. The e2e scenario r-monitoring-promtool GETs
// every probe path on the real binaries.
func TestKubernetesExampleAgentRuns(t *testing.T) {
	t.Parallel()
	objs := readK8s(t)
	dep, ok := k8sFind(objs, "Deployment", "")
	if !ok {
		t.Fatal("no Deployment in examples/kubernetes")
	}
	agent, ok := containerNamed(dep, "agent")
	if !ok {
		t.Fatal("no agent container")
	}
	gw, ok := containerNamed(dep, "gateway")
	if !ok {
		t.Fatal("no gateway container")
	}
	if len(agent.Args) == 0 || agent.Args[0] != "run" {
		t.Fatalf("agent args %q do not start with the run command", agent.Args)
	}
	if _, ok := commands()[agent.Args[0]]; !ok {
		t.Fatalf("agent has no command %q", agent.Args[0])
	}
	args := slices.Clone(agent.Args[1:])
	if p, ok := flagValue(args, "config"); ok {
		data, ok := mountedFile(t, objs, dep, agent, p)
		if !ok {
			t.Fatalf("--config=%s is not a file the agent container mounts from a ConfigMap", p)
		}
		local := filepath.Join(t.TempDir(), "agent.yaml")
		if err := os.WriteFile(local, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		for i, a := range args {
			args[i] = strings.Replace(a, p, local, 1)
		}
	}
	var stderr bytes.Buffer
	cfg, err := parseRunConfig(args, &stderr)
	if err != nil {
		t.Fatalf("agent args %q: %v\n%s", agent.Args, err, stderr.String())
	}
	declared := map[string]int{}
	for _, p := range agent.Ports {
		declared[p.Name] = p.ContainerPort
	}

	tests := []struct {
		name  string
		check func() string // "" when fine, else the problem
	}{
		{name: "the webhook port is the one the agent listens on", check: func() string {
			_, port, err := net.SplitHostPort(cfg.WebhookAddr)
			if err != nil {
				return "webhookAddr " + cfg.WebhookAddr + ": " + err.Error()
			}
			if strconv.Itoa(declared["webhook"]) != port {
				return "container port webhook is " + strconv.Itoa(declared["webhook"]) + ", the agent listens on " + cfg.WebhookAddr
			}
			if len(declared) != 1 {
				return "the agent declares ports it does not serve: " + strings.Join(slices.Sorted(maps.Keys(declared)), ", ")
			}
			return ""
		}},
		{name: "probes are HTTP on a declared port", check: func() string {
			if agent.ReadinessProbe == nil || agent.LivenessProbe == nil {
				return "no readiness or no liveness probe"
			}
			for _, p := range []*k8sProbe{agent.ReadinessProbe, agent.LivenessProbe, agent.StartupProbe} {
				if p == nil {
					continue
				}
				if p.HTTPGet == nil {
					return "a probe is not an httpGet"
				}
				if _, ok := declared[p.HTTPGet.Port]; !ok {
					return "a probe names port " + p.HTTPGet.Port + ", which the agent does not declare"
				}
			}
			return ""
		}},
		{name: "every configured path is on a volume; state and sockets writable", check: func() string {
			if !agent.SecurityContext.ReadOnlyRootFilesystem {
				return "the agent's root filesystem is writable"
			}
			v := reflect.ValueOf(cfg)
			for i := range v.NumField() {
				name := v.Type().Field(i).Name
				path, ok := v.Field(i).Interface().(string)
				if !ok || !filepath.IsAbs(path) {
					continue
				}
				writable := strings.HasSuffix(name, "Dir") || strings.HasSuffix(name, "Socket")
				dir := path
				if strings.HasSuffix(name, "Socket") {
					dir = filepath.Dir(path)
				}
				if !underMount(agent, dir, writable) {
					return name + " " + path + " is not on a volume the agent mounts" + map[bool]string{true: " writable", false: ""}[writable]
				}
			}
			return ""
		}},
		{name: "the agent pushes to the gateway's admin socket on a shared volume", check: func() string {
			sock, ok := flagValue(gw.Args, "admin-socket")
			if !ok {
				return "the gateway has no --admin-socket"
			}
			if sock != cfg.GatewaySocket {
				return "the agent's gatewaySocket " + cfg.GatewaySocket + " is not the gateway's --admin-socket " + sock
			}
			if !underMount(agent, filepath.Dir(sock), false) || !underMount(gw, filepath.Dir(sock), true) {
				return "the admin socket's directory is not a volume both containers mount"
			}
			return ""
		}},
		{name: "Services select the pod and target declared ports", check: func() string {
			ports := map[string]bool{}
			for _, c := range dep.Spec.Template.Spec.Containers {
				for _, p := range c.Ports {
					ports[p.Name] = true
				}
			}
			n := 0
			for _, o := range objs {
				if o.Kind != "Service" {
					continue
				}
				n++
				for k, v := range o.Spec.Selector {
					if want, _ := v.(string); dep.Spec.Template.Metadata.Labels[k] != want {
						return "Service " + o.Metadata.Name + " selects " + k + "=" + toString(v) + ", which the pod does not carry"
					}
				}
				for _, p := range o.Spec.Ports {
					if name, ok := p.TargetPort.(string); !ok || !ports[name] {
						return "Service " + o.Metadata.Name + " targets port " + toString(p.TargetPort) + ", which no container declares by name"
					}
				}
			}
			if n == 0 {
				return "no Service"
			}
			return ""
		}},
		{name: "a headless Service lists the agents' webhook ports for --peers", check: func() string {
			svc, ok := k8sFind(objs, "Service", "gitgate-peers")
			if !ok {
				return "no Service gitgate-peers"
			}
			if svc.Spec.ClusterIP != "None" {
				return "gitgate-peers is not headless (clusterIP: None)"
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != "webhook" {
				return "gitgate-peers does not target the agent's webhook port only"
			}
			return ""
		}},
		{name: "--peers names the headless Service at the webhook port", check: func() string {
			want := "dns:gitgate-peers.gitgate.svc.cluster.local:" + strconv.Itoa(declared["webhook"])
			if v, ok := flagValue(args, "peers"); !ok || v != want {
				return "the agent's args lack --peers=" + want
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if problem := tt.check(); problem != "" {
				t.Fatal(problem)
			}
		})
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.Itoa(int(v))
	}
	return "?"
}

// dockerStage is one FROM section of a Dockerfile.
type dockerStage struct {
	name, base string
	// instrs are the stage's instructions after FROM: [keyword, rest].
	instrs [][2]string
}

// parseDockerfile reads the stages of a Dockerfile: continuation lines
// joined, comments and parser directives dropped.
func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var cur string
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		kw, rest, _ := strings.Cut(cur, " ")
		kw, rest, cur = strings.ToUpper(kw), strings.TrimSpace(rest), ""
		if kw == "FROM" {
			f := strings.Fields(rest)
			st := dockerStage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", path, kw)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, [2]string{kw, rest})
	}
	return stages
}

// shellFields splits a RUN command line on spaces outside double quotes and
// drops the quotes.
func shellFields(s string) []string {
	var out []string
	var b strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, b.String())
			}
			b.Reset()
			inWord = false
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, b.String())
	}
	return out
}

// TestKubernetesExampleDockerfile keeps examples/kubernetes/Dockerfile
// buildable and in step with deployment.yaml: each container's image is a
// target of the Dockerfile (documented with its docker build command), on
// distroless static or scratch, as the pod's non-root user, whose
// ENTRYPOINT is a binary the build stage makes with `go build ./<pkg>` of a
// main package, from sources the stage copies, with CGO_ENABLED=0. The go
// build commands run here as written: the binaries must be static and
// report the version passed with -X.
func TestKubernetesExampleDockerfile(t *testing.T) {
	t.Parallel()
	dockerfile := filepath.Join(k8sDir, "Dockerfile")
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, dockerfile)
	byName := map[string]dockerStage{}
	for _, st := range stages {
		byName[st.name] = st
	}
	objs := readK8s(t)
	dep, ok := k8sFind(objs, "Deployment", "")
	if !ok {
		t.Fatal("no Deployment")
	}
	var pod struct {
		Spec struct {
			Template struct {
				Spec struct {
					SecurityContext struct {
						RunAsUser int `json:"runAsUser"`
					} `json:"securityContext"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	depRaw, err := os.ReadFile(filepath.Join(k8sDir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(depRaw, &pod); err != nil {
		t.Fatal(err)
	}
	runAs := pod.Spec.Template.Spec.SecurityContext.RunAsUser
	if runAs == 0 {
		t.Fatal("the pod sets no non-root runAsUser")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	imageRef := regexp.MustCompile(`^[a-z0-9.-]+/[a-z0-9./-]*?([a-z0-9-]+):(v\d+\.\d+\.\d+)$`)

	for _, c := range dep.Spec.Template.Spec.Containers {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			m := imageRef.FindStringSubmatch(c.Image)
			if m == nil {
				t.Fatalf("image %q is not registry/…/<target>:vX.Y.Z", c.Image)
			}
			target, tag := m[1], m[2]
			if target != c.Name {
				t.Fatalf("container %s runs image %s, the Dockerfile's %s target", c.Name, c.Image, target)
			}
			if !strings.Contains(string(raw), "--target "+target) || !strings.Contains(string(raw), "-t "+c.Image+" ") {
				t.Fatalf("the Dockerfile does not document `docker build --target %s ... -t %s`", target, c.Image)
			}
			final, ok := byName[target]
			if !ok {
				t.Fatalf("image %s: the Dockerfile has no stage %q", c.Image, target)
			}
			if !strings.HasPrefix(final.base, "gcr.io/distroless/static") && final.base != "scratch" {
				t.Fatalf("stage %s is based on %s, not distroless static or scratch", target, final.base)
			}
			var user, entry string
			copies := map[string][2]string{} // destination -> [from stage, source]
			for _, in := range final.instrs {
				switch in[0] {
				case "USER":
					user = in[1]
				case "ENTRYPOINT":
					entry = in[1]
				case "COPY":
					f := strings.Fields(in[1])
					if len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
						copies[f[2]] = [2]string{strings.TrimPrefix(f[0], "--from="), f[1]}
					}
				}
			}
			uid, _, _ := strings.Cut(user, ":")
			if uid != strconv.Itoa(runAs) {
				t.Fatalf("stage %s runs as USER %q, not the pod's runAsUser %d", target, user, runAs)
			}
			var argv []string
			if err := yaml.Unmarshal([]byte(entry), &argv); err != nil || len(argv) == 0 {
				t.Fatalf("stage %s: ENTRYPOINT %q is not an exec-form list", target, entry)
			}
			src, ok := copies[argv[0]]
			if !ok {
				t.Fatalf("stage %s: ENTRYPOINT %s is not copied from a build stage", target, argv[0])
			}
			build, ok := byName[src[0]]
			if !ok {
				t.Fatalf("stage %s copies from unknown stage %q", target, src[0])
			}
			// The go build in the build stage that writes src[1].
			var goBuild []string
			cgoOff := false
			copied := map[string]bool{}
			for _, in := range build.instrs {
				switch in[0] {
				case "ENV", "ARG":
					if slices.Contains(strings.Fields(in[1]), "CGO_ENABLED=0") && in[0] == "ENV" {
						cgoOff = true
					}
				case "COPY":
					f := strings.Fields(in[1])
					for _, s := range f[:len(f)-1] {
						copied[strings.TrimSuffix(s, "/")] = true
					}
				case "RUN":
					f := shellFields(in[1])
					if len(f) > 2 && f[0] == "go" && f[1] == "build" && slices.Contains(f, src[1]) {
						goBuild = f
					}
				}
			}
			if goBuild == nil {
				t.Fatalf("stage %s: no RUN go build writes %s", src[0], src[1])
			}
			if !cgoOff {
				t.Fatalf("stage %s does not set ENV CGO_ENABLED=0", src[0])
			}
			pkg := goBuild[len(goBuild)-1]
			if pkg != "./"+target {
				t.Fatalf("image %s is built from %s, not ./%s", c.Image, pkg, target)
			}
			list := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.ImportPath}}{{end}}{{end}}", pkg)
			list.Dir = root
			out, err := list.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", pkg, err)
			}
			for _, imp := range strings.Fields(string(out)) {
				rel := strings.TrimPrefix(strings.TrimPrefix(imp, "github.com/gitgate/gitgate"), "/")
				if top, _, _ := strings.Cut(rel, "/"); !copied[top] {
					t.Fatalf("%s imports %s, but the build stage does not COPY %s/", pkg, imp, top)
				}
			}
			if !copied["go.mod"] || !copied["go.sum"] {
				t.Fatal("the build stage does not COPY go.mod and go.sum")
			}
			if testing.Short() {
				t.Skip("-short: not building the binary")
			}
			// Run the build as written, into a temporary directory.
			bin := filepath.Join(t.TempDir(), target)
			args := slices.Clone(goBuild[1:])
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "${VERSION}", tag)
				if a == src[1] {
					args[i] = bin
				}
			}
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			libs, _ := f.ImportedLibraries()
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					libs = append(libs, "a dynamic loader")
				}
			}
			if len(libs) > 0 {
				t.Fatalf("%s is not static: needs %v", target, libs)
			}
			out, err = exec.Command(bin, "version").Output()
			if err != nil || !strings.HasPrefix(string(out), target+" "+tag+" (") {
				t.Fatalf("%s version = %q (%v), want it to start with %q", target, out, err, target+" "+tag+" (")
			}
		})
	}
}
