package tritonserver

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// withDefaultClass changes the platform's default GPU class, on a copy of
// its catalogue.
func withDefaultClass(p compose.Platform, change func(*compose.GPUClass)) compose.Platform {
	p.GPUClasses = maps.Clone(p.GPUClasses)
	c := p.DefaultGPU()
	change(&c)
	p.GPUClasses[p.DefaultGPUClass] = c
	return p
}

// catalogue is a platform with whole GPUs (the implicit default class), MIG
// slices under their own resource name, time-sliced GPUs whose plugin
// refuses more than one, MPS shares, and a DRA class.
func catalogue(t *testing.T) compose.Platform {
	t.Helper()
	q := func(s string) *kresource.Quantity { return ptr.To(kresource.MustParse(s)) }
	migTaint := []corev1.Toleration{{Key: "nvidia.com/mig", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{GPUClasses: map[string]v1beta1.GPUClass{
		"mig-1g": {ResourceName: "nvidia.com/mig-1g.10gb", Sharing: v1beta1.SharingMIG, NodeSelector: map[string]string{"nvidia.com/mig.config": "all-1g.10gb"},
			Tolerations: migTaint, RuntimeClassName: "nvidia", MemoryPerDevice: q("10Gi")},
		"shared": {ResourceName: "nvidia.com/gpu.shared", Sharing: v1beta1.SharingTimeSliced, FailRequestsGreaterThanOne: ptr.To(true),
			MemoryPerDevice: q("20Gi")},
		"shared-many": {ResourceName: "nvidia.com/gpu.many", Sharing: v1beta1.SharingTimeSliced, MemoryPerDevice: q("24Gi")},
		"mps":         {ResourceName: "nvidia.com/gpu.mps", Sharing: v1beta1.SharingMPS},
		// A MIG resource name on a class that does not say mig: the
		// platform's word (sharing) is what counts.
		"mig-named": {ResourceName: "nvidia.com/mig-3g.40gb"},
		"dra-h100":  {DeviceClassName: "gpu.nvidia.com", NodeSelector: map[string]string{"pool": "h100"}},
	}}})
}

