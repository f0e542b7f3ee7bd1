package tritonserver

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/resource"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// ConditionGPUClass reports the server's GPU class, and refuses a request
// the class's devices cannot serve.
const ConditionGPUClass = "GPUClass"

// The GPUClass condition's reasons.
const (
	reasonGPUClassSelected      = "GPUClassSelected"
	reasonNoGPUs                = "NoGPUs"
	reasonUnknownGPUClass       = "UnknownGPUClass"
	reasonMIGSingleDevice       = "MIGSingleDevice"
	reasonSharedSingleDevice    = "SharedGPUSingleDevice"
	reasonModelLoadLimitInvalid = "ModelLoadGPULimitInvalid"
	reasonTooManyDevices        = "TooManyDevices"
	reasonInsufficientGPUQuota  = "InsufficientGPUQuota"
)

// gpuClaimName is the pod's name for its ResourceClaim (DRA classes), which
// the container's resources.claims refer to.
const gpuClaimName = "gpu"

// modelLoadGPULimit is Triton's option bounding the memory in use on a
// device when a model loads: <device id>:<fraction of the device's memory>
// (server src/command_line_parser.cc). It bounds the whole device, not the
// server's share: core src/backend_model_instance.cc
// VerifyModelLoadGpuFraction compares cudaMemGetInfo's total-free, every
// process's use, with fraction × total once an instance is loaded, and
// refuses the next load. So it is not composed for shared classes: a
// server's share as the fraction would refuse its neighbours' loads.
const modelLoadGPULimit = "model-load-gpu-limit"

// gpuRequest is the server's class and the devices each pod asks for.
type gpuRequest struct {
	class   compose.GPUClass
	devices int64
}

// gpuClassOf resolves spec.gpuClass (the platform's default when unset).
// problem is non-nil when the class is unknown.
func gpuClassOf(spec *v1alpha1.KalypsoTritonServerSpec, p compose.Platform) (compose.GPUClass, *compose.Condition) {
	name := spec.GPUClass
	if name == "" {
		name = p.DefaultGPUClass
	}
	class, ok := p.GPUClasses[name]
	if !ok {
		return compose.GPUClass{}, &compose.Condition{Type: ConditionGPUClass, Reason: reasonUnknownGPUClass, Message: fmt.Sprintf(
			"spec.gpuClass %q is not a GPU class of this platform: use one of %s", name, strings.Join(p.GPUClassNames(), ", "))}
	}
	return class, nil
}

// devicesOf counts the class's devices a pod asks for: spec.gpus, or the
// class's resource in the container resources (built by gpuResources).
func devicesOf(spec *v1alpha1.KalypsoTritonServerSpec, class compose.GPUClass, res corev1.ResourceRequirements) int64 {
	if class.DRA() {
		return int64(ptr.Deref(spec.GPUs, 0))
	}
	q, ok := res.Limits[class.Resource]
	if !ok {
		return 0
	}
	return q.Value()
}

// checkDevices refuses what a class's devices cannot serve, and a
// --model-load-gpu-limit Triton would refuse at start-up.
func checkDevices(spec *v1alpha1.KalypsoTritonServerSpec, g gpuRequest) *compose.Condition {
	c := g.class
	refuse := func(reason, format string, a ...any) *compose.Condition {
		return &compose.Condition{Type: ConditionGPUClass, Reason: reason, Message: fmt.Sprintf(format, a...)}
	}
	switch {
	case g.devices > 1 && c.Sharing == v1beta1.SharingMIG:
		// NVIDIA MIG user guide, "CUDA Device Enumeration": a CUDA process
		// enumerates a single MIG device (triton-inference-server/server#3151).
		return refuse(reasonMIGSingleDevice, "spec.gpus: %d devices of MIG class %s: a CUDA process sees only one MIG device, so Triton would use one slice and hold the others; ask for 1 and add replicas", g.devices, c.Name)
	case g.devices > 1 && c.FailRequestsGreaterThanOne:
		// k8s-device-plugin v0.20.0 internal/rm/rm.go ValidateRequest:
		// "maximum request size for shared resources is 1", which the
		// kubelet reports as UnexpectedAdmissionError on a failed pod.
		return refuse(reasonSharedSingleDevice, "spec.gpus: %d devices of %s class %s: its device plugin refuses more than one shared device (failRequestsGreaterThanOne), so the kubelet would fail every pod with UnexpectedAdmissionError and the ReplicaSet would keep making new ones; ask for 1", g.devices, c.Sharing, c.Name)
	case c.DRA() && g.devices > resourcev1.AllocationResultsMaxSize:
		// The API server admits the claim; no allocator allocates more
		// than AllocationResultsMaxSize devices to it (k8s.io/api v0.35.4
		// resource/v1), so the pods would stay Pending.
		return refuse(reasonTooManyDevices, "spec.gpus: %d devices of DRA class %s: a ResourceClaim gets at most %d", g.devices, c.Name, resourcev1.AllocationResultsMaxSize)
	}
	if tc := spec.TritonConfig; tc != nil {
		for i, prm := range tc.Parameters {
			if prm.Name == modelLoadGPULimit && !validLoadLimit(prm.Value) {
				return refuse(reasonModelLoadLimitInvalid, "spec.tritonConfig.parameters[%d]: --%s=%s: the value must be <device id>:<fraction between 0 and 1>, such as 0:0.8 (Triton refuses anything else at start-up)", i, modelLoadGPULimit, prm.Value)
			}
		}
	}
	return nil
}

