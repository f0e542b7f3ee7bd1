package compose

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// gpuCatalogueCases are TestResolvePlatform's cases of the GPU catalogue.
func gpuCatalogueCases() map[string]platformCase {
	a100 := v1beta1.GPUClass{ResourceName: "nvidia.com/gpu", NodeSelector: map[string]string{"pool": "a100"},
		Tolerations: []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "a100", Effect: corev1.TaintEffectNoSchedule}}}
	in := func(classes map[string]v1beta1.GPUClass, gpu *v1beta1.GPUDefaults) *v1beta1.Input {
		return &v1beta1.Input{Spec: v1beta1.Defaults{GPUClasses: classes, GPU: gpu}}
	}
	ec := func(data map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "kalypso-defaults"}, "data": data}}
	}
	return map[string]platformCase{
		"ImplicitDefault": {
			reason: "Without a catalogue, gpu.* form the default class: nvidia.com/gpu, its toleration, exclusive.",
			in:     &v1beta1.Input{},
			check: func(t *testing.T, p Platform) {
				want := GPUClass{Name: "default", Resource: "nvidia.com/gpu", Sharing: "exclusive",
					Tolerations: []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}
				if diff := cmp.Diff(map[string]GPUClass{"default": want}, p.GPUClasses); diff != "" || p.DefaultGPUClass != "default" {
					t.Errorf("default %q: -want, +got:\n%s", p.DefaultGPUClass, diff)
				}
			},
		},
		"CatalogueKeepsImplicitDefault": {
			reason: "A catalogue adds classes; servers that name none keep the implicit class, so nothing they run changes.",
			in:     in(map[string]v1beta1.GPUClass{"a100": a100}, nil),
			check: func(t *testing.T, p Platform) {
				if diff := cmp.Diff([]string{"a100", "default"}, p.GPUClassNames()); diff != "" || p.DefaultGPU().Resource != "nvidia.com/gpu" {
					t.Errorf("classes: -want, +got:\n%s", diff)
				}
			},
		},
		"DefaultClassNamed": {
			reason: "gpu.defaultClass names a catalogue class: no implicit class is formed.",
			in:     in(map[string]v1beta1.GPUClass{"a100": a100}, &v1beta1.GPUDefaults{DefaultClass: ptr.To("a100")}),
			check: func(t *testing.T, p Platform) {
				if diff := cmp.Diff([]string{"a100"}, p.GPUClassNames()); diff != "" || p.DefaultGPU().NodeSelector["pool"] != "a100" {
					t.Errorf("classes: -want, +got:\n%s", diff)
				}
			},
		},
		"EnvironmentConfigReplacesClassWhole": {
			reason: "An EnvironmentConfig entry replaces the Input's class of that name whole: its node selector and tolerations do not leak in.",
			in:     in(map[string]v1beta1.GPUClass{"a100": a100}, nil),
			ec:     ec(map[string]any{"gpuClasses": map[string]any{"a100": map[string]any{"resourceName": "nvidia.com/a100"}}}),
			check: func(t *testing.T, p Platform) {
				want := GPUClass{Name: "a100", Resource: "nvidia.com/a100", Sharing: "exclusive"}
				if diff := cmp.Diff(want, p.GPUClasses["a100"]); diff != "" {
					t.Errorf("a100: -want, +got:\n%s", diff)
				}
			},
		},
		"EnvironmentConfigAddsClass": {
			reason: "Classes merge by name: the EnvironmentConfig's are added to the Input's.",
			in:     in(map[string]v1beta1.GPUClass{"a100": a100}, nil),
			ec:     ec(map[string]any{"gpuClasses": map[string]any{"mig-1g": map[string]any{"resourceName": "nvidia.com/mig-1g.10gb", "sharing": "mig", "memoryPerDevice": "10Gi"}}}),
			check: func(t *testing.T, p Platform) {
				mig := p.GPUClasses["mig-1g"]
				if diff := cmp.Diff([]string{"a100", "default", "mig-1g"}, p.GPUClassNames()); diff != "" || !mig.MemoryPerDevice.Equal(resource.MustParse("10Gi")) || mig.Sharing != "mig" {
					t.Errorf("classes: -want, +got:\n%s\nmig-1g: %+v", diff, mig)
				}
			},
		},
		"MPSFailsRequestsByDefault": {
			reason: "The MPS device plugin refuses more than one device unless configured otherwise; time-slicing allows it unless configured.",
			in: in(map[string]v1beta1.GPUClass{
				"mps": {ResourceName: "nvidia.com/gpu.mps", Sharing: "mps"}, "ts": {ResourceName: "nvidia.com/gpu.shared", Sharing: "time-sliced"},
				"mps-many": {ResourceName: "nvidia.com/gpu.mps2", Sharing: "mps", FailRequestsGreaterThanOne: ptr.To(false)},
			}, nil),
			check: func(t *testing.T, p Platform) {
				if !p.GPUClasses["mps"].FailRequestsGreaterThanOne || p.GPUClasses["ts"].FailRequestsGreaterThanOne || p.GPUClasses["mps-many"].FailRequestsGreaterThanOne {
					t.Errorf("got %+v", p.GPUClasses)
				}
			},
		},
		"DRAQuotaKey": {
			reason: "A DRA class is counted by the quota key of its DeviceClass; a device plugin class by requests.<resource>.",
			in:     in(map[string]v1beta1.GPUClass{"h100": {DeviceClassName: "gpu.nvidia.com"}}, nil),
			check: func(t *testing.T, p Platform) {
				if got := p.GPUClasses["h100"].QuotaKey(); got != "gpu.nvidia.com.deviceclass.resource.k8s.io/devices" {
					t.Errorf("DRA quota key: got %s", got)
				}
				if got := p.DefaultGPU().QuotaKey(); got != "requests.nvidia.com/gpu" {
					t.Errorf("device plugin quota key: got %s", got)
				}
			},
		},
		"SharedQuotaKeysListed": {
			reason: "Classes counted by one quota key (one resource, or one DeviceClass) are told apart by their node selectors only, which a ResourceQuota cannot see.",
			in: in(map[string]v1beta1.GPUClass{"a100": a100, "h100": {ResourceName: "nvidia.com/gpu"}, "mig": {ResourceName: "nvidia.com/mig-1g.10gb", Sharing: "mig"},
				"dra-a": {DeviceClassName: "gpu.nvidia.com"}, "dra-b": {DeviceClassName: "gpu.nvidia.com", NodeSelector: map[string]string{"pool": "b"}}}, nil),
			check: func(t *testing.T, p Platform) {
				if diff := cmp.Diff([]string{"default", "h100"}, p.SharingQuotaKey("a100")); diff != "" || len(p.SharingQuotaKey("mig")) != 0 {
					t.Errorf("sharing a100: -want, +got:\n%s", diff)
				}
				if diff := cmp.Diff([]string{"dra-a"}, p.SharingQuotaKey("dra-b")); diff != "" {
					t.Errorf("sharing dra-b: -want, +got:\n%s", diff)
				}
			},
		},
		"UnknownDefaultClass": {
			reason:    "gpu.defaultClass must name a class.",
			in:        in(map[string]v1beta1.GPUClass{"a100": a100}, &v1beta1.GPUDefaults{DefaultClass: ptr.To("h100")}),
			wantError: `defaults: gpu.defaultClass "h100" is not a class of gpuClasses (a100)`,
		},
		"BothResourceAndDeviceClass": {
			reason:    "A class is a device plugin resource or a DRA DeviceClass, not both.",
			in:        in(map[string]v1beta1.GPUClass{"x": {ResourceName: "nvidia.com/gpu", DeviceClassName: "gpu.nvidia.com"}}, nil),
			wantError: "defaults: gpuClasses.x: set one of resourceName (a device plugin's resource) and deviceClassName (a DRA DeviceClass)",
		},
		"NeitherResourceNorDeviceClass": {
			reason:    "A class must say how pods get its devices.",
			in:        in(map[string]v1beta1.GPUClass{"x": {Sharing: "mig"}}, nil),
			wantError: "defaults: gpuClasses.x: set one of resourceName",
		},
		"NotAnExtendedResource": {
			reason:    "cpu is no device plugin resource.",
			in:        in(map[string]v1beta1.GPUClass{"x": {ResourceName: "cpu"}}, nil),
			wantError: `defaults: gpuClasses.x.resourceName "cpu" is not a device plugin resource`,
		},
		"ClassNameNotALabel": {
			reason:    "Class names are what servers write in spec.gpuClass, a DNS label.",
			in:        in(map[string]v1beta1.GPUClass{"A100_80": a100}, nil),
			wantError: `defaults: gpuClasses: "A100_80" is not a class name`,
		},
		"FailRequestsOnExclusive": {
			reason:    "failRequestsGreaterThanOne is the sharing plugin's setting.",
			in:        in(map[string]v1beta1.GPUClass{"x": {ResourceName: "nvidia.com/gpu", FailRequestsGreaterThanOne: ptr.To(true)}}, nil),
			wantError: "defaults: gpuClasses.x.failRequestsGreaterThanOne is the device plugin's setting for time-sliced and mps sharing",
		},
		"RequestsPrefixedResource": {
			reason:    "requests.nvidia.com/gpu is a quota key, not a resource.",
			in:        in(map[string]v1beta1.GPUClass{"x": {ResourceName: "requests.nvidia.com/gpu"}}, nil),
			wantError: `defaults: gpuClasses.x.resourceName "requests.nvidia.com/gpu" is not a device plugin resource`,
		},
		"ExplicitDefaultWithoutResource": {
			reason:    "A catalogue class named default is named in the message, not gpu.resourceName.",
			in:        in(map[string]v1beta1.GPUClass{"default": {Sharing: "mig"}}, nil),
			wantError: "defaults: gpuClasses.default: set one of resourceName",
		},
		"EmptyImplicitResource": {
			reason:    "The implicit class needs gpu.resourceName.",
			in:        in(nil, &v1beta1.GPUDefaults{ResourceName: ptr.To("")}),
			wantError: "defaults: gpu.resourceName must not be empty",
		},
	}
}