func TestGPUClasses(t *testing.T) {
	p := catalogue(t)
	draQuota := func(used string) string {
		return "{apiVersion: v1, kind: ResourceQuota, metadata: {name: gpus, namespace: vision-dev}, status: {hard: {gpu.nvidia.com.deviceclass.resource.k8s.io/devices: '2'}, used: {gpu.nvidia.com.deviceclass.resource.k8s.io/devices: '" + used + "'}}}"
	}
	args := func(t *testing.T, r compose.Result) []string {
		t.Helper()
		return decodeStrict[appsv1.Deployment](t, r, resDeployment).Spec.Template.Spec.Containers[0].Args
	}
	limits := func(t *testing.T, r compose.Result) corev1.ResourceList {
		t.Helper()
		return decodeStrict[appsv1.Deployment](t, r, resDeployment).Spec.Template.Spec.Containers[0].Resources.Limits
	}
	hasArg := func(want string, has bool) func(*testing.T, compose.Result) {
		return func(t *testing.T, r compose.Result) {
			t.Helper()
			if got := slices.Contains(args(t, r), want); got != has {
				t.Errorf("arg %s: want present=%v, got args %v", want, has, args(t, r))
			}
		}
	}
	draTemplate := resource.Name(resClaimTemplatePrefix + "gpu2-48275129")
	draTemplateOne := resource.Name(resClaimTemplatePrefix + "gpu1-48275129")

	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		quotas   []string
		readPods bool     // the platform reads pods
		pods     []string // the server's pods
		// resources composed; nil: the usual Deployment, Service and Usage
		resources []resource.Name
		gpu       cond
		message   string // substring of the GPUClass message
		check     func(*testing.T, compose.Result)
	}{
		"DefaultClass": {
			reason: "A server without spec.gpuClass uses the default class: nvidia.com/gpu in requests and limits, as before classes existed.",
			spec:   "gpus: 2\n", gpu: cond{true, reasonGPUClassSelected}, message: "class default: 2 × nvidia.com/gpu per pod, exclusive",
			check: func(t *testing.T, r compose.Result) {
				if q := limits(t, r)["nvidia.com/gpu"]; q.Value() != 2 {
					t.Errorf("want 2 nvidia.com/gpu, got %v", limits(t, r))
				}
			},
		},
		"MIGClass": {
			reason: "A MIG class's resource, node selector, tolerations and runtime class; no load limit (CUDA sees the slice as the whole device).",
			spec:   "gpuClass: mig-1g\ngpus: 1\n", gpu: cond{true, reasonGPUClassSelected}, message: "10Gi of GPU memory per device",
			check: func(t *testing.T, r compose.Result) {
				pod := decodeStrict[appsv1.Deployment](t, r, resDeployment).Spec.Template.Spec
				if q := pod.Containers[0].Resources.Limits["nvidia.com/mig-1g.10gb"]; q.Value() != 1 || ptr.Deref(pod.RuntimeClassName, "") != "nvidia" ||
					pod.NodeSelector["nvidia.com/mig.config"] != "all-1g.10gb" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "nvidia.com/mig" {
					t.Errorf("want the MIG class's resource and placement, got %+v", pod)
				}
				if _, ok := pod.Containers[0].Resources.Limits["nvidia.com/gpu"]; ok {
					t.Error("a MIG server must not ask for a whole GPU")
				}
				hasArg("--model-load-gpu-limit=0:1", false)(t, r)
			},
		},
		"MIGTwoRefused": {
			reason: "Two MIG slices for one Triton process: CUDA enumerates one, so nothing is created and the condition says why.",
			spec:   "gpuClass: mig-1g\ngpus: 2\n", resources: []resource.Name{}, gpu: cond{false, reasonMIGSingleDevice},
			message: "spec.gpus: 2 devices of MIG class mig-1g: a CUDA process sees only one MIG device",
		},
		"MIGTwoAfterCreateKept": {
			reason: "A running MIG server changed to two slices keeps its Deployment as it is (never rebuilt into pods that waste a slice).",
			spec:   "gpuClass: mig-1g\ngpus: 2\n", observed: createdOn(t, p, "gpuClass: mig-1g\ngpus: 1\n", deployAvailable),
			gpu: cond{false, reasonMIGSingleDevice}, message: "ask for 1 and add replicas",
			check: func(t *testing.T, r compose.Result) {
				if q := limits(t, r)["nvidia.com/mig-1g.10gb"]; q.Value() != 1 {
					t.Errorf("want the observed Deployment kept with 1 slice, got %v", limits(t, r))
				}
			},
		},
		"MIGResourceNameIsNotTheCheck": {
			reason: "The check keys on the sharing mode, not on a mig- resource name (with the single MIG strategy, slices are nvidia.com/gpu).",
			spec:   "gpuClass: mig-named\ngpus: 2\n", gpu: cond{true, reasonGPUClassSelected},
		},
		"TimeSlicedFailRequestsRefused": {
			reason: "More than one device of a time-sliced class whose plugin fails such requests: the kubelet would fail every pod, so nothing is created.",
			spec:   "gpuClass: shared\ngpus: 2\n", resources: []resource.Name{}, gpu: cond{false, reasonSharedSingleDevice},
			message: "UnexpectedAdmissionError",
		},
		"MPSRefusesTwoByDefault": {
			reason: "The MPS device plugin refuses more than one device unless told otherwise.",
			spec:   "gpuClass: mps\ngpus: 2\n", resources: []resource.Name{}, gpu: cond{false, reasonSharedSingleDevice},
		},
		"TimeSlicedManyAllowed": {
			reason: "Without failRequestsGreaterThanOne two shares are allowed; no load limit is composed (Triton's bounds the whole device, neighbours included).",
			spec:   "gpuClass: shared-many\ngpus: 2\n", gpu: cond{true, reasonGPUClassSelected}, message: "24Gi of GPU memory per device",
			check: func(t *testing.T, r compose.Result) {
				for _, a := range args(t, r) {
					if strings.Contains(a, modelLoadGPULimit) {
						t.Errorf("no --model-load-gpu-limit for a shared class, got %s", a)
					}
				}
			},
		},
		"OwnLoadLimitKept": {
			reason: "A server's own load limit is passed through.",
			spec:   "gpuClass: shared\ngpus: 1\ntritonConfig: {parameters: [{name: model-load-gpu-limit, value: '0:0.9'}]}\n", gpu: cond{true, reasonGPUClassSelected},
			check: hasArg("--model-load-gpu-limit=0:0.9", true),
		},
		"OwnLoadLimitMalformed": {
			reason: "A value Triton would refuse at start-up is refused first.",
			spec:   "gpuClass: shared\ngpus: 1\ntritonConfig: {parameters: [{name: model-load-gpu-limit, value: '0.25'}]}\n", resources: []resource.Name{},
			gpu: cond{false, reasonModelLoadLimitInvalid}, message: "spec.tritonConfig.parameters[0]: --model-load-gpu-limit=0.25: the value must be <device id>:<fraction between 0 and 1>",
		},
		"OwnLoadLimitAboveOne": {
			reason: "Triton refuses a fraction above 1.",
			spec:   "gpus: 1\ntritonConfig: {parameters: [{name: model-load-gpu-limit, value: '0:1.5'}]}\n", resources: []resource.Name{},
			gpu: cond{false, reasonModelLoadLimitInvalid},
		},
		"DRATooManyDevices": {
			reason: "No allocator gives a claim more than 32 devices: refused instead of pods that stay Pending.",
			spec:   "gpuClass: dra-h100\ngpus: 33\n", resources: []resource.Name{}, gpu: cond{false, reasonTooManyDevices},
			message: "spec.gpus: 33 devices of DRA class dra-h100: a ResourceClaim gets at most 32",
		},
		"UnknownClass": {
			reason: "A class the platform does not have: nothing is created, the condition lists the classes.",
			spec:   "gpuClass: h200\ngpus: 1\n", resources: []resource.Name{}, gpu: cond{false, reasonUnknownGPUClass},
			message: `spec.gpuClass "h200" is not a GPU class of this platform: use one of default, dra-h100, mig-1g, mig-named, mps, shared, shared-many`,
		},
		"DRAClass": {
			reason: "A DRA class: a ResourceClaimTemplate for 2 devices of its DeviceClass, the pod's claim and the container's, no extended resource.",
			spec:   "gpuClass: dra-h100\ngpus: 2\n", gpu: cond{true, reasonGPUClassSelected}, message: "2 × DRA DeviceClass gpu.nvidia.com per pod",
			resources: []resource.Name{resDeployment, resService, resUsage, draTemplate},
			check: func(t *testing.T, r compose.Result) {
				tmpl := decodeStrict[resourcev1.ResourceClaimTemplate](t, r, draTemplate)
				want := []resourcev1.DeviceRequest{{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{
					DeviceClassName: "gpu.nvidia.com", AllocationMode: resourcev1.DeviceAllocationModeExactCount, Count: 2}}}
				if diff := cmp.Diff(want, tmpl.Spec.Spec.Devices.Requests); diff != "" || tmpl.Name != "resnet-gpu2-48275129" {
					t.Errorf("claim template %s: -want, +got:\n%s", tmpl.Name, diff)
				}
				pod := decodeStrict[appsv1.Deployment](t, r, resDeployment).Spec.Template.Spec
				wantClaims := []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To("resnet-gpu2-48275129")}}
				if diff := cmp.Diff(wantClaims, pod.ResourceClaims); diff != "" {
					t.Errorf("pod claims: -want, +got:\n%s", diff)
				}
				if diff := cmp.Diff([]corev1.ResourceClaim{{Name: "gpu"}}, pod.Containers[0].Resources.Claims); diff != "" {
					t.Errorf("container claims: -want, +got:\n%s", diff)
				}
				for name := range pod.Containers[0].Resources.Limits {
					if strings.Contains(string(name), "nvidia") {
						t.Errorf("a DRA server asks for no extended resource, got %s", name)
					}
				}
				if pod.NodeSelector["pool"] != "h100" {
					t.Errorf("want the class's node selector, got %v", pod.NodeSelector)
				}
			},
		},
		"DRAQuotaBeforeCreate": {
			reason: "The DRA class's quota key is checked before the first create: 2 devices with none free.",
			spec:   "gpuClass: dra-h100\ngpus: 2\n", quotas: []string{draQuota("1")}, resources: []resource.Name{}, gpu: cond{true, reasonGPUClassSelected},
			check: func(t *testing.T, r compose.Result) {
				if c := condsOf(r)[ConditionServerAvailable]; c.Reason != "InsufficientGPUQuota" ||
					!strings.Contains(message(r, ConditionServerAvailable), "ResourceQuota gpus allows 2 gpu.nvidia.com.deviceclass.resource.k8s.io/devices and 1 are in use: 2 more are needed (GPUs of class dra-h100 per pod × replicas)") {
					t.Errorf("want InsufficientGPUQuota on the DRA key, got %+v: %s", c, message(r, ConditionServerAvailable))
				}
			},
		},
		"DRAClaimsOverQuotaHint": {
			reason: "A DRA server missing a pod with a full quota, pods not read: the quota is a hint in the message (a loading pod holds its claim too), the reason stays the Deployment's.",
			spec:   "gpuClass: dra-h100\ngpus: 2\n", observed: createdOn(t, p, "gpuClass: dra-h100\ngpus: 2\n", deployProgressing), quotas: []string{draQuota("2")},
			resources: []resource.Name{resDeployment, resService, resUsage, draTemplate}, gpu: cond{true, reasonGPUClassSelected},
			check: func(t *testing.T, r compose.Result) {
				if c, m := condsOf(r)[ConditionServerAvailable], message(r, ConditionServerAvailable); c.Reason == reasonInsufficientGPUQuota ||
					!strings.Contains(m, "if a pod has no ResourceClaim yet, this is why: ResourceQuota gpus allows 2 gpu.nvidia.com.deviceclass.resource.k8s.io/devices and 2 are in use") {
					t.Errorf("want the Deployment's reason with the quota hint, got %+v: %s", c, m)
				}
			},
		},
		"DRAClaimsOverQuotaPodRead": {
			reason: "With pods read, a pending pod without a ResourceClaim and a full quota: the quota is the reason.",
			spec:   "gpuClass: dra-h100\ngpus: 2\n", observed: createdOn(t, p, "gpuClass: dra-h100\ngpus: 2\n", deployProgressing), quotas: []string{draQuota("2")},
			readPods: true, pods: []string{"{apiVersion: v1, kind: Pod, metadata: {name: resnet-deploy-b, namespace: vision-dev, labels: {kalypso-serving.io/tritonserver: resnet}}, spec: {resourceClaims: [{name: gpu, resourceClaimTemplateName: resnet-gpu2-48275129}]}, status: {phase: Pending}}"},
			resources: []resource.Name{resDeployment, resService, resUsage, draTemplate}, gpu: cond{true, reasonGPUClassSelected},
			check: func(t *testing.T, r compose.Result) {
				if c, m := condsOf(r)[ConditionServerAvailable], message(r, ConditionServerAvailable); c.Reason != reasonInsufficientGPUQuota ||
					!strings.HasPrefix(m, "pod resnet-deploy-b has no ResourceClaim: ResourceQuota gpus allows 2") || !strings.Contains(m, "FailedResourceClaimCreation") {
					t.Errorf("want InsufficientGPUQuota naming the pod and the event, got %+v: %s", c, m)
				}
			},
		},
		"DRAPodHoldsItsClaim": {
			reason: "A full quota is not why a pod is unavailable when every pod has its claim (loading, crash-looping): the usual diagnosis stays.",
			spec:   "gpuClass: dra-h100\ngpus: 2\n", observed: createdOn(t, p, "gpuClass: dra-h100\ngpus: 2\n", deployProgressing), quotas: []string{draQuota("2")},
			readPods: true, pods: []string{"{apiVersion: v1, kind: Pod, metadata: {name: resnet-deploy-a, namespace: vision-dev, labels: {kalypso-serving.io/tritonserver: resnet}}, spec: {resourceClaims: [{name: gpu, resourceClaimTemplateName: resnet-gpu2-48275129}]}, status: {phase: Pending, resourceClaimStatuses: [{name: gpu, resourceClaimName: resnet-deploy-a-gpu-x1}]}}"},
			resources: []resource.Name{resDeployment, resService, resUsage, draTemplate}, gpu: cond{true, reasonGPUClassSelected},
			check: func(t *testing.T, r compose.Result) {
				if c := condsOf(r)[ConditionServerAvailable]; c.Reason == reasonInsufficientGPUQuota {
					t.Errorf("want the Deployment's own diagnosis, got %+v: %s", c, message(r, ConditionServerAvailable))
				}
			},
		},
		"DRATemplateKeptDuringRollout": {
			reason: "Another count is a new template; the old one stays while the Deployment's pods still come from it.",
			spec:   "gpuClass: dra-h100\ngpus: 1\n", observed: createdOn(t, p, "gpuClass: dra-h100\ngpus: 2\n", deployAvailable),
			resources: []resource.Name{resDeployment, resService, resUsage, draTemplate, draTemplateOne}, gpu: cond{true, reasonGPUClassSelected},
		},
		"DRAOldTemplateDroppedAfterRollout": {
			reason: "Once the Deployment has rolled out from the new template, the old one goes.",
			spec:   "gpuClass: dra-h100\ngpus: 1\n",
			observed: func() map[string]string {
				o := createdOn(t, p, "gpuClass: dra-h100\ngpus: 1\n", deployAvailable)
				o[string(draTemplate)] = "{apiVersion: resource.k8s.io/v1, kind: ResourceClaimTemplate, metadata: {name: resnet-gpu2-48275129, namespace: vision-dev}}"
				return o
			}(),
			resources: []resource.Name{resDeployment, resService, resUsage, draTemplateOne}, gpu: cond{true, reasonGPUClassSelected},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pl := p
			pl.ReadPods = tc.readPods
			r := scene{xr: serverXR(tc.spec, ""), observed: tc.observed, required: map[string][]string{reqApplication: {readyApp}, reqQuotas: tc.quotas, reqPods: tc.pods}}.run(t, int64s, pl)
			if r.Fatal != nil {
				t.Fatalf("%s\nFatal: %v", tc.reason, r.Fatal)
			}
			want := tc.resources
			if want == nil {
				want = []resource.Name{resDeployment, resService, resUsage}
			}
			if diff := cmp.Diff(want, slices.Sorted(maps.Keys(r.Desired)), cmp.Transformer("sort", func(in []resource.Name) []resource.Name { return slices.Sorted(slices.Values(in)) })); diff != "" {
				t.Errorf("%s\ncomposed: -want, +got:\n%s", tc.reason, diff)
			}
			if got := condsOf(r)[ConditionGPUClass]; got != tc.gpu {
				t.Errorf("%s\nGPUClass: want %+v, got %+v (%s)", tc.reason, tc.gpu, got, message(r, ConditionGPUClass))
			}
			if m := message(r, ConditionGPUClass); !strings.Contains(m, tc.message) {
				t.Errorf("%s\nGPUClass message: want it to contain %q, got %q", tc.reason, tc.message, m)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestClaimQuotaRequired: a DRA server reads the quotas while replicas are
// missing (after the first create too), and no other server does after it.
func TestClaimQuotaRequired(t *testing.T) {
	p := catalogue(t)
	for name, tc := range map[string]struct {
		spec, deploy string
		want         bool
	}{
		"DRAProgressing":       {"gpuClass: dra-h100\ngpus: 1\n", deployProgressing, true},
		"DRAAvailable":         {"gpuClass: dra-h100\ngpus: 1\n", deployAvailable, false},
		"DevicePluginProgress": {"gpuClass: mig-1g\ngpus: 1\n", deployProgressing, false},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := scene{xr: serverXR(tc.spec, ""), observed: createdOn(t, p, tc.spec, tc.deploy)}.composer(t, int64s)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := c.Requirements(p)[reqQuotas]; got != tc.want {
				t.Errorf("quotas required: want %v, got %v", tc.want, got)
			}
		})
	}
}
