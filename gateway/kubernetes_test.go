package main

import (
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// k8sPort, k8sProbe, k8sContainer and k8sDeployment are the parts of a
// Deployment this test reads.
type k8sPort struct {
	Name          string `json:"name"`
	ContainerPort int    `json:"containerPort"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port string `json:"port"`
	} `json:"httpGet"`
	TCPSocket any `json:"tcpSocket"`
}

type k8sContainer struct {
	Name           string    `json:"name"`
	Image          string    `json:"image"`
	Args           []string  `json:"args"`
	Ports          []k8sPort `json:"ports"`
	ReadinessProbe *k8sProbe `json:"readinessProbe"`
	LivenessProbe  *k8sProbe `json:"livenessProbe"`
}

type k8sDeployment struct {
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int            `json:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type k8sPodMonitor struct {
	Kind string `json:"kind"`
	Spec struct {
		PodMetricsEndpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func portNamed(c k8sContainer, name string) (int, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// TestKubernetesExampleRollsSafely keeps examples/kubernetes true: the
// gateway's arguments parse with the real flags, its declared ports are
// its --listen and --observe-addr ports, readiness is /readyz on
// the observe port (a TCP probe passes while the gateway answers 503),
// SIGTERM is followed by a shutdown delay that the grace period covers,
// images carry a version tag, and both containers' /metrics are scraped.
func TestKubernetesExampleRollsSafely(t *testing.T) {
	t.Parallel()
	var dep k8sDeployment
	readYAML(t, "../examples/kubernetes/deployment.yaml", &dep)
	var pm k8sPodMonitor
	readYAML(t, "../examples/kubernetes/podmonitor.yaml", &pm)
	pod := dep.Spec.Template.Spec
	containers := map[string]k8sContainer{}
	for _, c := range pod.Containers {
		containers[c.Name] = c
	}
	gw, ok := containers["gateway"]
	if !ok {
		t.Fatal("no gateway container")
	}
	cfg, _, exit := parseFlags(gw.Args, io.Discard, io.Discard)
	if exit >= 0 {
		t.Fatalf("gateway args %q do not parse (exit %d)", gw.Args, exit)
	}
	scraped := map[string]bool{}
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		if ep.Path == "/metrics" {
			scraped[ep.Port] = true
		}
	}
	tagged := regexp.MustCompile(`^[a-z0-9./-]+:v\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$`)

	tests := []struct {
		name  string
		check func() string // "" when fine, else the problem
	}{
		{name: "readiness is /readyz on the observe port", check: func() string {
			p := gw.ReadinessProbe
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
				return "readinessProbe is not an httpGet of /readyz"
			}
			port, ok := portNamed(gw, p.HTTPGet.Port)
			if !ok {
				return "readinessProbe names port " + p.HTTPGet.Port + ", which the container does not declare"
			}
			_, obsPort, err := net.SplitHostPort(cfg.ObserveAddr)
			if err != nil || obsPort != strconv.Itoa(port) {
				return "readinessProbe port " + strconv.Itoa(port) + " is not --observe-addr " + cfg.ObserveAddr
			}
			return ""
		}},
		{name: "every declared port is one the gateway listens on", check: func() string {
			listens := map[string]string{"http": cfg.Listen, "observe": cfg.ObserveAddr}
			for _, p := range gw.Ports {
				addr, ok := listens[p.Name]
				if !ok {
					return "container port " + p.Name + " is not a gateway listener (http: --listen, observe: --observe-addr)"
				}
				if _, port, err := net.SplitHostPort(addr); err != nil || port != strconv.Itoa(p.ContainerPort) {
					return "container port " + p.Name + " " + strconv.Itoa(p.ContainerPort) + " is not the gateway's address " + addr
				}
			}
			return ""
		}},
		{name: "liveness is an HTTP probe", check: func() string {
			if p := gw.LivenessProbe; p == nil || p.HTTPGet == nil || p.TCPSocket != nil {
				return "livenessProbe is not an httpGet"
			}
			return ""
		}},
		{name: "SIGTERM is followed by a shutdown delay the grace period covers", check: func() string {
			if cfg.ShutdownDelay <= 0 {
				return "no --shutdown-delay"
			}
			grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
			if need := cfg.ShutdownDelay + cfg.ShutdownTimeout; grace < need {
				return "terminationGracePeriodSeconds " + grace.String() + " is less than delay + timeout " + need.String()
			}
			return ""
		}},
		{name: "images carry a version tag", check: func() string {
			var bad []string
			for _, c := range pod.Containers {
				if !tagged.MatchString(c.Image) {
					bad = append(bad, c.Image)
				}
			}
			if bad != nil {
				return "images without a vX.Y.Z tag: " + strings.Join(bad, ", ")
			}
			return ""
		}},
		{name: "both containers' metrics ports are scraped", check: func() string {
			if pm.Kind != "PodMonitor" {
				return "podmonitor.yaml is a " + pm.Kind
			}
			_, obsPort, _ := net.SplitHostPort(cfg.ObserveAddr)
			want := map[string]string{"gateway": obsPort, "agent": "9000"}
			for name, port := range want {
				found := false
				for _, p := range containers[name].Ports {
					if strconv.Itoa(p.ContainerPort) == port && scraped[p.Name] {
						found = true
					}
				}
				if !found {
					return "the " + name + " container's metrics port " + port + " is not scraped"
				}
			}
			if _, ok := dep.Spec.Template.Metadata.Annotations["prometheus.io/port"]; ok {
				return "a prometheus.io/port annotation names one container's port only"
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
