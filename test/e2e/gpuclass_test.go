//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// The lab's GPU classes (platformDefaults): MIG slices advertised under
// their own resource name on kwok-mig-0, and devices of a DRA DeviceClass
// that a ResourceSlice lists for kwok-dra-0. Whole GPUs stay the implicit
// default class (the kwok-gpu-* pool).
const (
	migNode      = "kwok-mig-0"
	migResource  = "nvidia.com/mig-1g.10gb"
	draNode      = "kwok-dra-0"
	draDriver    = "gpu.e2e.kalypso.io"
	draClass     = "gpu.e2e.kalypso.io"
	draQuotaKey  = draClass + ".deviceclass.resource.k8s.io/devices"
	migQuotaKey  = "requests." + migResource
	gpuQuotaKey  = "requests.nvidia.com/gpu"
	gpuClassUser = "gpu-dev@example.com"
)

// TestGPUClasses: servers of three classes land on their pools, a MIG
// server asking for two slices is refused, the API server enforces the
// project's quota per class (as the tenant, not an administrator), and a
// DRA class's claim is allocated by the scheduler from a ResourceSlice,
// charged to the quota when the claim is created, and a claim over quota
// is what the server reports. kwok never calls NodePrepareResources: the
// claims are allocated and reserved, no device is prepared.
func TestGPUClasses(t *testing.T) {
	requireFlavour(t, flavourV2)
	const project, ns = "gpus", "gpus-prod"
	gpuClassPools(t)
	// Cleanups run last first: the servers and the application go
	// (teardown), then the project, before the platform's classes do
	// (gpuClassPools): without them its gpuQuota names unknown classes,
	// which would stop its release.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
		defer cancel()
		if err := deleteProject(ctx, project, ns); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	teardown(t, project, ns)

	applyYAML(t, fmt.Sprintf(`apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: %s}
spec:
  owner: e2e
  access: {editors: [{kind: User, name: %s}]}
  environments:
    prod:
      namespace: %s
      gpuQuota: {default: 2, mig-1g: 1, dra: 2}
`, project, gpuClassUser, ns))
	waitReady(t, kindProject, "", project, 90*time.Second)
	quota, err := lab.Kube.Typed.CoreV1().ResourceQuotas(ns).Get(t.Context(), project+"-prod-quota", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[corev1.ResourceName]int64{gpuQuotaKey: 2, migQuotaKey: 1, draQuotaKey: 2} {
		if q := quota.Spec.Hard[key]; q.Value() != want {
			t.Errorf("quota %s = %s, want %d (gpuQuota per class)", key, q.String(), want)
		}
	}
	environmentSecrets(t, ns)
	applyYAML(t, applicationYAML("speech", ns, project))
	waitReady(t, kindApplication, ns, "speech", 90*time.Second)

	whole := newServer("whole", ns, "speech")
	whole.Spec["gpus"] = int64(1)
	slice := newServer("slice", ns, "speech")
	slice.Spec["gpuClass"], slice.Spec["gpus"] = "mig-1g", int64(1)
	claimed := newServer("claimed", ns, "speech")
	claimed.Spec["gpuClass"], claimed.Spec["gpus"] = "dra", int64(2)
	for _, s := range []*server{whole, slice, claimed} {
		s.apply(t)
	}
	for s, pool := range map[*server]string{whole: "kwok-gpu-", slice: migNode, claimed: draNode} {
		waitDeploymentAvailable(t, ns, s.Name+"-deploy", 1, 3*time.Minute)
		for _, pod := range serverPods(t, ns, s.Name) {
			if !strings.HasPrefix(pod.Spec.NodeName, pool) {
				t.Errorf("server %s (class %v): pod %s runs on %q, want a node of %s", s.Name, s.Spec["gpuClass"], pod.Name, pod.Spec.NodeName, pool)
			}
		}
		waitXRCondition(t, kindServer, ns, s.Name, "GPUClass", "True", "GPUClassSelected", 30*time.Second)
	}
	measure(t, "servers of classes default, mig-1g and dra ran on %s, %s and %s", fakeNodes, migNode, draNode)

	t.Run("MIGTwoSlicesRefused", func(t *testing.T) {
		two := newServer("slices", ns, "speech")
		two.Spec["gpuClass"], two.Spec["gpus"] = "mig-1g", int64(2)
		two.apply(t)
		c := waitXRCondition(t, kindServer, ns, two.Name, "GPUClass", "False", "MIGSingleDevice", specChangeWait)
		t.Logf("GPUClass=False MIGSingleDevice: %s", c.Message)
		if _, err := lab.Kube.Typed.AppsV1().Deployments(ns).Get(t.Context(), two.Name+"-deploy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a refused MIG server must compose no Deployment: got %v", err)
		}
	})

	t.Run("QuotaPerClassAsTenant", func(t *testing.T) {
		tenant, err := lab.Kube.as(gpuClassUser)
		if err != nil {
			t.Fatal(err)
		}
		// slice holds the one MIG slice of the quota; a whole GPU is left.
		_, err = tenant.Typed.CoreV1().Pods(ns).Create(t.Context(), gpuPod("one-more-slice", migResource, 1), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") || !strings.Contains(err.Error(), migQuotaKey) {
			t.Fatalf("a second MIG slice as %s: want the API server's exceeded quota on %s, got %v", gpuClassUser, migQuotaKey, err)
		}
		t.Logf("API server: %v", err)
		if _, err := tenant.Typed.CoreV1().Pods(ns).Create(t.Context(), gpuPod("one-more-gpu", gpuResource, 1), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("a whole GPU as %s fits its own class's quota (1 of 2 used): %v", gpuClassUser, err)
		}
	})

	t.Run("DRAClaimAllocated", func(t *testing.T) {
		claims, err := lab.Kube.Typed.ResourceV1().ResourceClaims(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var results []resourcev1.DeviceRequestAllocationResult
		for _, c := range claims.Items {
			if c.Labels[labelTritonServer] != claimed.Name {
				t.Errorf("claim %s has labels %v: want %s=%s from its template, which the server finds its claims by", c.Name, c.Labels, labelTritonServer, claimed.Name)
			}
			if c.Status.Allocation != nil && len(c.Status.ReservedFor) == 1 {
				results = append(results, c.Status.Allocation.Devices.Results...)
			}
		}
		var devices []string
		for _, r := range results {
			if r.Driver != draDriver || r.Pool != draNode {
				t.Errorf("allocated %+v, want driver %s, pool %s", r, draDriver, draNode)
			}
			devices = append(devices, r.Device)
		}
		slices.Sort(devices)
		if !slices.Equal(devices, []string{"gpu-0", "gpu-1"}) {
			t.Errorf("server claimed's claim: allocated devices %v, want gpu-0 and gpu-1 of the ResourceSlice", devices)
		}
		measure(t, "ResourceClaim of server claimed allocated %v from the ResourceSlice of %s and reserved for its pod (no device prepared: kwok has no DRA plugin)", devices, draNode)
		waitFor(t, "the quota counts the claim's devices", 30*time.Second, func() (bool, string, error) {
			q, err := lab.Kube.Typed.CoreV1().ResourceQuotas(ns).Get(t.Context(), project+"-prod-quota", metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			used := q.Status.Used[draQuotaKey]
			return used.Value() == 2, draQuotaKey + " used " + used.String(), nil
		})
	})

	t.Run("DRAClaimOverQuota", func(t *testing.T) {
		claimed.Spec["replicas"] = int64(2)
		claimed.apply(t)
		// The platform does not read pods here (diagnostics.readPods), so
		// the full quota is a hint in the message; with pods read, a pod
		// without its claim makes it the reason (unit tests).
		var c condition
		waitFor(t, "server claimed names the quota its new pod's claim is refused by", specChangeWait, func() (bool, string, error) {
			c = getXRCondition(t, kindServer, ns, claimed.Name, "ServerAvailable")
			return strings.Contains(c.Message, "if a pod has no ResourceClaim yet, this is why: ResourceQuota "+project+"-prod-quota allows 2 "+draQuotaKey) &&
				strings.Contains(c.Message, "FailedResourceClaimCreation"), c.Reason + ": " + c.Message, nil
		})
		t.Logf("ServerAvailable=%s %s: %s", c.Status, c.Reason, c.Message)
		waitFor(t, "the resource claim controller's FailedResourceClaimCreation event", 60*time.Second, func() (bool, string, error) {
			ev, err := lab.Kube.Typed.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "reason=FailedResourceClaimCreation"})
			if err != nil || len(ev.Items) == 0 {
				return false, "none yet", err
			}
			if !strings.Contains(ev.Items[0].Message, "exceeded quota") {
				return false, ev.Items[0].Message, nil
			}
			t.Logf("event on pod %s: %s", ev.Items[0].InvolvedObject.Name, ev.Items[0].Message)
			return true, "", nil
		})
	})

	// The project's status shows use against quota per class, from the
	// quota controller's counts (its quota is a composed object: a change
	// of its status reaches the project at once).
	waitFor(t, "project "+project+" shows GPU use per class", 60*time.Second, func() (bool, string, error) {
		u, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindProject, "", project)
		if err != nil || u == nil {
			return false, "", err
		}
		envs, _, _ := unstructured.NestedSlice(u.Object, "status", "environments")
		var got []string
		for _, e := range envs {
			classes, _, _ := unstructured.NestedSlice(e.(map[string]any), "gpuClasses")
			for _, c := range classes {
				m := c.(map[string]any)
				got = append(got, fmt.Sprintf("%v %v/%v", m["class"], m["requested"], m["quota"]))
			}
		}
		want := []string{"default 1/2", "dra 2/2", "mig-1g 1/1"}
		return slices.Equal(got, want), strings.Join(got, ", "), nil
	})
}

