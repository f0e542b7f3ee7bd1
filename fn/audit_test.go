package fn_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/protobuf/encoding/protojson"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/test/requests"
)

// This file audits what the function composes for every example at every
// stage: pods meet the Pod Security restricted profile and the project's
// secure defaults, and no Secret value ever leaves the Secret.

// auditRun is one example stage run through the function: every response
// of the reconcile (first call, then with the requirements answered until
// they settle, then once more with its composed objects observed as ready,
// which exercises the paths that carry observed objects forward) and the
// function's log at debug level.
type auditRun struct {
	responses []*fnv1.RunFunctionResponse
	log       string
}

// auditReconcile runs a case with a function logging at debug level into a
// buffer.
func auditReconcile(t *testing.T, c exCase) auditRun {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	sink := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&buf, "%s %s\n", prefix, args)
	}, funcr.Options{Verbosity: 1})
	f := fn.New(logging.NewLogrLogger(sink))

	var run auditRun
	converge := func(c exCase) *fnv1.RunFunctionResponse {
		_, rsp, err := composetest.Converge(f, c.xr, c.input, c.observed, c.pool, func(rsp *fnv1.RunFunctionResponse) {
			run.responses = append(run.responses, rsp)
		})
		if err != nil {
			t.Fatal(err)
		}
		return rsp
	}
	rsp := converge(c)
	next := c
	next.xr = withStatusOf(t, c.xr, rsp)
	next.observed = applied(t, c.xr, c.observed, rsp, true)
	converge(next)
	run.log = buf.String()
	return run
}

// restricted is the Pod Security Standard every composed pod meets.
var restricted = api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

// credentialEnv are the environment variables that carry credentials: they
// must come from a Secret reference, never a value.
var credentialEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "TRITON_API_KEY"}

// TestPodSecurity checks every composed pod template against the Pod
// Security restricted profile with the Pod Security Admission library
// itself, and against the project's secure defaults (ARCHITECTURE.md §7):
// non-root, no privilege escalation, all capabilities dropped, seccomp
// RuntimeDefault, a read-only root file system, no service-account token
// unless a service account is set, credentials only through secretKeyRef.
func TestPodSecurity(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pods := 0
	for _, c := range exCases(t) {
		t.Run(c.name, func(t *testing.T) {
			for i, rsp := range auditReconcile(t, c).responses {
				for name, r := range rsp.GetDesired().GetResources() {
					if r.GetResource().AsMap()["kind"] != "Deployment" {
						continue
					}
					pods++
					d := &appsv1.Deployment{}
					b, err := r.GetResource().MarshalJSON()
					if err != nil {
						t.Fatal(err)
					}
					if err := json.Unmarshal(b, d); err != nil {
						t.Fatalf("%s does not decode: %v", name, err)
					}
					where := fmt.Sprintf("response %d, %s", i+1, name)
					for _, res := range evaluator.EvaluatePod(restricted, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec) {
						if !res.Allowed {
							t.Errorf("%s: the pod is not Pod Security %s: %s: %s", where, restricted.Level, res.ForbiddenReason, res.ForbiddenDetail)
						}
					}
					auditPodDefaults(t, where, &d.Spec.Template.Spec)
				}
			}
		})
	}
	if pods == 0 {
		t.Fatal("no example composes a Deployment")
	}
	t.Logf("checked %d composed pod templates", pods)
}

func auditPodDefaults(t *testing.T, where string, pod *corev1.PodSpec) {
	t.Helper()
	sc := pod.SecurityContext
	switch {
	case sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("%s: the pod does not set runAsNonRoot", where)
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Errorf("%s: the pod runs as uid %v", where, sc.RunAsUser)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: the pod's seccomp profile is not RuntimeDefault", where)
	}
	token := pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken
	if token && pod.ServiceAccountName == "" {
		t.Errorf("%s: the pod mounts a service-account token without a service account of its own", where)
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: volume %s is a hostPath", where, v.Name)
		}
		if v.Secret != nil && len(v.Secret.Items) == 0 {
			t.Errorf("%s: volume %s mounts a whole Secret; mount only the keys it needs", where, v.Name)
		}
	}
	for _, ct := range slices.Concat(pod.InitContainers, pod.Containers) {
		csc := ct.SecurityContext
		switch {
		case csc == nil:
			t.Errorf("%s: container %s has no security context", where, ct.Name)
			continue
		case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
			t.Errorf("%s: container %s allows privilege escalation", where, ct.Name)
		case csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0:
			t.Errorf("%s: container %s does not drop every capability", where, ct.Name)
		case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
			t.Errorf("%s: container %s has a writable root file system", where, ct.Name)
		case csc.Privileged != nil && *csc.Privileged:
			t.Errorf("%s: container %s is privileged", where, ct.Name)
		}
		if len(ct.EnvFrom) > 0 {
			t.Errorf("%s: container %s imports whole Secrets or ConfigMaps with envFrom", where, ct.Name)
		}
		for _, e := range ct.Env {
			if slices.Contains(credentialEnv, e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s: container %s sets credential %s other than through a secretKeyRef", where, ct.Name, e.Name)
			}
		}
	}
}

