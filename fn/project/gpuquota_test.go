package project

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// gpuCatalogue: whole A100s under their own resource name, MIG slices, a
// DRA class, and an H100 pool advertising nvidia.com/gpu like the implicit
// default class.
func gpuCatalogue(t *testing.T, showback bool) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{
		GPUClasses: map[string]v1beta1.GPUClass{
			"a100":   {ResourceName: "nvidia.com/a100"},
			"mig-1g": {ResourceName: "nvidia.com/mig-1g.10gb", Sharing: v1beta1.SharingMIG},
			"dra":    {DeviceClassName: "gpu.nvidia.com"},
			"h100":   {ResourceName: "nvidia.com/gpu"},
		},
		Showback: &v1beta1.ShowbackDefaults{Enabled: ptr.To(showback)},
	}})
}

func TestEnvironmentQuota(t *testing.T) {
	n := func(v int64) kresource.Quantity { return *kresource.NewQuantity(v, kresource.DecimalSI) }
	cases := map[string]struct {
		reason    string
		env       v1alpha1.EnvironmentSpec
		showback  bool
		want      corev1.ResourceList
		wantError string
	}{
		"PerClass": {
			reason: "Each class's quota goes to the key that counts its devices: requests.<resource>, or the DRA DeviceClass's key.",
			env:    v1alpha1.EnvironmentSpec{GPUQuota: map[string]int32{"a100": 4, "mig-1g": 14, "dra": 2}},
			want: corev1.ResourceList{"requests.nvidia.com/a100": n(4), "requests.nvidia.com/mig-1g.10gb": n(14),
				"gpu.nvidia.com.deviceclass.resource.k8s.io/devices": n(2)},
		},
		"BesideResourceQuota": {
			reason: "gpuQuota and resourceQuota keys that differ live side by side.",
			env: v1alpha1.EnvironmentSpec{GPUQuota: map[string]int32{"a100": 4},
				ResourceQuota: &v1alpha1.ResourceQuotaSpec{Limits: corev1.ResourceList{"cpu": kresource.MustParse("8")}}},
			want: corev1.ResourceList{"requests.nvidia.com/a100": n(4), "limits.cpu": kresource.MustParse("8")},
		},
		"ShowbackTracksEveryClass": {
			reason: "With showback, every class's key the project sets no quota for counts use without limiting it.",
			env:    v1alpha1.EnvironmentSpec{GPUQuota: map[string]int32{"a100": 4}}, showback: true,
			want: corev1.ResourceList{"requests.nvidia.com/a100": n(4), "requests.nvidia.com/mig-1g.10gb": n(compose.UntrackedGPUQuota),
				"gpu.nvidia.com.deviceclass.resource.k8s.io/devices": n(compose.UntrackedGPUQuota), "requests.nvidia.com/gpu": n(compose.UntrackedGPUQuota)},
		},
		"ConflictWithRequests": {
			reason:    "The same key in gpuQuota and resourceQuota.requests is refused, naming both fields.",
			env:       v1alpha1.EnvironmentSpec{GPUQuota: map[string]int32{"a100": 4}, ResourceQuota: &v1alpha1.ResourceQuotaSpec{Requests: corev1.ResourceList{"nvidia.com/a100": n(4)}}},
			wantError: "spec.environments.prod.gpuQuota.a100 and spec.environments.prod.resourceQuota.requests[nvidia.com/a100] both set quota requests.nvidia.com/a100: set it in gpuQuota only",
		},
		"ConflictWithLimits": {
			reason:    "…and with resourceQuota.limits, which maps extended resources to requests.<name> too.",
			env:       v1alpha1.EnvironmentSpec{GPUQuota: map[string]int32{"mig-1g": 4}, ResourceQuota: &v1alpha1.ResourceQuotaSpec{Limits: corev1.ResourceList{"nvidia.com/mig-1g.10gb": n(2)}}},
			wantError: "spec.environments.prod.resourceQuota.limits[nvidia.com/mig-1g.10gb] both set quota",
		},
		"UnknownClass": {
			reason:    "A class the platform does not have.",
			env:       v1alpha1.EnvironmentSpec{GPUQuota: map[string]int32{"h200": 1}},
			wantError: `spec.environments.prod.gpuQuota.h200: "h200" is not a GPU class of this platform; use one of a100, default, dra, h100, mig-1g`,
		},
		"SharedResourceName": {
			reason:    "H100s advertised as nvidia.com/gpu like the default class: a quota on either would count both, so it is refused.",
			env:       v1alpha1.EnvironmentSpec{GPUQuota: map[string]int32{"h100": 2}},
			wantError: "spec.environments.prod.gpuQuota.h100: GPU class h100 asks for nvidia.com/gpu like class default, and a ResourceQuota cannot tell them apart",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := environmentQuota(gpuCatalogue(t, tc.showback), tc.env, "spec.environments.prod")
			if composetest.WantError(t, tc.reason, err, tc.wantError) {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nhard: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestGPUClassUsage: the status shows use against quota per class, from
// the quota controller's status, and leaves out classes the quota cannot
// tell apart.
func TestGPUClassUsage(t *testing.T) {
	spec := "  environments: {prod: {namespace: vision-prod, gpuQuota: {a100: 4, dra: 2}}}\n"
	quota := `{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-prod-quota, namespace: vision-prod},
  status: {hard: {requests.nvidia.com/a100: "4", gpu.nvidia.com.deviceclass.resource.k8s.io/devices: "2", requests.nvidia.com/gpu: "1M"},
           used: {requests.nvidia.com/a100: "3", gpu.nvidia.com.deviceclass.resource.k8s.io/devices: "2"}}}`
	c, err := New(xr(t, spec), composetest.Observed(t, map[string]string{"usage": readyUsage, "namespace-prod": prodNS, "quota.prod": quota}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compose(gpuCatalogue(t, true), composetest.Required(t, nil))
	if got.Fatal != nil {
		t.Fatal(got.Fatal)
	}
	st := got.Status.(*v1alpha1.KalypsoProjectStatus)
	want := []v1alpha1.GPUClassUsage{
		{Class: "a100", GPUUsage: v1alpha1.GPUUsage{Resource: "requests.nvidia.com/a100", Requested: "3", Quota: "4"}},
		{Class: "dra", GPUUsage: v1alpha1.GPUUsage{Resource: "gpu.nvidia.com.deviceclass.resource.k8s.io/devices", Requested: "2", Quota: "2"}},
	}
	if len(st.Environments) != 1 {
		t.Fatalf("want one environment, got %+v", st.Environments)
	}
	if diff := cmp.Diff(want, st.Environments[0].GPUClasses); diff != "" {
		t.Errorf("gpuClasses: -want, +got:\n%s", diff)
	}
	if diff := cmp.Diff(&v1alpha1.GPUUsage{Resource: "requests.nvidia.com/gpu", Requested: "0"}, st.Environments[0].GPUs); diff != "" {
		t.Errorf("gpus (the default class): -want, +got:\n%s", diff)
	}
}
