package project

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// environmentQuota maps an environment's resourceQuota and gpuQuota onto
// ResourceQuota hard keys, with showback's tracking keys. field is the
// environment's path in the XR, for messages.
func environmentQuota(p compose.Platform, e v1alpha1.EnvironmentSpec, field string) (corev1.ResourceList, error) {
	hard := corev1.ResourceList{}
	if e.ResourceQuota != nil {
		var err error
		if hard, err = quotaHard(e.ResourceQuota, field+".resourceQuota"); err != nil {
			return nil, err
		}
	}
	if err := addGPUQuota(p, e, field, hard); err != nil {
		return nil, err
	}
	trackGPUs(p, hard)
	return hard, nil
}

// addGPUQuota adds the quota of each GPU class to hard: the key that counts
// its devices, set once. A class whose device plugin resource another class
// shares cannot have its own quota: a ResourceQuota counts the resource,
// not the nodes its pods run on.
func addGPUQuota(p compose.Platform, e v1alpha1.EnvironmentSpec, field string, out corev1.ResourceList) error {
	for _, name := range slices.Sorted(maps.Keys(e.GPUQuota)) {
		from := field + ".gpuQuota." + name
		class, ok := p.GPUClasses[name]
		if !ok {
			return fmt.Errorf("%s: %q is not a GPU class of this platform; use one of %s", from, name, strings.Join(p.GPUClassNames(), ", "))
		}
		if others := p.SharingQuotaKey(name); len(others) > 0 {
			return fmt.Errorf("%s: GPU class %s asks for %s like class %s, and a ResourceQuota cannot tell them apart; the platform must give each pool its own resource name or DRA DeviceClass (README, \"GPU classes\")",
				from, name, class.Describe(), strings.Join(others, ", "))
		}
		key := class.QuotaKey()
		if _, ok := out[key]; ok {
			return fmt.Errorf("%s and %s both set quota %s: set it in gpuQuota only", from, resourceQuotaField(e, field, class), key)
		}
		out[key] = *kresource.NewQuantity(int64(e.GPUQuota[name]), kresource.DecimalSI)
	}
	return nil
}

// resourceQuotaField names the resourceQuota entry that set a class's key
// (quotaHard maps a DRA key through as it is).
func resourceQuotaField(e v1alpha1.EnvironmentSpec, field string, class compose.GPUClass) string {
	name := class.Resource
	if class.DRA() {
		name = class.QuotaKey()
	}
	if _, ok := e.ResourceQuota.Requests[name]; ok {
		return fmt.Sprintf("%s.resourceQuota.requests[%s]", field, name)
	}
	return fmt.Sprintf("%s.resourceQuota.limits[%s]", field, name)
}

// trackGPUs adds to hard a key that never limits for every GPU class it
// does not count yet, when showback tracks use.
func trackGPUs(p compose.Platform, hard corev1.ResourceList) {
	if !p.ShowbackEnabled {
		return
	}
	for _, name := range p.GPUClassNames() {
		key := p.GPUClasses[name].QuotaKey()
		if _, ok := hard[key]; !ok {
			hard[key] = *kresource.NewQuantity(compose.UntrackedGPUQuota, kresource.DecimalSI)
		}
	}
}

// gpuUsage reads the use of the default class, and (in a catalogue of
// several) of every class whose devices the quota counts apart, from an
// environment's observed quota, as the quota controller counts it
// (status.used, status.hard).
func (c *Composer) gpuUsage(p compose.Platform, env string) (*v1alpha1.GPUUsage, []v1alpha1.GPUClassUsage) {
	o, ok := c.observed[partName("quota", env)]
	if !ok {
		return nil, nil
	}
	var classes []v1alpha1.GPUClassUsage
	for _, name := range p.GPUClassNames() {
		if len(p.GPUClasses) == 1 || len(p.SharingQuotaKey(name)) > 0 {
			continue
		}
		if u := quotaUsage(o.Resource.Object, p.GPUClasses[name].QuotaKey()); u != nil {
			classes = append(classes, v1alpha1.GPUClassUsage{Class: name, GPUUsage: *u})
		}
	}
	return quotaUsage(o.Resource.Object, p.DefaultGPU().QuotaKey()), classes
}

// quotaUsage is a quota's use of one key; nil when it does not count it.
func quotaUsage(quota map[string]any, key corev1.ResourceName) *v1alpha1.GPUUsage {
	hard, found, _ := unstructured.NestedString(quota, "status", "hard", string(key))
	if !found {
		return nil
	}
	used, _, _ := unstructured.NestedString(quota, "status", "used", string(key))
	u := &v1alpha1.GPUUsage{Resource: string(key), Requested: compose.OrZero(used), Quota: hard}
	if q, err := kresource.ParseQuantity(hard); err == nil && q.CmpInt64(compose.UntrackedGPUQuota) == 0 {
		u.Quota = ""
	}
	return u
}
