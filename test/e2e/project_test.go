//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const kindProject = "KalypsoProject"

// TestKalypsoProject walks a project through its life: create, quota
// enforcement, foreign and adopted namespaces, removal of an environment
// that still holds an application, and deletion.
func TestKalypsoProject(t *testing.T) {
	requireFlavour(t, flavourV2)
	visionNS := map[string]string{"dev": "vision-dev", "stage": "vision-stage", "prod": "vision-prod"}
	psLevel := map[string]string{"dev": "restricted", "stage": "baseline", "prod": "restricted"}
	uids := map[string]types.UID{}

	step(t, "Create", func(t *testing.T) {
		applyFile(t, "examples/projects/vision.yaml")
		waitXRCondition(t, kindProject, "", "vision", "Ready", "True", "", 90*time.Second)
		xr := mustGet(t, apiVersionKalypso, kindProject, "", "vision")
		for _, c := range []string{"Synced", "NamespacesOwned", "EnvironmentsReady", "EnvironmentRemoval"} {
			if got := getCondition(xr, c); got.Status != "True" {
				t.Errorf("condition %s = %+v, want True", c, got)
			}
		}
		if phase, _, _ := unstructured.NestedString(xr.Object, "status", "phase"); phase != "Ready" {
			t.Errorf("status.phase = %q, want Ready", phase)
		}
		created, _, _ := unstructured.NestedStringSlice(xr.Object, "status", "createdNamespaces")
		if want := []string{"vision-dev", "vision-prod", "vision-stage"}; !slices.Equal(created, want) {
			t.Errorf("status.createdNamespaces = %v, want %v", created, want)
		}

		for env, ns := range visionNS {
			n := getNamespace(t, ns)
			if n == nil {
				t.Fatalf("namespace %s does not exist", ns)
			}
			uids[ns] = n.UID
			if n.Status.Phase != corev1.NamespaceActive {
				t.Errorf("namespace %s phase %s, want Active", ns, n.Status.Phase)
			}
			for k, v := range map[string]string{
				"kalypso-serving.io/project":         "vision",
				"kalypso-serving.io/environment":     env,
				"app.kubernetes.io/managed-by":       "kalypso-serving",
				"pod-security.kubernetes.io/enforce": psLevel[env],
				"pod-security.kubernetes.io/audit":   psLevel[env],
				"pod-security.kubernetes.io/warn":    psLevel[env],
			} {
				if got := n.Labels[k]; got != v {
					t.Errorf("namespace %s label %s = %q, want %q", ns, k, got, v)
				}
			}
			if !controlledBy(n.OwnerReferences, xr.GetUID()) {
				t.Errorf("namespace %s is not controlled by the project: ownerReferences %v", ns, n.OwnerReferences)
			}
			for _, o := range []struct{ apiVersion, kind, name string }{
				{"v1", "ResourceQuota", "vision-" + env + "-quota"},
				{"v1", "LimitRange", "vision-" + env + "-limits"},
				{"networking.k8s.io/v1", "NetworkPolicy", "vision-" + env + "-default-deny-ingress"},
				{"networking.k8s.io/v1", "NetworkPolicy", "vision-" + env + "-allow-ingress"},
				{"rbac.authorization.k8s.io/v1", "RoleBinding", "vision-" + env + "-admins"},
				{"rbac.authorization.k8s.io/v1", "RoleBinding", "vision-" + env + "-editors"},
				{"rbac.authorization.k8s.io/v1", "RoleBinding", "vision-" + env + "-viewers"},
			} {
				u, err := lab.Kube.get(t.Context(), o.apiVersion, o.kind, ns, o.name)
				if err != nil {
					t.Fatal(err)
				}
				if u == nil {
					t.Errorf("%s %s/%s does not exist", o.kind, ns, o.name)
				} else if !controlledBy(ownerRefs(u), xr.GetUID()) {
					t.Errorf("%s %s/%s is not controlled by the project", o.kind, ns, o.name)
				}
			}
		}

		// Creating the project should not need retries. When the function
		// emits the objects inside a namespace before that namespace exists,
		// Crossplane applies them in random order, fails on the first one
		// whose namespace is missing, and retries with back-off.
		if warnings := xrWarnings(t, kindProject, "vision", "ComposeResources"); len(warnings) > 0 {
			finding(t, "creating project vision took %d failed compose attempts (Warning ComposeResources events), first: %s", len(warnings), warnings[0])
		}

		// The quota controller fills status.hard from spec.hard; GPUs only
		// exist as requests.<name> in a quota.
		q := waitQuotaStatus(t, "vision-prod", "vision-prod-quota")
		// A Ready project whose environments do not change keeps its
		// status still (once the quota controller filled every quota).
		for env, ns := range visionNS {
			waitQuotaStatus(t, ns, "vision-"+env+"-quota")
		}
		assertStill(t, kindProject, "", "vision", quietWindow)
		if got := q.Status.Hard[corev1.ResourceName("requests."+gpuResource)]; got.Cmp(resource.MustParse("8")) != 0 {
			t.Errorf("vision-prod quota status.hard[requests.%s] = %s, want 8 (hard: %v)", gpuResource, got.String(), q.Status.Hard)
		}
		for _, l := range []corev1.ResourceList{q.Spec.Hard, q.Status.Hard} {
			if _, ok := l[corev1.ResourceName("limits."+gpuResource)]; ok {
				t.Errorf("vision-prod quota holds limits.%s, which Kubernetes does not support for extended resources: %v", gpuResource, l)
			}
		}
	})

	step(t, "QuotaEnforced", func(t *testing.T) {
		// Admission needs the namespace's default service account and a
		// quota the quota controller has seen.
		waitFor(t, "service account vision-dev/default", 60*time.Second, func() (bool, string, error) {
			_, err := lab.Kube.Typed.CoreV1().ServiceAccounts("vision-dev").Get(t.Context(), "default", metav1.GetOptions{})
			return err == nil, fmt.Sprint(err), nil
		})
		waitQuotaStatus(t, "vision-dev", "vision-dev-quota")

		_, err := lab.Kube.Typed.CoreV1().Pods("vision-dev").Create(t.Context(), gpuPod("too-many-gpus", gpuResource, 2), metav1.CreateOptions{})
		if err == nil {
			t.Fatal("a pod asking for 2 GPUs in vision-dev (quota requests.nvidia.com/gpu: 1) was admitted")
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") || !strings.Contains(err.Error(), "requests."+gpuResource) {
			t.Fatalf("pod asking for 2 GPUs refused for the wrong reason: %v", err)
		}
		t.Logf("refused as expected: %v", err)

		// Within the quota the pod is admitted and scheduled on a fake GPU node.
		if _, err := lab.Kube.Typed.CoreV1().Pods("vision-dev").Create(t.Context(), gpuPod("one-gpu", gpuResource, 1), metav1.CreateOptions{}); err != nil {
			t.Fatalf("a pod asking for 1 GPU in vision-dev was refused: %v", err)
		}
		waitFor(t, "pod vision-dev/one-gpu Running on a GPU node", 60*time.Second, func() (bool, string, error) {
			p, err := lab.Kube.Typed.CoreV1().Pods("vision-dev").Get(t.Context(), "one-gpu", metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			return p.Status.Phase == corev1.PodRunning && slices.Contains(fakeNodes, p.Spec.NodeName),
				fmt.Sprintf("phase %s node %q conditions %v", p.Status.Phase, p.Spec.NodeName, p.Status.Conditions), nil
		})
		if err := lab.Kube.Typed.CoreV1().Pods("vision-dev").Delete(t.Context(), "one-gpu", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "v1", "Pod", "vision-dev", "one-gpu", 30*time.Second)
	})

	const marker = "e2e.kalypso-serving.io/marker"
	var mlProd, mlSandbox *corev1.Namespace
	var cm *corev1.ConfigMap
	step(t, "ForeignNamespace", func(t *testing.T) {
		var err error
		mlProd, err = lab.Kube.Typed.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "ml-prod", Labels: map[string]string{marker: "foreign", "team": "someone-else"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm, err = lab.Kube.Typed.CoreV1().ConfigMaps("ml-prod").Create(t.Context(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "keep-me"}, Data: map[string]string{"owner": "someone-else"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mlSandbox, err = lab.Kube.Typed.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "ml-sandbox", Labels: map[string]string{marker: "adopted"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}

		applyFile(t, "examples/projects/shared-namespaces.yaml")
		c := waitXRCondition(t, kindProject, "", "ml-platform", "NamespacesOwned", "False", "NamespaceNotOwned", 60*time.Second)
		if !strings.Contains(c.Message, "ml-prod") || strings.Contains(c.Message, "ml-sandbox") {
			t.Errorf("NamespacesOwned message should name ml-prod only: %q", c.Message)
		}
		t.Logf("NamespacesOwned=False: %s", c.Message)
		xr := mustGet(t, apiVersionKalypso, kindProject, "", "ml-platform")
		if phase, _, _ := unstructured.NestedString(xr.Object, "status", "phase"); phase != "Failed" {
			t.Errorf("status.phase = %q, want Failed", phase)
		}
		if r := getCondition(xr, "Ready"); r.Status == "True" {
			t.Errorf("ml-platform is Ready although it does not own ml-prod: %+v", r)
		}

		// The adopted namespace gets the project's objects, not an owner.
		waitFor(t, "quota ml-sandbox/ml-platform-sandbox-quota", 60*time.Second, func() (bool, string, error) {
			q, err := lab.Kube.Typed.CoreV1().ResourceQuotas("ml-sandbox").Get(t.Context(), "ml-platform-sandbox-quota", metav1.GetOptions{})
			if err != nil {
				return false, "", client404(err)
			}
			got := q.Spec.Hard[corev1.ResourceName("requests."+gpuResource)]
			return got.Cmp(resource.MustParse("2")) == 0, fmt.Sprintf("spec.hard %v", q.Spec.Hard), nil
		})
		if n := getNamespace(t, "ml-sandbox"); n == nil || n.UID != mlSandbox.UID || len(n.OwnerReferences) > 0 || !maps.Equal(n.Labels, withNameLabel(mlSandbox)) {
			t.Errorf("adopted namespace ml-sandbox changed: %s", toYAML(n))
		}

		// Nothing of the project lands in, or on, the foreign namespace.
		assertUntouched(t, mlProd, cm)
		for _, kind := range []struct{ apiVersion, kind string }{
			{"v1", "ResourceQuota"}, {"v1", "LimitRange"}, {"networking.k8s.io/v1", "NetworkPolicy"}, {"rbac.authorization.k8s.io/v1", "RoleBinding"},
		} {
			items, err := lab.Kube.list(t.Context(), kind.apiVersion, kind.kind, "ml-prod")
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				t.Errorf("project composed %s ml-prod/%s inside a namespace it does not own", kind.kind, it.GetName())
			}
		}
	})

	step(t, "EnvironmentRemoval", func(t *testing.T) {
		// The application's own composition is not implemented yet (the
		// function answers Fatal), but the object exists, and that is what
		// keeps its environment alive.
		applyYAML(t, `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoApplication
metadata: {name: detector, namespace: vision-stage}
spec: {projectRef: vision}
`)
		applied := time.Now()
		applyFile(t, "examples/projects/vision-without-stage.yaml")
		c := waitXRCondition(t, kindProject, "", "vision", "EnvironmentRemoval", "False", "EnvironmentInUse", specChangeWait)
		slowSpecChange(t, "the project reacted to stage's removal", applied)
		if !strings.Contains(c.Message, "vision-stage/detector") {
			t.Errorf("EnvironmentRemoval message should name vision-stage/detector: %q", c.Message)
		}
		t.Logf("EnvironmentRemoval=False: %s", c.Message)
		// Give core a moment to act on that same response: the namespace
		// must stay.
		time.Sleep(3 * time.Second)
		if n := getNamespace(t, "vision-stage"); n == nil || n.UID != uids["vision-stage"] || n.DeletionTimestamp != nil {
			t.Fatalf("vision-stage should be kept while detector lives in it: %s", toYAML(n))
		}

		start := time.Now()
		mustDelete(t, apiVersionKalypso, "KalypsoApplication", "vision-stage", "detector")
		waitGone(t, apiVersionKalypso, "KalypsoApplication", "vision-stage", "detector", 60*time.Second)
		// The project re-polls its required resources every minute while
		// a removed environment is kept (sooner when the quota's count of
		// applications changes).
		waitGone(t, "v1", "Namespace", "", "vision-stage", 120*time.Second)
		t.Logf("vision-stage deleted %s after its last application", time.Since(start).Round(100*time.Millisecond))
		waitXRCondition(t, kindProject, "", "vision", "EnvironmentRemoval", "True", "NoRemovalPending", 30*time.Second)
		xr := mustGet(t, apiVersionKalypso, kindProject, "", "vision")
		created, _, _ := unstructured.NestedStringSlice(xr.Object, "status", "createdNamespaces")
		if want := []string{"vision-dev", "vision-prod"}; !slices.Equal(created, want) {
			t.Errorf("status.createdNamespaces = %v, want %v", created, want)
		}
		for _, ns := range []string{"vision-dev", "vision-prod"} {
			if n := getNamespace(t, ns); n == nil || n.UID != uids[ns] || n.DeletionTimestamp != nil {
				t.Errorf("namespace %s should be untouched: %s", ns, toYAML(n))
			}
		}
		waitXRCondition(t, kindProject, "", "vision", "Ready", "True", "", 30*time.Second)
	})

	step(t, "Delete", func(t *testing.T) {
		// A project is deleted after its release (spec.release), which
		// completes once no application lives in its environments. With
		// its watch circuit open (core's duplicate watches) the release is
		// seen at its next poll, within a minute.
		for _, p := range []string{"ml-platform", "vision"} {
			if err := releaseProject(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			waitXRCondition(t, kindProject, "", p, "Released", "True", "Released", 90*time.Second)
		}
		mustDelete(t, apiVersionKalypso, kindProject, "", "ml-platform")
		waitGone(t, apiVersionKalypso, kindProject, "", "ml-platform", 60*time.Second)
		// What it composed inside the adopted namespace goes; the
		// namespaces stay.
		waitGone(t, "v1", "ResourceQuota", "ml-sandbox", "ml-platform-sandbox-quota", 60*time.Second)
		if n := getNamespace(t, "ml-sandbox"); n == nil || n.UID != mlSandbox.UID || n.DeletionTimestamp != nil {
			t.Errorf("adopted namespace ml-sandbox should survive its project: %s", toYAML(n))
		}
		assertUntouched(t, mlProd, cm)

		mustDelete(t, apiVersionKalypso, kindProject, "", "vision")
		waitGone(t, apiVersionKalypso, kindProject, "", "vision", 60*time.Second)
		for _, ns := range []string{"vision-dev", "vision-prod"} {
			waitGone(t, "v1", "Namespace", "", ns, 90*time.Second)
		}
		for _, ns := range []string{"ml-prod", "ml-sandbox"} {
			mustDelete(t, "v1", "Namespace", "", ns)
		}
	})
}

// gpuPod is a pod Pod Security "restricted" admits, tolerating the GPU
// taint, with resources inside the environments' LimitRange, asking for
// gpus devices of res.
func gpuPod(name string, res corev1.ResourceName, gpus int64) *corev1.Pod {
	n := resource.NewQuantity(gpus, resource.DecimalSI)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeSelector:                 map[string]string{"nvidia.com/gpu.present": "true"},
			Tolerations:                  []corev1.Toleration{{Key: gpuResource, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "triton", Image: "nvcr.io/nvidia/tritonserver:24.12-py3",
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi"), res: *n},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi"), res: *n},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// xrWarnings returns the messages of the Warning events with the given
// reason recorded on a cluster-scoped composite, oldest first.
func xrWarnings(t testing.TB, kind, name, reason string) []string {
	t.Helper()
	l, err := lab.Kube.Typed.CoreV1().Events("").List(t.Context(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name + ",type=Warning,reason=" + reason,
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(l.Items, func(a, b corev1.Event) int { return a.FirstTimestamp.Compare(b.FirstTimestamp.Time) })
	var out []string
	for _, e := range l.Items {
		for range max(e.Count, 1) {
			out = append(out, e.Message)
		}
	}
	return out
}

func getNamespace(t testing.TB, name string) *corev1.Namespace {
	t.Helper()
	n, err := lab.Kube.Typed.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitQuotaStatus waits until the quota controller has filled status.hard.
func waitQuotaStatus(t testing.TB, ns, name string) *corev1.ResourceQuota {
	t.Helper()
	var q *corev1.ResourceQuota
	waitFor(t, fmt.Sprintf("quota %s/%s status.hard", ns, name), 60*time.Second, func() (bool, string, error) {
		var err error
		q, err = lab.Kube.Typed.CoreV1().ResourceQuotas(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, "", client404(err)
		}
		return len(q.Status.Hard) > 0 && len(q.Status.Hard) == len(q.Spec.Hard), fmt.Sprintf("status.hard %v", q.Status.Hard), nil
	})
	return q
}

// client404 turns NotFound into "keep waiting".
func client404(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func ownerRefs(u *unstructured.Unstructured) []metav1.OwnerReference { return u.GetOwnerReferences() }

func controlledBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid && ptr.Deref(r.Controller, false) {
			return true
		}
	}
	return false
}

// withNameLabel is a namespace's labels as the API server stores them.
func withNameLabel(n *corev1.Namespace) map[string]string {
	l := maps.Clone(n.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[corev1.LabelMetadataName] = n.Name
	return l
}

// assertUntouched checks a foreign namespace and its ConfigMap are as we
// created them.
func assertUntouched(t testing.TB, ns *corev1.Namespace, cm *corev1.ConfigMap) {
	t.Helper()
	n := getNamespace(t, ns.Name)
	if n == nil || n.UID != ns.UID || n.DeletionTimestamp != nil || len(n.OwnerReferences) > 0 ||
		!maps.Equal(n.Labels, withNameLabel(ns)) || !maps.Equal(n.Annotations, ns.Annotations) {
		t.Errorf("foreign namespace %s was touched: %s", ns.Name, toYAML(n))
	}
	got, err := lab.Kube.Typed.CoreV1().ConfigMaps(ns.Name).Get(t.Context(), cm.Name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("ConfigMap %s/%s: %v", ns.Name, cm.Name, err)
		return
	}
	if got.UID != cm.UID || !maps.Equal(got.Data, cm.Data) || got.ResourceVersion != cm.ResourceVersion {
		t.Errorf("ConfigMap %s/%s was touched: %s", ns.Name, cm.Name, toYAML(got))
	}
}
