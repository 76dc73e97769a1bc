package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var k8sDir = filepath.Join(deployDir, "k8s")

// decodeStrict decodes every document of a YAML stream into the Kubernetes
// API's own types, as the API server does with strict field validation: an
// unknown or duplicate field, a wrong type or an unknown kind is an error.
func decodeStrict(stream []byte) ([]runtime.Object, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []runtime.Object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if j, err := yaml.YAMLToJSON(doc); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		} else if string(j) == "null" { // comments only
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		objs = append(objs, obj)
	}
}

// validateMeta applies the API server's rules for names, labels and
// annotations.
func validateMeta(obj runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	name, namespaced := apivalidation.NameIsDNSSubdomain, true
	switch obj.(type) {
	case *corev1.Namespace:
		name, namespaced = apivalidation.ValidateNamespaceName, false
	case *corev1.Service:
		name = apivalidation.NameIsDNS1035Label
	}
	return apivalidation.ValidateObjectMetaAccessor(m, namespaced, name, field.NewPath("metadata"))
}

// build runs kustomize on deploy/k8s, as kubectl apply -k does, and decodes
// what it would send, together with the Secrets created apart
// (secret.example.yaml).
func build(t *testing.T) []runtime.Object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s: %v", err)
	}
	stream, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeStrict(stream)
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s: %v", err)
	}
	secrets, err := os.ReadFile(filepath.Join(k8sDir, "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	more, err := decodeStrict(secrets)
	if err != nil {
		t.Fatalf("secret.example.yaml: %v", err)
	}
	return append(objs, more...)
}

// TestKubernetesFilesDecodeStrictly decodes each file on its own, so that an
// error names the file, and checks that none is left out of the
// kustomization by mistake.
func TestKubernetesFilesDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", k8sDir, err)
	}
	kustomization, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeStrict(b)
		if err != nil {
			t.Errorf("%s: %v", base, err)
		} else if len(objs) == 0 {
			t.Errorf("%s: no object", base)
		}
		for _, obj := range objs {
			m, err := meta.Accessor(obj)
			if err != nil {
				t.Fatal(err)
			}
			if _, isNamespace := obj.(*corev1.Namespace); !isNamespace && m.GetNamespace() == "" {
				m.SetNamespace("passerelle") // set by the kustomization
			}
			if errs := validateMeta(obj); len(errs) > 0 {
				t.Errorf("%s: %T %s: %v", base, obj, m.GetName(), errs.ToAggregate())
			}
		}
		if listed := bytes.Contains(kustomization, []byte("  - "+base+"\n")); listed == (base == "secret.example.yaml") {
			t.Errorf("%s: listed in kustomization.yaml: %v (only secret.example.yaml stays out)", base, listed)
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	objs := build(t)
	var (
		deployments  = map[string]*appsv1.Deployment{}
		statefulSets = map[string]*appsv1.StatefulSet{}
		services     = map[string]*corev1.Service{}
		configMaps   = map[string]*corev1.ConfigMap{}
		secrets      = map[string]*corev1.Secret{}
		claims       = map[string]*corev1.PersistentVolumeClaim{}
		policies     []*networkingv1.NetworkPolicy
		budgets      []*policyv1.PodDisruptionBudget
		pods         = map[string]*corev1.PodTemplateSpec{} // workload → its pods
		templates    = map[string][]string{}                // StatefulSet → its volume claim templates
	)
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil {
			t.Fatal(err)
		}
		kind := fmt.Sprintf("%T", obj)
		if errs := validateMeta(obj); len(errs) > 0 {
			t.Errorf("%s %s: %v", kind, m.GetName(), errs.ToAggregate())
		}
		if _, isNamespace := obj.(*corev1.Namespace); !isNamespace && m.GetNamespace() != "passerelle" {
			t.Errorf("%s %s: namespace %q", kind, m.GetName(), m.GetNamespace())
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			deployments[o.Name], pods[o.Name] = o, &o.Spec.Template
			checkSelector(t, o.Name, o.Spec.Selector, o.Spec.Template.Labels)
		case *appsv1.StatefulSet:
			statefulSets[o.Name], pods[o.Name] = o, &o.Spec.Template
			for _, c := range o.Spec.VolumeClaimTemplates {
				templates[o.Name] = append(templates[o.Name], c.Name)
			}
			checkSelector(t, o.Name, o.Spec.Selector, o.Spec.Template.Labels)
		case *corev1.Service:
			services[o.Name] = o
		case *corev1.ConfigMap:
			configMaps[o.Name] = o
		case *corev1.Secret:
			secrets[o.Name] = o
		case *corev1.PersistentVolumeClaim:
			claims[o.Name] = o
		case *networkingv1.NetworkPolicy:
			policies = append(policies, o)
		case *policyv1.PodDisruptionBudget:
			budgets = append(budgets, o)
		case *corev1.Namespace:
		default:
			t.Errorf("unexpected %s %s", kind, m.GetName())
		}
	}

	// every pod: what it refers to exists, probes hit declared ports, it runs
	// without privileges and with resources declared
	for workload, pod := range pods {
		checkPod(t, workload, pod, templates[workload], configMaps, secrets, claims)
	}
	for _, s := range statefulSets {
		if services[s.Spec.ServiceName] == nil {
			t.Errorf("StatefulSet %s: no Service %s", s.Name, s.Spec.ServiceName)
		}
	}
	// every Service selects pods that declare its target port
	for _, s := range services {
		var selected []string
		for workload, pod := range pods {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
				selected = append(selected, workload)
				for _, port := range s.Spec.Ports {
					if !hasPort(pod, port.TargetPort) {
						t.Errorf("Service %s: %s has no port %s", s.Name, workload, port.TargetPort.String())
					}
				}
			}
		}
		if len(selected) != 1 {
			t.Errorf("Service %s selects %v, want one workload", s.Name, selected)
		}
	}
	for _, b := range budgets {
		checkSelects(t, "PodDisruptionBudget "+b.Name, b.Spec.Selector, pods, 1)
	}
	for _, np := range policies {
		checkSelects(t, "NetworkPolicy "+np.Name, &np.Spec.PodSelector, pods, 1)
		for _, rule := range np.Spec.Ingress {
			for _, from := range rule.From {
				checkSelects(t, "NetworkPolicy "+np.Name+" from", from.PodSelector, pods, 2)
			}
		}
	}

	// Passerelle: two API replicas and one projector, on the same settings and keys
	known := passerelleEnv(t)
	config := configMaps["passerelle"]
	if config == nil {
		t.Fatal("no ConfigMap passerelle")
	}
	for key := range config.Data {
		if !known[key] {
			t.Errorf("ConfigMap passerelle: %s is not a setting of passerelle serve", key)
		}
	}
	for name, want := range map[string]struct {
		role     string
		replicas int32
	}{"passerelle-api": {"api", 2}, "passerelle-projector": {"projector", 1}} {
		d := deployments[name]
		if d == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != want.replicas {
			t.Errorf("%s: replicas %v, want %d", name, d.Spec.Replicas, want.replicas)
		}
		c := d.Spec.Template.Spec.Containers[0]
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
			if !known[e.Name] {
				t.Errorf("%s: %s is not a setting of passerelle serve", name, e.Name)
			}
		}
		if env["PASSERELLE_ROLE"].Value != want.role {
			t.Errorf("%s: role %q, want %s", name, env["PASSERELLE_ROLE"].Value, want.role)
		}
		for _, key := range []string{"PASSERELLE_TOKEN_KEY", "PASSERELLE_EVENTSTORE"} {
			if env[key].ValueFrom == nil || env[key].ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s: %s does not come from a Secret", name, key)
			}
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness is not /readyz", name)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness is not /healthz", name)
		}
		if !mountsClaim(&d.Spec.Template, c, config.Data["PASSERELLE_DATA_DIR"], "passerelle-data") {
			t.Errorf("%s: %s is not the shared claim passerelle-data", name, config.Data["PASSERELLE_DATA_DIR"])
		}
		if !mountsSecretFile(&d.Spec.Template, c, "/etc/passerelle/kurrentdb-ca/ca.crt", "kurrentdb-ca") ||
			!strings.Contains(string(secrets["passerelle"].Data["eventstore-url"])+secrets["passerelle"].StringData["eventstore-url"], "tlsCAFile=/etc/passerelle/kurrentdb-ca/ca.crt") {
			t.Errorf("%s: the connection string's tlsCAFile is not the mounted kurrentdb-ca", name)
		}
	}
	if c := claims["passerelle-data"]; c == nil || !slices.Equal(c.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
		t.Errorf("the personal-data keys' claim is not ReadWriteMany")
	}

	// Redis: the read models' settings, read by redis-server itself
	redis := statefulSets["redis"]
	if redis == nil {
		t.Fatal("no StatefulSet redis")
	}
	c := redis.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"redis-server", "/etc/redis/redis.conf"}) || configMaps["redis"] == nil {
		t.Fatalf("redis does not run with the ConfigMap redis's redis.conf: %v", c.Args)
	}
	conf := configMaps["redis"].Data["redis.conf"]
	if !strings.Contains(conf, "\ndir /data\n") || !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/data" }) {
		t.Errorf("redis.conf's dir is not the mounted /data")
	}
	file := filepath.Join(t.TempDir(), "redis.conf")
	// its own directory instead of /data, which does not exist here
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(conf, "\ndir /data\n", "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	checkRedisConfig(t, "ConfigMap redis", file)
}

