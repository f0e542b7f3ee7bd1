//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Kinds of the v2 flavour (and the claim kinds of the claims flavour, which
// have the same names).
const (
	kindApplication = "KalypsoApplication"
	kindServer      = "KalypsoTritonServer"

	apiVersionProtection = "protection.crossplane.io/v1beta1"
	labelTritonServer    = "kalypso-serving.io/tritonserver"
)

// env is one environment of a test project.
type env struct {
	name, namespace string
	// gpus is the environment's GPU quota; "" means no quota at all.
	gpus string
}

// projectYAML is a project with the given environments; those with a GPU
// quota also bound cpu and memory, like examples/projects/vision.yaml.
func projectYAML(name string, envs ...env) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoProject\nmetadata: {name: %s}\nspec:\n  owner: e2e\n  environments:\n", name)
	for _, e := range envs {
		fmt.Fprintf(&b, "    %s:\n      namespace: %s\n", e.name, e.namespace)
		if e.gpus != "" {
			fmt.Fprintf(&b, "      resourceQuota: {limits: {cpu: \"64\", memory: 256Gi, nvidia.com/gpu: %q}}\n", e.gpus)
		}
	}
	return b.String()
}

// environmentSecrets provisions what the platform and the application team
// put in an environment namespace: the S3 credentials an application names
// (models-s3) and the platform's Triton API key Secret.
func environmentSecrets(t testing.TB, ns string) {
	t.Helper()
	applyYAML(t, storageSecretYAML(ns)+"---\n"+apiKeySecretYAML(ns))
}

// applicationYAML is an application on S3 with the models-s3 Secret.
func applicationYAML(name, ns, project string) string {
	return fmt.Sprintf(`
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoApplication
metadata: {name: %s, namespace: %s}
spec:
  projectRef: %s
  storage: {secretName: models-s3, region: eu-west-1}
`, name, ns, project)
}

// server is a KalypsoTritonServer built in Go, re-applied whole after each
// change (server-side apply then removes what it no longer sets).
type server struct {
	Name, Namespace string
	Spec            map[string]any
}

func newServer(name, ns, app string) *server {
	return &server{Name: name, Namespace: ns, Spec: map[string]any{
		"applicationRef": app,
		"storageUri":     "s3://e2e-models/" + name,
	}}
}

func (s *server) object() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersionKalypso, "kind": kindServer,
		"metadata": map[string]any{"name": s.Name, "namespace": s.Namespace},
		"spec":     s.Spec,
	}}
}

func (s *server) apply(t testing.TB) *unstructured.Unstructured {
	t.Helper()
	out, err := lab.Kube.apply(t.Context(), s.object())
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// waitReady waits until a Kalypso object is Ready and returns it.
func waitReady(t testing.TB, kind, ns, name string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	waitXRCondition(t, kind, ns, name, "Ready", "True", "", timeout)
	return mustGet(t, apiVersionKalypso, kind, ns, name)
}

// waitChecked reads a composite until check finds no problem and returns
// it; after timeout it reports the last read's problems as errors and
// returns that read.
func waitChecked(t testing.TB, kind, ns, name string, timeout time.Duration, check func(*unstructured.Unstructured) []string) *unstructured.Unstructured {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(200 * time.Millisecond) {
		u := mustGet(t, apiVersionKalypso, kind, ns, name)
		problems := check(u)
		if len(problems) == 0 {
			return u
		}
		if time.Now().After(deadline) {
			for _, p := range problems {
				t.Errorf("%s %s: %s", kind, nsName(ns, name), p)
			}
			return u
		}
	}
}

// waitExists waits until an object exists and returns it.
func waitExists(t testing.TB, apiVersion, kind, ns, name string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	var u *unstructured.Unstructured
	waitFor(t, fmt.Sprintf("%s %s exists", kind, nsName(ns, name)), timeout, func() (bool, string, error) {
		var err error
		u, err = lab.Kube.get(t.Context(), apiVersion, kind, ns, name)
		return u != nil, "absent", err
	})
	return u
}

// str reads a string field.
func str(u *unstructured.Unstructured, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	switch n := v.(type) {
	case string:
		return n
	case nil:
		return ""
	default:
		return fmt.Sprint(n)
	}
}

// integer reads an integer field (0 when absent).
func integer(u *unstructured.Unstructured, path ...string) int64 {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

func getDeployment(t testing.TB, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := lab.Kube.Typed.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// serverPods lists a server's pods.
func serverPods(t testing.TB, ns, server string) []corev1.Pod {
	t.Helper()
	l, err := lab.Kube.Typed.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: labelTritonServer + "=" + server})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// waitDeploymentAvailable waits until a Deployment has want replicas, all
// updated and available, and its pods Running; it returns the Deployment.
func waitDeploymentAvailable(t testing.TB, ns, name string, want int32, timeout time.Duration) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	waitFor(t, fmt.Sprintf("Deployment %s/%s available with %d replicas", ns, name, want), timeout, func() (bool, string, error) {
		var err error
		d, err = lab.Kube.Typed.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, "", client404(err)
		}
		s := d.Status
		ok := d.Spec.Replicas != nil && *d.Spec.Replicas == want && s.ObservedGeneration >= d.Generation &&
			s.Replicas == want && s.UpdatedReplicas == want && s.AvailableReplicas == want
		return ok, fmt.Sprintf("spec.replicas %v status %+v", ptrVal(d.Spec.Replicas), s), nil
	})
	return d
}

