package compose

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// ImplicitGPUClass is the class gpu.* form when the catalogue has none of
// that name.
const ImplicitGPUClass = "default"

// GPUClass is a resolved class of the platform's catalogue.
type GPUClass struct {
	Name string
	// Resource is the device plugin's resource; empty for a DRA class.
	Resource corev1.ResourceName
	// DeviceClass is the DRA DeviceClass; empty for a device-plugin class.
	DeviceClass      string
	NodeSelector     map[string]string
	Tolerations      []corev1.Toleration
	RuntimeClassName string
	Sharing          string
	// FailRequestsGreaterThanOne: the device plugin refuses pods asking for
	// more than one shared device.
	FailRequestsGreaterThanOne bool
	// MemoryPerDevice is zero when unknown.
	MemoryPerDevice resource.Quantity
}

// DRA reports whether pods get the class's devices through a ResourceClaim.
func (c GPUClass) DRA() bool { return c.DeviceClass != "" }

// Shared reports whether a device is shared with other pods' processes.
func (c GPUClass) Shared() bool {
	return c.Sharing == v1beta1.SharingTimeSliced || c.Sharing == v1beta1.SharingMPS
}

// QuotaKey is the ResourceQuota key that counts the class's devices.
func (c GPUClass) QuotaKey() corev1.ResourceName {
	if c.DRA() {
		// <deviceclass>.deviceclass.resource.k8s.io/devices, charged when
		// a ResourceClaim is created (k8s.io/kubernetes v1.35.4
		// pkg/quota/v1/evaluator/core/resource_claims.go), not at pod
		// admission.
		return corev1.ResourceName(c.DeviceClass + corev1.ResourceClaimsPerClass)
	}
	return corev1.ResourceName(corev1.DefaultResourceRequestsPrefix + string(c.Resource))
}

// DRADevicesKey reports whether a quota key counts the devices of a DRA
// DeviceClass, <class>.deviceclass.resource.k8s.io/devices: a key without a
// requests. prefix, charged by ResourceClaims only (k8s.io/kubernetes
// v1.35.4 pkg/quota/v1/evaluator/core/resource_claims.go).
func DRADevicesKey(k corev1.ResourceName) bool {
	return strings.HasSuffix(string(k), corev1.ResourceClaimsPerClass)
}

// Describe names how pods get the class's devices, for messages.
func (c GPUClass) Describe() string {
	if c.DRA() {
		return "DRA DeviceClass " + c.DeviceClass
	}
	return string(c.Resource)
}

// GPUClassNames lists the catalogue's classes, sorted.
func (p Platform) GPUClassNames() []string { return slices.Sorted(maps.Keys(p.GPUClasses)) }

// DefaultGPU is the class of servers that name none.
func (p Platform) DefaultGPU() GPUClass { return p.GPUClasses[p.DefaultGPUClass] }

// SharingQuotaKey lists the other classes whose devices the same
// ResourceQuota key counts as class name's (one device plugin resource, or
// one DeviceClass): a quota cannot tell them apart.
func (p Platform) SharingQuotaKey(name string) []string {
	key := p.GPUClasses[name].QuotaKey()
	var out []string
	for _, other := range p.GPUClassNames() {
		if other != name && p.GPUClasses[other].QuotaKey() == key {
			out = append(out, other)
		}
	}
	return out
}

// gpuClasses resolves the catalogue: the classes as given, plus the
// implicit class gpu.* form when the default class is "default" and the
// catalogue has no class of that name, so that a platform without a
// catalogue composes as it did before classes existed.
func gpuClasses(d v1beta1.Defaults) (map[string]GPUClass, string, bool) {
	def := ptr.Deref(d.GPU.DefaultClass, ImplicitGPUClass)
	out := make(map[string]GPUClass, len(d.GPUClasses)+1)
	for name, c := range d.GPUClasses {
		out[name] = GPUClass{
			Name: name, Resource: corev1.ResourceName(c.ResourceName), DeviceClass: c.DeviceClassName,
			NodeSelector: c.NodeSelector, Tolerations: c.Tolerations, RuntimeClassName: c.RuntimeClassName,
			Sharing: cmp.Or(c.Sharing, v1beta1.SharingExclusive), FailRequestsGreaterThanOne: ptr.Deref(c.FailRequestsGreaterThanOne, c.Sharing == v1beta1.SharingMPS && c.DeviceClassName == ""),
			MemoryPerDevice: ptr.Deref(c.MemoryPerDevice, resource.Quantity{}),
		}
	}
	_, explicit := out[ImplicitGPUClass]
	if !explicit && def == ImplicitGPUClass {
		out[ImplicitGPUClass] = GPUClass{
			Name: ImplicitGPUClass, Resource: corev1.ResourceName(ptr.Deref(d.GPU.ResourceName, "")),
			NodeSelector: d.GPU.NodeSelector, Tolerations: d.GPU.Tolerations,
			RuntimeClassName: ptr.Deref(d.GPU.RuntimeClassName, ""), Sharing: v1beta1.SharingExclusive,
		}
	}
	return out, def, explicit
}

// validateGPUClasses refuses a catalogue no pod could be built from.
func (p Platform) validateGPUClasses() error {
	if _, ok := p.GPUClasses[p.DefaultGPUClass]; !ok {
		return fmt.Errorf("defaults: gpu.defaultClass %q is not a class of gpuClasses (%s): servers without spec.gpuClass use it", p.DefaultGPUClass, strings.Join(p.GPUClassNames(), ", "))
	}
	for _, name := range p.GPUClassNames() {
		c := p.GPUClasses[name]
		field := "gpuClasses." + name
		if name == ImplicitGPUClass && !p.explicitDefaultClass && c.Resource == "" {
			return fmt.Errorf("defaults: gpu.resourceName must not be empty")
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return fmt.Errorf("defaults: gpuClasses: %q is not a class name (a DNS label, as servers' spec.gpuClass): %s", name, strings.Join(errs, "; "))
		}
		switch {
		case (c.Resource == "") == !c.DRA():
			return fmt.Errorf("defaults: %s: set one of resourceName (a device plugin's resource) and deviceClassName (a DRA DeviceClass)", field)
		case c.DRA():
			if errs := validation.IsDNS1123Subdomain(c.DeviceClass); len(errs) > 0 {
				return fmt.Errorf("defaults: %s.deviceClassName %q is not a DeviceClass name: %s", field, c.DeviceClass, strings.Join(errs, "; "))
			}
		default:
			// An extended resource: a qualified name outside kubernetes.io,
			// not requests.-prefixed (k8s.io/kubernetes v1.35.4
			// pkg/apis/core/helper IsExtendedResourceName).
			if errs := validation.IsQualifiedName(string(c.Resource)); len(errs) > 0 || !strings.Contains(string(c.Resource), "/") ||
				strings.Contains(string(c.Resource), "kubernetes.io/") || strings.HasPrefix(string(c.Resource), corev1.DefaultResourceRequestsPrefix) {
				return fmt.Errorf("defaults: %s.resourceName %q is not a device plugin resource such as nvidia.com/gpu or nvidia.com/mig-1g.10gb", field, c.Resource)
			}
		}
		if c.FailRequestsGreaterThanOne && (!c.Shared() || c.DRA()) {
			return fmt.Errorf("defaults: %s.failRequestsGreaterThanOne is the device plugin's setting for time-sliced and mps sharing; remove it", field)
		}
		if c.MemoryPerDevice.Sign() < 0 {
			return fmt.Errorf("defaults: %s.memoryPerDevice %s must not be negative", field, c.MemoryPerDevice.String())
		}
	}
	return nil
}