// validLoadLimit: <device id ≥ 0>:<fraction in [0, 1]>, which Triton
// checks at start-up (core src/tritonserver.cc
// TRITONSERVER_ServerOptionsSetModelLoadDeviceLimit).
func validLoadLimit(v string) bool {
	id, f, ok := strings.Cut(v, ":")
	dev, err := strconv.Atoi(id)
	if !ok || err != nil || dev < 0 {
		return false
	}
	frac, err := strconv.ParseFloat(f, 64)
	return err == nil && frac >= 0 && frac <= 1
}

// gpuCondition reports the class a server with GPUs uses.
func gpuCondition(g gpuRequest) compose.Condition {
	if g.devices == 0 {
		return compose.Condition{Type: ConditionGPUClass, Status: true, Reason: reasonNoGPUs, Message: "the server asks for no GPUs"}
	}
	msg := fmt.Sprintf("class %s: %d × %s per pod, %s", g.class.Name, g.devices, g.class.Describe(), g.class.Sharing)
	if !g.class.MemoryPerDevice.IsZero() {
		msg += fmt.Sprintf(", %s of GPU memory per device", g.class.MemoryPerDevice.String())
	}
	return compose.Condition{Type: ConditionGPUClass, Status: true, Reason: reasonGPUClassSelected, Message: msg}
}

// resourceClaimTemplate asks for a DRA class's devices: every pod gets a
// ResourceClaim made from it by the resource claim controller
// (resource.k8s.io/v1 moved the class and count under exactly).
func resourceClaimTemplate(name, namespace string, labels, claimLabels map[string]string, g gpuRequest) *resourcev1.ResourceClaimTemplate {
	return &resourcev1.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: resourcev1.ResourceClaimTemplateSpec{
			// The claims get these labels, which find them again; only the
			// server's name, since the spec is immutable.
			ObjectMeta: metav1.ObjectMeta{Labels: claimLabels},
			Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{
				Name: gpuClaimName,
				Exactly: &resourcev1.ExactDeviceRequest{
					DeviceClassName: g.class.DeviceClass,
					AllocationMode:  resourcev1.DeviceAllocationModeExactCount,
					Count:           g.devices,
				},
			}}}},
		},
	}
}

// claimTemplateSuffix names the ResourceClaimTemplate after what it asks
// for: its spec is immutable (k8s.io/kubernetes v1.35.4
// pkg/apis/resource/validation ValidateResourceClaimTemplateUpdate), so
// another class or count is a new template, under a new pipeline name,
// and Crossplane deletes the old one once it is no longer desired. Pods
// keep the claims made from it.
// claimTemplatePrefix begins the pipeline names of the track's
// ResourceClaimTemplates.
func (c *Composer) claimTemplatePrefix() string {
	if c.canary != nil {
		return resCanaryClaimTemplatePrefix
	}
	return resClaimTemplatePrefix
}

func (c *Composer) claimTemplateSuffix() string {
	h := fnv.New32a()
	h.Write([]byte(c.gpu.class.DeviceClass))
	return fmt.Sprintf("gpu%d-%08x", c.gpu.devices, h.Sum32())
}

func (c *Composer) claimTemplateName() string {
	if !c.gpu.class.DRA() || c.gpu.devices == 0 {
		return ""
	}
	return c.name(c.claimTemplateSuffix())
}