func checkSelector(t *testing.T, name string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %v does not select its pods %v (%v)", name, sel, podLabels, err)
	}
}

// checkSelects checks that a selector picks exactly n workloads' pods.
func checkSelects(t *testing.T, what string, sel *metav1.LabelSelector, pods map[string]*corev1.PodTemplateSpec, n int) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	var picked []string
	for workload, pod := range pods {
		if s.Matches(labels.Set(pod.Labels)) {
			picked = append(picked, workload)
		}
	}
	if len(picked) != n {
		t.Errorf("%s selects %v, want %d workload(s)", what, picked, n)
	}
}

func checkPod(t *testing.T, workload string, pod *corev1.PodTemplateSpec, claimTemplates []string, configMaps map[string]*corev1.ConfigMap,
	secrets map[string]*corev1.Secret, claims map[string]*corev1.PersistentVolumeClaim) {
	t.Helper()
	spec := pod.Spec
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pods may run as root", workload)
	}
	volumes := map[string]corev1.Volume{}
	for _, name := range claimTemplates {
		volumes[name] = corev1.Volume{Name: name}
	}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil && configMaps[v.ConfigMap.Name] == nil:
			t.Errorf("%s: volume %s: no ConfigMap %s", workload, v.Name, v.ConfigMap.Name)
		case v.Secret != nil && secrets[v.Secret.SecretName] == nil:
			t.Errorf("%s: volume %s: no Secret %s", workload, v.Name, v.Secret.SecretName)
		case v.PersistentVolumeClaim != nil && claims[v.PersistentVolumeClaim.ClaimName] == nil:
			t.Errorf("%s: volume %s: no PersistentVolumeClaim %s", workload, v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	for _, c := range spec.Containers {
		for _, msg := range utilvalidation.IsDNS1123Label(c.Name) {
			t.Errorf("%s: container name %q: %s", workload, c.Name, msg)
		}
		for _, p := range c.Ports {
			for _, msg := range utilvalidation.IsValidPortName(p.Name) {
				t.Errorf("%s: port name %q: %s", workload, p.Name, msg)
			}
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if probe != nil && probe.HTTPGet != nil && !hasPort(pod, probe.HTTPGet.Port) {
				t.Errorf("%s: probe on port %s, which %s does not declare", workload, probe.HTTPGet.Port.String(), c.Name)
			}
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: %s has no readiness or liveness probe", workload, c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: %s lacks CPU and memory requests or a memory limit", workload, c.Name)
		}
		if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: %s keeps privileges", workload, c.Name)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s: %s mounts an undeclared volume %s", workload, c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			for _, msg := range utilvalidation.IsEnvVarName(e.Name) {
				t.Errorf("%s: env %q: %s", workload, e.Name, msg)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if s := secrets[ref.Name]; s == nil || (s.StringData[ref.Key] == "" && len(s.Data[ref.Key]) == 0) {
					t.Errorf("%s: %s: no key %s in Secret %s", workload, e.Name, ref.Key, ref.Name)
				}
			}
		}
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil && configMaps[from.ConfigMapRef.Name] == nil {
				t.Errorf("%s: no ConfigMap %s", workload, from.ConfigMapRef.Name)
			}
		}
	}
}

// hasPort reports whether a pod's containers declare a port, by name or number.
func hasPort(pod *corev1.PodTemplateSpec, port intstr.IntOrString) bool {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

func mountsClaim(pod *corev1.PodTemplateSpec, c corev1.Container, path, claim string) bool {
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && m.MountPath == path && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim && !m.ReadOnly {
				return true
			}
		}
	}
	return false
}

func mountsSecretFile(pod *corev1.PodTemplateSpec, c corev1.Container, path, secret string) bool {
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secret && filepath.Dir(path) == m.MountPath {
				return true
			}
		}
	}
	return false
}
