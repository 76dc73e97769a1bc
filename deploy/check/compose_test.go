package check

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// loadCompose loads deploy/compose.yaml as docker compose does: interpolation,
// the compose-spec JSON schema, then the model's consistency (services,
// networks and volumes named where they are used).
func loadCompose(env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{filepath.Join(deployDir, "compose.yaml")},
		cli.WithWorkingDirectory(deployDir), cli.WithEnv(env), cli.WithResolvedPaths(true))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// exampleEnv reads deploy/env.example, giving each empty setting a value.
func exampleEnv(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(deployDir, "env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("env.example: %q is not KEY=VALUE", line)
		}
		if v == "" {
			v = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		}
		env = append(env, k+"="+v)
	}
	return env
}

func TestComposeFile(t *testing.T) {
	p, err := loadCompose(exampleEnv(t))
	if err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	svc := func(name string) types.ServiceConfig {
		t.Helper()
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("compose.yaml: no service %s", name)
		}
		return s
	}
	env := func(s types.ServiceConfig, key string) string {
		if v := s.Environment[key]; v != nil {
			return *v
		}
		return ""
	}

	t.Run("kurrentdb cluster", func(t *testing.T) {
		nodes := map[string]string{} // service → address
		for name, s := range p.Services {
			if strings.HasPrefix(name, "kurrentdb-") && name != "kurrentdb-certs" {
				nodes[name] = env(s, "KURRENTDB_REPLICATION_IP")
			}
		}
		if len(nodes) != 3 {
			t.Fatalf("%d KurrentDB nodes, want 3", len(nodes))
		}
		_, subnet, err := net.ParseCIDR(p.Networks["passerelle"].Ipam.Config[0].Subnet)
		if err != nil {
			t.Fatal(err)
		}
		certs := svc("kurrentdb-certs")
		script := strings.Join(certs.Command, " ")
		for name, ip := range nodes {
			s := svc(name)
			if got := env(s, "KURRENTDB_CLUSTER_SIZE"); got != "3" {
				t.Errorf("%s: cluster size %q", name, got)
			}
			if s.Networks["passerelle"] == nil || s.Networks["passerelle"].Ipv4Address != ip || !subnet.Contains(net.ParseIP(ip)) {
				t.Errorf("%s: replication IP %s is not its address in the network %s", name, ip, subnet)
			}
			var others []string
			for other, oip := range nodes {
				if other != name {
					others = append(others, oip+":2113")
				}
			}
			sort.Strings(others)
			seed := strings.Split(env(s, "KURRENTDB_GOSSIP_SEED"), ",")
			sort.Strings(seed)
			if !slices.Equal(seed, others) {
				t.Errorf("%s: gossip seed %v, want the other nodes %v", name, seed, others)
			}
			if env(s, "KURRENTDB_ADVERTISE_HOST_TO_CLIENT_AS") != name {
				t.Errorf("%s: advertised to clients as %q, not by its name (the certificate's DNS name)", name, env(s, "KURRENTDB_ADVERTISE_HOST_TO_CLIENT_AS"))
			}
			for _, key := range []string{"KURRENTDB_CERTIFICATE_FILE", "KURRENTDB_CERTIFICATE_PRIVATE_KEY_FILE", "KURRENTDB_TRUSTED_ROOT_CERTIFICATES_PATH"} {
				if !mountedFrom(s, env(s, key), "kurrentdb-certs") {
					t.Errorf("%s: %s=%q is not in the certificates' volume", name, key, env(s, key))
				}
			}
			if env(s, "KURRENTDB_INSECURE") == "true" {
				t.Errorf("%s runs without TLS", name)
			}
			if d, ok := s.DependsOn["kurrentdb-certs"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for its certificates", name)
			}
		}
		// the generator writes one certificate per node, with its address and name
		if !strings.Contains(script, "-ip-addresses 172.30.240.1$n -dns-names kurrentdb-$n") || !strings.Contains(script, "for n in 1 2 3") {
			t.Errorf("kurrentdb-certs does not make each node's certificate for its address and name:\n%s", script)
		}
	})

	t.Run("redis", func(t *testing.T) {
		cmd := svc("redis").Command
		if len(cmd) == 0 || cmd[0] != "redis-server" {
			t.Fatalf("redis command %v", cmd)
		}
		checkRedisConfig(t, "compose.yaml redis", cmd[1:]...)
	})

	t.Run("passerelle processes", func(t *testing.T) {
		known := passerelleEnv(t)
		roles := map[string][]string{}
		var dataDir, eventstore, tokenKey string
		for _, name := range []string{"api-1", "api-2", "projector"} {
			s := svc(name)
			roles[env(s, "PASSERELLE_ROLE")] = append(roles[env(s, "PASSERELLE_ROLE")], name)
			for key := range s.Environment {
				if strings.HasPrefix(key, "PASSERELLE_") && !known[key] {
					t.Errorf("%s: %s is not a setting of passerelle serve", name, key)
				}
			}
			if dataDir == "" {
				dataDir, eventstore, tokenKey = env(s, "PASSERELLE_DATA_DIR"), env(s, "PASSERELLE_EVENTSTORE"), env(s, "PASSERELLE_TOKEN_KEY")
			}
			if env(s, "PASSERELLE_DATA_DIR") != dataDir || env(s, "PASSERELLE_EVENTSTORE") != eventstore || env(s, "PASSERELLE_TOKEN_KEY") != tokenKey {
				t.Errorf("%s: its data directory, event store or token key differs from the others'", name)
			}
			// the personal-data keys: one volume, the same for every process
			if !mountedFrom(s, filepath.Join(dataDir, "keys"), "passerelle-data") {
				t.Errorf("%s: %s is not on the shared volume passerelle-data", name, dataDir)
			}
			if env(s, "PASSERELLE_REDIS_URL") != "redis://redis:6379/0" {
				t.Errorf("%s: Redis %q", name, env(s, "PASSERELLE_REDIS_URL"))
			}
			if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("%s: not built from deploy/Dockerfile", name)
			} else if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if len(roles["api"]) != 2 || len(roles["projector"]) != 1 || len(roles) != 2 {
			t.Errorf("roles %v: want two api processes and one projector", roles)
		}
		u, err := url.Parse(eventstore)
		if err != nil {
			t.Fatalf("PASSERELLE_EVENTSTORE: %v", err)
		}
		if u.Scheme != "esdb+discover" || u.Query().Get("tls") != "true" {
			t.Errorf("PASSERELLE_EVENTSTORE %q: want esdb+discover with tls=true", eventstore)
		}
		if hosts := strings.Split(u.Host, ","); !slices.Equal(hosts, []string{"kurrentdb-1:2113", "kurrentdb-2:2113", "kurrentdb-3:2113"}) {
			t.Errorf("PASSERELLE_EVENTSTORE names %v, not the three nodes", hosts)
		}
		ca := u.Query().Get("tlsCAFile")
		if !mountedFrom(svc("api-1"), ca, "kurrentdb-ca") || !mountedFrom(svc("kurrentdb-certs"), "/trust/ca.crt", "kurrentdb-ca") ||
			!strings.Contains(strings.Join(svc("kurrentdb-certs").Command, " "), "cp ca/ca.crt /trust/ca.crt") {
			t.Errorf("tlsCAFile %q is not the CA certificate that kurrentdb-certs writes", ca)
		}
	})

	// The rate limits count a client by the address Caddy forwards, only
	// if every API process trusts the network Caddy connects from.
	t.Run("trusted proxies", func(t *testing.T) {
		nw, ok := p.Networks["passerelle"]
		_, on := svc("proxy").Networks["passerelle"]
		if !ok || !on || len(nw.Ipam.Config) != 1 {
			t.Fatal("the proxy is not on the network passerelle of one subnet")
		}
		subnet, err := netip.ParsePrefix(nw.Ipam.Config[0].Subnet)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"api-1", "api-2"} {
			if !trusts(env(svc(name), "PASSERELLE_TRUSTED_PROXIES"), subnet) {
				t.Errorf("%s: PASSERELLE_TRUSTED_PROXIES %q does not cover the proxy's network %s", name, env(svc(name), "PASSERELLE_TRUSTED_PROXIES"), subnet)
			}
		}
	})

	t.Run("caddy", func(t *testing.T) {
		proxy := svc("proxy")
		if !mountedFrom(proxy, "/etc/caddy/Caddyfile", filepath.Join(p.WorkingDir, "Caddyfile")) {
			t.Fatalf("proxy does not mount deploy/Caddyfile at /etc/caddy/Caddyfile")
		}
		caddy := tool(t, "caddy", "caddy")
		if out, err := run(t, caddy, "validate", "--config", filepath.Join(deployDir, "Caddyfile"), "--adapter", "caddyfile"); err != nil {
			t.Fatalf("caddy validate: %v\n%s", err, out)
		}
		// caddy's own JSON form of the file: which upstreams, checked how
		out, err := run(t, caddy, "adapt", "--config", filepath.Join(deployDir, "Caddyfile"), "--adapter", "caddyfile")
		if err != nil {
			t.Fatalf("caddy adapt: %v\n%s", err, out)
		}
		upstreams := regexp.MustCompile(`"dial":"([^"]+)"`).FindAllStringSubmatch(out, -1)
		var dials []string
		for _, m := range upstreams {
			dials = append(dials, m[1])
		}
		if !slices.Equal(dials, []string{"api-1:8080", "api-2:8080"}) {
			t.Errorf("Caddy proxies to %v, want the two API processes", dials)
		}
		var cfg struct {
			Apps struct {
				HTTP struct {
					Servers map[string]json.RawMessage `json:"servers"`
				} `json:"http"`
			} `json:"apps"`
		}
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &cfg); err != nil {
			t.Fatalf("caddy adapt: %v", err)
		}
		if len(cfg.Apps.HTTP.Servers) != 1 || !strings.Contains(out, `"health_checks":{"active":{"interval":5000000000,"timeout":2000000000,"uri":"/readyz"}}`) {
			t.Errorf("Caddy does not check /readyz on its upstreams:\n%s", out)
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		prom := svc("prometheus")
		if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") ||
			!mountedFrom(prom, "/etc/prometheus/prometheus.yml", filepath.Join(p.WorkingDir, "prometheus")) {
			t.Fatalf("prometheus does not load deploy/prometheus/prometheus.yml: %v", prom.Command)
		}
		promtool := tool(t, "promtool", "prometheus")
		file := filepath.Join(deployDir, "prometheus", "prometheus.yml")
		// also checks the rule files it loads (alerts.yml)
		if out, err := run(t, promtool, "check", "config", file); err != nil {
			t.Fatalf("promtool check config: %v\n%s", err, out)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			RuleFiles     []string `json:"rule_files"`
			ScrapeConfigs []struct {
				StaticConfigs []struct {
					Targets []string `json:"targets"`
				} `json:"static_configs"`
			} `json:"scrape_configs"`
		}
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		var targets []string
		for _, sc := range cfg.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				targets = append(targets, st.Targets...)
			}
		}
		sort.Strings(targets)
		if want := []string{"api-1:8080", "api-2:8080", "projector:8080"}; !slices.Equal(targets, want) {
			t.Errorf("Prometheus scrapes %v, want %v", targets, want)
		}
		if !slices.Equal(cfg.RuleFiles, []string{"alerts.yml"}) {
			t.Errorf("rule files %v, want alerts.yml", cfg.RuleFiles)
		}
	})
}