// gpuClassDefaults are the lab's platform defaults with two GPU classes.
// The classes are added for this test only, and removed before it ends:
// the previous release's function, which the upgrade tests run, refuses
// an EnvironmentConfig with keys it does not know (README, "Versions and
// upgrades").
const gpuClassDefaults = platformDefaults + `  gpuClasses:
    mig-1g:
      resourceName: nvidia.com/mig-1g.10gb
      sharing: mig
      memoryPerDevice: 10Gi
      nodeSelector: {nvidia.com/mig.config: all-1g.10gb}
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    dra:
      deviceClassName: gpu.e2e.kalypso.io
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
`

// gpuClassPools adds the GPU classes to the platform defaults, the MIG and
// DRA nodes, the DeviceClass and the ResourceSlice, and removes them at the
// end (after the cleanups registered later: the project's).
func gpuClassPools(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	applyYAML(t, gpuClassDefaults)
	mig := newGPUNode(migNode, map[string]string{"nvidia.com/mig.config": "all-1g.10gb"},
		corev1.ResourceList{migResource: *resource.NewQuantity(7, resource.DecimalSI)})
	dra := newGPUNode(draNode, map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, nil)
	class := &resourcev1.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: draClass},
		Spec: resourcev1.DeviceClassSpec{Selectors: []resourcev1.DeviceSelector{{
			CEL: &resourcev1.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", draDriver)},
		}}},
	}
	slice := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: draNode + "-gpus"},
		Spec: resourcev1.ResourceSliceSpec{
			Driver: draDriver, NodeName: ptr.To(draNode),
			Pool:    resourcev1.ResourcePool{Name: draNode, ResourceSliceCount: 1},
			Devices: []resourcev1.Device{{Name: "gpu-0"}, {Name: "gpu-1"}},
		},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = lab.Kube.Typed.ResourceV1().ResourceSlices().Delete(ctx, slice.Name, metav1.DeleteOptions{})
		_ = lab.Kube.Typed.ResourceV1().DeviceClasses().Delete(ctx, class.Name, metav1.DeleteOptions{})
		for _, n := range []string{migNode, draNode} {
			_ = lab.Kube.Typed.CoreV1().Nodes().Delete(ctx, n, metav1.DeleteOptions{})
		}
		if err := lab.installPlatformDefaults(ctx); err != nil {
			t.Errorf("restore the platform defaults: %v", err)
		}
	})
	for _, n := range []*corev1.Node{mig, dra} {
		if _, err := lab.Kube.Typed.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lab.Kube.Typed.ResourceV1().DeviceClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Kube.Typed.ResourceV1().ResourceSlices().Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nodes "+migNode+" and "+draNode+" Ready", 60*time.Second, func() (bool, string, error) {
		for _, name := range []string{migNode, draNode} {
			n, err := lab.Kube.Typed.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			if !nodeReady(n) {
				return false, name + " not Ready", nil
			}
		}
		return true, "", nil
	})
}