// addClaimTemplate composes the ResourceClaimTemplate of a DRA class's
// server when the Deployment is rebuilt from the spec, and keeps the
// observed ones its pods may still need: all of them while the Deployment
// is kept as it is, and older ones until the Deployment has rolled out
// (Crossplane v2.2.1 deletes what is no longer desired before it applies
// the rest, internal/controller/apiextensions/composite/composition_functions.go,
// and a pod the old ReplicaSet makes meanwhile needs its template:
// pkg/controller/resourceclaim/controller.go handleClaim).
func (c *Composer) addClaimTemplate(d *compose.Desired, rebuilt bool, labels map[string]string) error {
	current := resource.Name("")
	if name := c.claimTemplateName(); rebuilt && name != "" {
		current = resource.Name(c.claimTemplatePrefix() + c.claimTemplateSuffix())
		if _, err := d.Add(current, resourceClaimTemplate(name, c.id.Namespace, labels, c.selector(), c.gpu), compose.Exists); err != nil {
			return err
		}
	}
	if rebuilt && c.rolledOutWith(c.claimTemplateName()) {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(c.observed)) {
		if name != current && strings.HasPrefix(string(name), c.claimTemplatePrefix()) {
			if _, err := d.Keep(name, c.observed[name].Resource, compose.Exists); err != nil {
				return err
			}
		}
	}
	return nil
}

// rolledOutWith: the observed Deployment's pods are all made from a pod
// template naming this ResourceClaimTemplate ("": none), and it serves.
func (c *Composer) rolledOutWith(template string) bool {
	if c.deploy == nil {
		return true
	}
	uses, _ := compose.ListEntry(c.deploy.Object, "name", gpuClaimName, "spec", "template", "spec", "resourceClaims")["resourceClaimTemplateName"].(string)
	gen, _ := compose.Int(c.deploy.Object, "metadata", "generation")
	seen, _ := compose.Int(c.deploy.Object, "status", "observedGeneration")
	pods, _ := compose.Int(c.deploy.Object, "status", "replicas")
	updated, _ := compose.Int(c.deploy.Object, "status", "updatedReplicas")
	return uses == template && seen >= gen && updated == pods && c.serves(c.deploy)
}

// awaitsClaims: a server of a DRA class whose Deployment misses replicas,
// which then reads the quotas. Its pods' ResourceClaims are charged to the
// quota when the resource claim controller creates them, after the pods
// are admitted, so a pod over quota stays Pending with no condition and
// only a FailedResourceClaimCreation event (k8s.io/kubernetes v1.35.4
// pkg/controller/resourceclaim/controller.go syncPod; the scheduler gates
// the pod in PreEnqueue until its claim exists, with no PodScheduled
// condition). Its claims are not read: core would cache every
// ResourceClaim of the cluster until it restarts.
func (c *Composer) awaitsClaims(p compose.Platform) bool {
	if c.deploy == nil {
		return false
	}
	class, problem := gpuClassOf(&c.spec, p)
	if problem != nil || !class.DRA() || ptr.Deref(c.spec.GPUs, 0) == 0 {
		return false
	}
	want, available := deploymentCounts(c.deploy)
	return available < want
}

// claimShortfall tells a DRA server's missing pods' quota problem: when a
// read pod waits for its ResourceClaim (not terminating, no claim in its
// status) and the quota has no room for one, that is the reason
// (definite); without pods read, a full quota is only a hint added to the
// message, since a pod that is loading or crash-looping holds its claim.
func (c *Composer) claimShortfall(avail availability, quotas, pods []resource.Required) availability {
	if c.deploy == nil || !c.gpu.class.DRA() || c.gpu.devices == 0 {
		return avail
	}
	if want, available := deploymentCounts(c.deploy); available >= want {
		return avail
	}
	short := shortQuota(sortedByName(quotas), c.gpu.class.QuotaKey(), *kresource.NewQuantity(c.gpu.devices, kresource.DecimalSI))
	if short == "" {
		return avail
	}
	refused := fmt.Sprintf("%s: the ResourceClaim of a new pod (%d devices of class %s) is refused, so the pod stays Pending with a FailedResourceClaimCreation event (kubectl get events -n %s --field-selector reason=FailedResourceClaimCreation); lower the replicas or raise the project's gpuQuota",
		short, c.gpu.devices, c.gpu.class.Name, c.id.Namespace)
	if pod := podWithoutClaim(pods); pod != "" {
		avail.reason, avail.message = reasonInsufficientGPUQuota, "pod "+pod+" has no ResourceClaim: "+refused
		return avail
	}
	if len(pods) == 0 {
		avail.message += "; if a pod has no ResourceClaim yet, this is why: " + refused
	}
	return avail
}

// podWithoutClaim names the first pod (by name) that asks for a claim of
// its GPUs, is not terminating, and has none in its status; "" when none.
func podWithoutClaim(pods []resource.Required) string {
	var names []string
	for _, p := range pods {
		pod := p.Resource.Object
		if p.Resource.GetDeletionTimestamp() != nil || compose.ListEntry(pod, "name", gpuClaimName, "spec", "resourceClaims") == nil {
			continue
		}
		if compose.ListEntry(pod, "name", gpuClaimName, "status", "resourceClaimStatuses")["resourceClaimName"] == nil {
			names = append(names, p.Resource.GetName())
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