func ptrVal[T any](p *T) any {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// composedRef is an object a composite composed.
type composedRef struct {
	APIVersion, Kind, Namespace, Name string
}

func (r composedRef) String() string {
	return r.Kind + " " + nsName(r.Namespace, r.Name)
}

// composedRefs reads a composite's resource references (spec.crossplane.
// resourceRefs of a v2 XR, spec.resourceRefs of a legacy one). A namespaced
// XR's references without a namespace are in its own namespace, unless the
// kind is cluster scoped.
func composedRefs(t testing.TB, xr *unstructured.Unstructured) []composedRef {
	t.Helper()
	refs, found, _ := unstructured.NestedSlice(xr.Object, "spec", "crossplane", "resourceRefs")
	if !found {
		refs, _, _ = unstructured.NestedSlice(xr.Object, "spec", "resourceRefs")
	}
	var out []composedRef
	for _, r := range refs {
		m, _ := r.(map[string]any)
		s := func(k string) string { v, _ := m[k].(string); return v }
		ref := composedRef{APIVersion: s("apiVersion"), Kind: s("kind"), Namespace: s("namespace"), Name: s("name")}
		if ref.Namespace == "" && xr.GetNamespace() != "" && lab.Kube.namespaced(t, ref.APIVersion, ref.Kind) {
			ref.Namespace = xr.GetNamespace()
		}
		out = append(out, ref)
	}
	return out
}

// namespaced reports whether a kind is namespaced.
func (k *kube) namespaced(t testing.TB, apiVersion, kind string) bool {
	m, err := k.resourceFor(t.Context(), schema.FromAPIVersionAndKind(apiVersion, kind))
	if err != nil {
		t.Fatal(err)
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace
}

// uidSnapshot maps to their UIDs the project, the Kalypso composites of
// the given namespaces (claims and their composites in the claim flavour),
// everything they composed, the Usages and the pods of those namespaces.
func uidSnapshot(t testing.TB, project string, namespaces ...string) map[string]types.UID {
	t.Helper()
	snap := map[string]types.UID{}
	add := func(u *unstructured.Unstructured) {
		snap[u.GetKind()+" "+nsName(u.GetNamespace(), u.GetName())] = u.GetUID()
	}
	ours := func(u *unstructured.Unstructured) bool {
		ns := u.GetNamespace()
		if ns == "" {
			ns = u.GetLabels()["crossplane.io/claim-namespace"]
		}
		return slices.Contains(namespaces, ns) || (u.GetKind() == kindProject && u.GetName() == project)
	}
	kinds := []string{kindProject, kindApplication, kindServer}
	if lab.Flavour == flavourClaims {
		kinds = append(kinds, "XKalypsoApplication", "XKalypsoTritonServer")
	}
	for _, kind := range kinds {
		items, err := lab.Kube.list(t.Context(), apiVersionKalypso, kind, "")
		if err != nil {
			t.Fatal(err)
		}
		for i := range items {
			xr := &items[i]
			if !ours(xr) {
				continue
			}
			add(xr)
			for _, ref := range composedRefs(t, xr) {
				u, err := lab.Kube.get(t.Context(), ref.APIVersion, ref.Kind, ref.Namespace, ref.Name)
				if err != nil {
					t.Fatal(err)
				}
				if u != nil {
					add(u)
				}
			}
		}
	}
	for _, ns := range namespaces {
		usages, err := lab.Kube.list(t.Context(), apiVersionProtection, "Usage", ns)
		if err != nil {
			t.Fatal(err)
		}
		for i := range usages {
			add(&usages[i])
		}
		pods, err := lab.Kube.Typed.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			snap["Pod "+ns+"/"+p.Name] = p.UID
		}
	}
	if u, err := lab.Kube.get(t.Context(), apiVersionProtection, "ClusterUsage", "", "kalypsoproject-"+project); err != nil {
		t.Fatal(err)
	} else if u != nil {
		add(u)
	}
	return snap
}

// compareSnapshots lists what was deleted, recreated (same name, new UID)
// or created between two snapshots.
func compareSnapshots(before, after map[string]types.UID) (gone, recreated, created []string) {
	for k, uid := range before {
		switch got, ok := after[k]; {
		case !ok:
			gone = append(gone, k)
		case got != uid:
			recreated = append(recreated, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			created = append(created, k)
		}
	}
	sort.Strings(gone)
	sort.Strings(recreated)
	sort.Strings(created)
	return gone, recreated, created
}

// deleteEventually deletes an object, retrying while an admission webhook
// refuses it (a Usage), and waits until it is gone. It returns how many
// deletes were refused and the first refusal.
func deleteEventually(ctx context.Context, apiVersion, kind, ns, name string, timeout time.Duration) (refused int, first error, err error) {
	deadline := time.Now().Add(timeout)
	accepted := false
	for {
		if !accepted {
			derr := lab.Kube.del(ctx, apiVersion, kind, ns, name)
			switch {
			case derr == nil:
				accepted = true
			case apierrors.IsNotFound(derr):
				return refused, first, nil
			default:
				if first == nil {
					first = derr
				}
				refused++
			}
		}
		if accepted {
			u, gerr := lab.Kube.get(ctx, apiVersion, kind, ns, name)
			if gerr == nil && u == nil {
				return refused, first, nil
			}
		}
		if time.Now().After(deadline) {
			state := "its delete was never accepted"
			if accepted {
				state = "accepted but not gone"
			}
			return refused, first, fmt.Errorf("%s %s: %s after %s (refused %d times, first: %v)", kind, nsName(ns, name), state, timeout, refused, first)
		}
		select {
		case <-ctx.Done():
			return refused, first, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// teardown removes what a scenario created, in the order deletion
// protection allows: servers, then applications, then (in the background,
// since a project drops its ClusterUsage only at its next poll) the project
// and its namespaces. It is registered with t.Cleanup at the start of a
// scenario, so it also runs after a failure; on success the scenario has
// usually deleted most of it already.
func teardown(t *testing.T, project string, namespaces ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, kind := range []string{kindServer, kindApplication} {
			for _, ns := range namespaces {
				items, err := lab.Kube.list(ctx, apiVersionKalypso, kind, ns)
				if err != nil {
					t.Logf("teardown: list %s in %s: %v", kind, ns, err)
					continue
				}
				for _, it := range items {
					_ = lab.Kube.del(ctx, apiVersionKalypso, kind, ns, it.GetName())
				}
				for _, it := range items {
					if _, _, err := deleteEventually(ctx, apiVersionKalypso, kind, ns, it.GetName(), 90*time.Second); err != nil {
						t.Errorf("teardown: %v", err)
					}
				}
			}
		}
		background("delete project "+project, func(ctx context.Context) error { return deleteProject(ctx, project, namespaces...) })
	})
}

// deleteProject releases and deletes a project and waits until it and its
// namespaces are gone.
func deleteProject(ctx context.Context, project string, namespaces ...string) error {
	if err := releaseProject(ctx, project); err != nil {
		return err
	}
	if _, _, err := deleteEventually(ctx, apiVersionKalypso, kindProject, "", project, backgroundTimeout-time.Minute); err != nil {
		return err
	}
	for _, ns := range namespaces {
		if _, _, err := deleteEventually(ctx, "v1", "Namespace", "", ns, 60*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// releaseProject sets spec.release: true, the step that lets a project be
// deleted once no application lives in its environments (a missing project
// is not an error).
func releaseProject(ctx context.Context, project string) error {
	c, err := lab.Kube.client(ctx, schema.FromAPIVersionAndKind(apiVersionKalypso, kindProject), "")
	if err != nil {
		return err
	}
	_, err = c.Patch(ctx, project, types.MergePatchType, []byte(`{"spec":{"release":true}}`), metav1.PatchOptions{FieldManager: fieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// sample is one Prometheus sample.
type sample struct {
	name, labels string
	value        float64
}

// scrape reads a Prometheus text endpoint.
func scrape(addr string) ([]sample, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s/metrics: %s: %s", addr, resp.Status, b)
	}
	return parseSamples(resp.Body)
}

// parseSamples reads the Prometheus text format.
func parseSamples(r io.Reader) ([]sample, error) {
	var out []sample
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		key := line[:i]
		name, labels := key, ""
		if j := strings.IndexByte(key, '{'); j >= 0 {
			name, labels = key[:j], key[j:]
		}
		out = append(out, sample{name: name, labels: labels, value: v})
	}
	return out, s.Err()
}

// sum adds the samples of a metric whose labels contain every given
// substring; found is false when no sample matched.
func sum(samples []sample, name string, labelParts ...string) (total float64, found bool) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		ok := true
		for _, p := range labelParts {
			ok = ok && strings.Contains(s.labels, p)
		}
		if ok {
			total += s.value
			found = true
		}
	}
	return total, found
}

// replicasOwners lists the field managers that own a Deployment's
// spec.replicas, with their operation and subresource.
func replicasOwners(d *appsv1.Deployment) []string {
	var out []string
	for _, mf := range d.ManagedFields {
		if mf.FieldsV1 != nil && ownsSpecReplicas(mf.FieldsV1.Raw) {
			out = append(out, fmt.Sprintf("%s (%s%s)", mf.Manager, mf.Operation, subresource(mf.Subresource)))
		}
	}
	return out
}

func subresource(s string) string {
	if s == "" {
		return ""
	}
	return ", subresource " + s
}

// ownsSpecReplicas reads a managedFields entry: does it hold f:spec.f:replicas?
func ownsSpecReplicas(raw []byte) bool {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return false
	}
	spec, _ := fields["f:spec"].(map[string]any)
	_, ok := spec["f:replicas"]
	return ok
}

// readRepoFile reads a file of the repository.
func readRepoFile(path string) ([]byte, error) {
	return os.ReadFile(lab.repoPath(path))
}

// specChangeWait bounds how long a composite may take to act on its own
// spec change. Crossplane core acts at once, unless its circuit breaker
// stopped watching the composite (see checkResponsive): the change then
// waits for the composite's next poll (a minute, ±10 % jitter, while
// Ready; compose.BreakerTTL). Waits for a spec change's effect allow that
// much so the scenario goes on; slowSpecChange reports it.
const specChangeWait = 90 * time.Second

// slowSpecChange records a finding when a composite took longer than a
// watch event takes to act on its spec change.
func slowSpecChange(t *testing.T, what string, applied time.Time) {
	t.Helper()
	if took := time.Since(applied); took > 20*time.Second {
		finding(t, "%s only %s after the spec change; expected within seconds (was the composite's circuit breaker open?)", what, took.Round(time.Second))
	}
}

// seenConditions remembers every condition one composite has shown (type,
// status, reason and message), to tell a state seen before. Crossplane
// core's status apply re-applies the conditions of the composite as core
// last read it from its cache (composition_functions.go, "Include any
// pending conditions"): a reconcile that read a stale copy puts earlier
// conditions back for a moment (README, "Crossplane versions"), merged
// into the live list, so the list as a whole may be new while each of its
// conditions is not.
type seenConditions map[string]bool

// add records u's conditions and returns those not seen before, as
// type=status/reason, and whether u is a state core put back: it shows
// conditions, every one of them seen before.
func (s seenConditions) add(u *unstructured.Unstructured) (fresh []string, replayed bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		key := fmt.Sprint(m["type"], "\x00", m["status"], "\x00", m["reason"], "\x00", m["message"])
		if !s[key] {
			fresh = append(fresh, fmt.Sprintf("%v=%v/%v", m["type"], m["status"], m["reason"]))
		}
		s[key] = true
	}
	return fresh, len(conds) > 0 && len(fresh) == 0
}
