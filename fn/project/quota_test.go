package project

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

func list(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestQuotaHard(t *testing.T) {
	cases := map[string]struct {
		reason  string
		quota   v1alpha1.ResourceQuotaSpec
		want    corev1.ResourceList
		wantErr string
	}{
		"DRADevicesPassThrough": {
			reason: "A DRA DeviceClass's devices are counted by the bare key (a requests. prefix would never be counted), from either side.",
			quota:  v1alpha1.ResourceQuotaSpec{Requests: list("gpu.nvidia.com.deviceclass.resource.k8s.io/devices", "4")},
			want:   list("gpu.nvidia.com.deviceclass.resource.k8s.io/devices", "4"),
		},
		"DRADevicesPrefixed": {
			reason:  "A prefixed DRA key is accepted by the API server and never counted: refused.",
			quota:   v1alpha1.ResourceQuotaSpec{Requests: list("requests.gpu.nvidia.com.deviceclass.resource.k8s.io/devices", "4")},
			wantErr: `q.requests[requests.gpu.nvidia.com.deviceclass.resource.k8s.io/devices]: "requests.gpu.nvidia.com.deviceclass.resource.k8s.io/devices" is not a DRA quota key`,
		},
		"DRADevicesBadClassName": {
			reason:  "The DeviceClass part must make a qualified name, or the API server refuses the quota.",
			quota:   v1alpha1.ResourceQuotaSpec{Limits: list("Bad_Name.deviceclass.resource.k8s.io/devices", "1")},
			wantErr: "is not a DRA quota key",
		},
		"ComputeBothSides": {
			reason: "cpu, memory and ephemeral-storage are quota-able as limits.<k> and requests.<k>.",
			quota:  v1alpha1.ResourceQuotaSpec{Limits: list("cpu", "16", "memory", "64Gi", "ephemeral-storage", "100Gi"), Requests: list("cpu", "8", "memory", "32Gi")},
			want:   list("limits.cpu", "16", "limits.memory", "64Gi", "limits.ephemeral-storage", "100Gi", "requests.cpu", "8", "requests.memory", "32Gi"),
		},
		"GPULimitBecomesRequest": {
			reason: "A quota knows extended resources only as requests.<name>; limits.nvidia.com/gpu would never be enforced.",
			quota:  v1alpha1.ResourceQuotaSpec{Limits: list("nvidia.com/gpu", "4")},
			want:   list("requests.nvidia.com/gpu", "4"),
		},
		"GPUBothSidesAgree": {
			reason: "The same GPU count on both sides maps to one key.",
			quota:  v1alpha1.ResourceQuotaSpec{Limits: list("nvidia.com/gpu", "8"), Requests: list("nvidia.com/gpu", "8")},
			want:   list("requests.nvidia.com/gpu", "8"),
		},
		"GPUConflict": {
			reason:  "Different GPU limits and requests cannot both be honoured: refuse, naming both fields.",
			quota:   v1alpha1.ResourceQuotaSpec{Limits: list("nvidia.com/gpu", "8"), Requests: list("nvidia.com/gpu", "4")},
			wantErr: "q.limits[nvidia.com/gpu] and q.requests[nvidia.com/gpu] both set quota requests.nvidia.com/gpu, to 8 and 4",
		},
		"MIGAndHugepages": {
			reason: "MIG slices and hugepages are requests-only too.",
			quota:  v1alpha1.ResourceQuotaSpec{Limits: list("nvidia.com/mig-1g.10gb", "7", "hugepages-2Mi", "1Gi")},
			want:   list("requests.nvidia.com/mig-1g.10gb", "7", "requests.hugepages-2Mi", "1Gi"),
		},
		"ObjectCountsUnprefixed": {
			reason: "Object counts pass through as they are, from either side.",
			quota:  v1alpha1.ResourceQuotaSpec{Limits: list("pods", "10"), Requests: list("services", "5", "count/deployments.apps", "20")},
			want:   list("pods", "10", "services", "5", "count/deployments.apps", "20"),
		},
		"StorageRequests": {
			reason: "storage is a requests-only quota key.",
			quota:  v1alpha1.ResourceQuotaSpec{Requests: list("storage", "500Gi")},
			want:   list("requests.storage", "500Gi"),
		},
		"UnknownKeyRefused": {
			reason:  "Anything else is refused with a message naming the key.",
			quota:   v1alpha1.ResourceQuotaSpec{Limits: list("gpu", "1")},
			wantErr: `q.limits[gpu]: "gpu" is not a quota resource`,
		},
		"PrefixedKeyRefused": {
			reason:  "An already prefixed key is a mistake: say so rather than write limits.limits.cpu.",
			quota:   v1alpha1.ResourceQuotaSpec{Limits: list("limits.cpu", "1")},
			wantErr: `q.limits[limits.cpu]: "limits.cpu" is not a quota resource`,
		},
		"StorageLimitRefused": {
			reason:  "storage has no limits side in a quota.",
			quota:   v1alpha1.ResourceQuotaSpec{Limits: list("storage", "1Gi")},
			wantErr: `q.limits[storage]`,
		},
		"KubernetesIOIsNotExtended": {
			reason:  "Names under kubernetes.io are not extended resources.",
			quota:   v1alpha1.ResourceQuotaSpec{Limits: list("kubernetes.io/foo", "1")},
			wantErr: `"kubernetes.io/foo" is not a quota resource`,
		},
		"Empty": {
			reason: "An empty quota maps to nothing.",
			want:   corev1.ResourceList{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := quotaHard(&tc.quota, "q")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nquotaHard(...): want error containing %q, got %v", tc.reason, tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nquotaHard(...): %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nquotaHard(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestQuotaEnforcesSpec(t *testing.T) {
	cases := map[string]struct {
		reason string
		quota  string
		want   bool
	}{
		"NoStatus":      {"The quota controller has not seen the quota: admission enforces nothing of it.", `{spec: {hard: {pods: "4"}}}`, false},
		"Equal":         {"status.hard holds every spec limit.", `{spec: {hard: {pods: "4", requests.cpu: "2"}}, status: {hard: {pods: "4", requests.cpu: "2"}}}`, true},
		"EqualQuantity": {"Quantities compare by value, not by spelling.", `{spec: {hard: {requests.cpu: "2"}}, status: {hard: {requests.cpu: "2000m"}}}`, true},
		"Lagging":       {"The spec changed (a release closed it) and the controller has not caught up.", `{spec: {hard: {pods: "0"}}, status: {hard: {pods: "4"}}}`, false},
		"MissingKey":    {"A limit the controller has not taken over yet.", `{spec: {hard: {pods: "4", services: "2"}}, status: {hard: {pods: "4"}}}`, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q := composetest.Observed(t, map[string]string{"q": `{apiVersion: v1, kind: ResourceQuota, metadata: {name: q, namespace: ns}, ` + strings.TrimPrefix(tc.quota, "{")})["q"].Resource
			if got := quotaEnforcesSpec(q); got != tc.want {
				t.Errorf("%s\nquotaEnforcesSpec: want %v, got %v", tc.reason, tc.want, got)
			}
		})
	}
}
