package project

import (
	"fmt"
	"slices"
	"strings"

	"github.com/crossplane/function-sdk-go/resource/composed"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// computeResources are quota-able on both sides, as limits.<k> and requests.<k>.
var computeResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

// objectCounts are quota keys that count objects; they pass through unprefixed.
var objectCounts = []corev1.ResourceName{
	corev1.ResourcePods, corev1.ResourceServices, corev1.ResourceReplicationControllers,
	corev1.ResourceQuotas, corev1.ResourceSecrets, corev1.ResourceConfigMaps,
	corev1.ResourcePersistentVolumeClaims, corev1.ResourceServicesNodePorts,
	corev1.ResourceServicesLoadBalancers,
}

// requestsOnly are resources a quota only knows as requests.<k>: extended
// resources (nvidia.com/gpu…) and hugepages. A limits.<k> key for them is
// accepted by the API server and never enforced.
func requestsOnly(k corev1.ResourceName) bool {
	s := string(k)
	if strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) {
		return true
	}
	// Extended resources: a domain-prefixed name outside kubernetes.io, that
	// stays a valid qualified name once prefixed with "requests.".
	return strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/") &&
		len(validation.IsQualifiedName("requests."+s)) == 0
}

func objectCount(k corev1.ResourceName) bool {
	return slices.Contains(objectCounts, k) || strings.HasPrefix(string(k), "count/")
}

// quotaHard maps an environment's quota onto ResourceQuota hard keys. field
// is the path of the quota in the XR, for messages.
func quotaHard(q *v1alpha1.ResourceQuotaSpec, field string) (corev1.ResourceList, error) {
	hard := corev1.ResourceList{}
	origin := map[corev1.ResourceName]string{}
	put := func(key corev1.ResourceName, from string, v corev1.ResourceList, k corev1.ResourceName) error {
		val := v[k]
		if prev, ok := hard[key]; ok && prev.Cmp(val) != 0 {
			return fmt.Errorf("%s and %s both set quota %s, to %s and %s: a quota knows %s only once; set one value",
				origin[key], from, key, prev.String(), val.String(), key)
		}
		hard[key] = val
		origin[key] = from
		return nil
	}
	sides := []struct {
		name string
		list corev1.ResourceList
	}{{"limits", q.Limits}, {"requests", q.Requests}}
	for _, side := range sides {
		keys := make([]corev1.ResourceName, 0, len(side.list))
		for k := range side.list {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			from := fmt.Sprintf("%s.%s[%s]", field, side.name, k)
			var key corev1.ResourceName
			switch {
			case slices.Contains(computeResources, k):
				key = corev1.ResourceName(side.name + "." + string(k))
			case k == corev1.ResourceStorage && side.name == "requests":
				key = corev1.ResourceRequestsStorage
			case objectCount(k):
				key = k
			case compose.DRADevicesKey(k):
				// Admission matches a prefixed key by its suffix, but the
				// claims' usage only ever has the bare key: never counted.
				if strings.HasPrefix(string(k), "requests.") || strings.HasPrefix(string(k), "limits.") || len(validation.IsQualifiedName(string(k))) > 0 {
					return nil, fmt.Errorf("%s: %q is not a DRA quota key: write <deviceclass>.deviceclass.resource.k8s.io/devices with a DeviceClass name and no requests. or limits. prefix, or use gpuQuota", from, k)
				}
				key = k
			case requestsOnly(k):
				key = corev1.ResourceName("requests." + string(k))
			default:
				return nil, fmt.Errorf("%s: %q is not a quota resource; use cpu, memory, ephemeral-storage, an extended resource such as nvidia.com/gpu, hugepages-<size>, storage (requests only) or an object count such as pods or count/deployments.apps", from, k)
			}
			if err := put(key, from, side.list, k); err != nil {
				return nil, err
			}
		}
	}
	return hard, nil
}

// constrainsCompute reports whether a quota bounds cpu or memory, in which
// case pods without explicit requests/limits are refused unless a LimitRange
// supplies defaults.
func constrainsCompute(hard corev1.ResourceList) bool {
	for _, k := range []corev1.ResourceName{
		corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
	} {
		if _, ok := hard[k]; ok {
			return true
		}
	}
	return false
}

// quotaEnforcesSpec: the quota controller has taken over every hard limit of
// the spec (status.hard holds each with the same value), so admission
// enforces them.
func quotaEnforcesSpec(q *composed.Unstructured) bool {
	spec, _, _ := unstructured.NestedStringMap(q.Object, "spec", "hard")
	status, ok, _ := unstructured.NestedStringMap(q.Object, "status", "hard")
	if !ok {
		return false
	}
	for k, v := range spec {
		s, listed := status[k]
		if !listed {
			return false
		}
		want, err1 := kresource.ParseQuantity(v)
		got, err2 := kresource.ParseQuantity(s)
		if err1 != nil || err2 != nil || want.Cmp(got) != 0 {
			return false
		}
	}
	return true
}