// TestComposeNeedsItsSecrets: without deploy/.env, docker compose stops before
// starting anything and names the first setting missing.
func TestComposeNeedsItsSecrets(t *testing.T) {
	_, err := loadCompose(nil)
	if err == nil || !strings.Contains(err.Error(), "set ") || !strings.Contains(err.Error(), "in deploy/.env") {
		t.Fatalf("loading compose.yaml without its settings: %v, want a 'set … in deploy/.env' error", err)
	}
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	listed := strings.Join(exampleEnv(t), "\n")
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+):\?`).FindAllStringSubmatch(string(b), -1) {
		if !strings.Contains(listed, m[1]+"=") {
			t.Errorf("compose.yaml requires %s, which env.example does not list", m[1])
		}
	}
}

// mountedFrom reports whether path, in the service's container, lies in a
// mount of source (a named volume, or a host path).
func mountedFrom(s types.ServiceConfig, path, source string) bool {
	for _, v := range s.Volumes {
		if v.Source == source && (path == v.Target || strings.HasPrefix(path, strings.TrimSuffix(v.Target, "/")+"/")) {
			if v.Type == types.VolumeTypeBind {
				_, err := os.Stat(v.Source) // docker would create a missing one empty
				return err == nil
			}
			return true
		}
	}
	return false
}

// trusts reports whether the comma-separated CIDRs list covers all of subnet.
func trusts(list string, subnet netip.Prefix) bool {
	for _, f := range strings.Split(list, ",") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(f)); err == nil && p.Bits() <= subnet.Bits() && p.Contains(subnet.Addr()) {
			return true
		}
	}
	return false
}