// TestNoSecretValuesLeak: the function reads Secrets only for their key
// names. Every Secret of every example stage carries marker values (the
// examples' own, "SECRET-MARKER-…", plus a unique marker added here under a
// data key and a stringData key), and an extra Secret with its own marker
// sits in the XR's namespace. No marker may appear, base64 or decoded,
// anywhere in what the function produces: desired objects, composite status,
// conditions, results, requirements, or its debug log.
func TestNoSecretValuesLeak(t *testing.T) {
	scanned, logged := 0, false
	for i, c := range exCases(t) {
		t.Run(c.name, func(t *testing.T) {
			c.pool = slices.Clone(c.pool)
			var markers []string
			for j, o := range c.pool {
				if o["kind"] != "Secret" || o["apiVersion"] != "v1" {
					continue
				}
				o = requests.DeepCopy(o)
				data := requests.EnsureMap(o, "data")
				for _, k := range slices.Sorted(maps.Keys(data)) {
					if v, _ := data[k].(string); len(v) >= 8 {
						markers = append(markers, v)
					}
				}
				for _, v := range requests.EnsureMap(o, "stringData") {
					if s, _ := v.(string); len(s) >= 8 {
						markers = append(markers, s)
					}
				}
				m := fmt.Sprintf("KALYPSO-AUDIT-%02d-%02d-DATA-7f3c9e", i, j)
				p := fmt.Sprintf("KALYPSO-AUDIT-%02d-%02d-PLAIN-1a8d4b", i, j)
				data["kalypso-audit"] = base64.StdEncoding.EncodeToString([]byte(m))
				requests.EnsureMap(o, "stringData")["kalypso-audit-plain"] = p
				markers = append(markers, data["kalypso-audit"].(string), p)
				c.pool[j] = o
			}
			ns := auditNamespace(c)
			own := fmt.Sprintf("KALYPSO-AUDIT-%02d-OWN-SECRET-5e2b7c", i)
			c.pool = append(c.pool, map[string]any{
				"apiVersion": "v1", "kind": "Secret",
				"metadata": map[string]any{"name": "kalypso-audit", "namespace": ns},
				"data":     map[string]any{"token": base64.StdEncoding.EncodeToString([]byte(own))},
			})
			markers = append(markers, base64.StdEncoding.EncodeToString([]byte(own)))

			run := auditReconcile(t, c)
			var out strings.Builder
			for _, rsp := range run.responses {
				b, err := protojson.Marshal(rsp)
				if err != nil {
					t.Fatal(err)
				}
				out.Write(b)
				out.WriteByte('\n')
			}
			out.WriteString(run.log)
			text := out.String()
			logged = logged || strings.Contains(run.log, `"msg"="composed"`)
			for _, m := range markers {
				forms := []string{m}
				if d, err := base64.StdEncoding.DecodeString(m); err == nil && len(d) >= 8 {
					forms = append(forms, string(d))
				} else {
					forms = append(forms, base64.StdEncoding.EncodeToString([]byte(m)))
				}
				for _, f := range forms {
					scanned++
					if strings.Contains(text, f) {
						t.Errorf("secret value %q appears in the function's output", f)
					}
				}
			}
		})
	}
	if scanned == 0 {
		t.Fatal("no secret value was scanned for")
	}
	if !logged {
		t.Error("the debug log was not captured: no \"composed\" message")
	}
	t.Logf("scanned for %d secret value forms", scanned)
}

// auditNamespace is the namespace a case's XR works in.
func auditNamespace(c exCase) string {
	md, _ := c.xr["metadata"].(map[string]any)
	if ns, _ := md["namespace"].(string); ns != "" {
		return ns
	}
	if l, ok := md["labels"].(map[string]any); ok {
		if ns, _ := l["crossplane.io/claim-namespace"].(string); ns != "" {
			return ns
		}
	}
	return "default"
}
