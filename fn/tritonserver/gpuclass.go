package tritonserver

import (
	"fmt"
	"hash/fnv"
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
	reasonGPUClassSelected     = "GPUClassSelected"
	reasonNoGPUs               = "NoGPUs"
	reasonUnknownGPUClass      = "UnknownGPUClass"
	reasonMIGSingleDevice      = "MIGSingleDevice"
	reasonSharedSingleDevice   = "SharedGPUSingleDevice"
	reasonModelLoadLimitTooBig = "ModelLoadGPULimitTooHigh"
)

// gpuClaimName is the pod's name for its ResourceClaim (DRA classes), which
// the container's resources.claims refer to.
const gpuClaimName = "gpu"

// modelLoadGPULimit is Triton's option bounding the memory in use on a
// device when a model loads: <device id>:<fraction of the device's memory>
// (server src/command_line_parser.cc; core src/backend_model_instance.cc
// VerifyModelLoadGpuFraction compares cudaMemGetInfo's total-free, every
// process's use, with fraction × total once an instance is loaded, and
// refuses the next load). A load gate, not a runtime cap.
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

// checkDevices refuses what a class's devices cannot serve, and returns
// the --model-load-gpu-limit options composed for a shared class.
func checkDevices(spec *v1alpha1.KalypsoTritonServerSpec, g gpuRequest) ([]flag, *compose.Condition) {
	c := g.class
	refuse := func(reason, format string, a ...any) ([]flag, *compose.Condition) {
		return nil, &compose.Condition{Type: ConditionGPUClass, Reason: reason, Message: fmt.Sprintf(format, a...)}
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
	}
	if g.devices == 0 || c.MemoryPerDevice.IsZero() {
		return nil, nil
	}
	asked := false
	if tc := spec.TritonConfig; tc != nil {
		for i, prm := range tc.Parameters {
			if prm.Name != modelLoadGPULimit {
				continue
			}
			asked = true
			field := fmt.Sprintf("spec.tritonConfig.parameters[%d]", i)
			_, frac, err := parseLoadLimit(prm.Value)
			if err != nil {
				return refuse(reasonModelLoadLimitTooBig, "%s: --%s=%s: %v", field, modelLoadGPULimit, prm.Value, err)
			}
			if allowed := fractionOf(c.MemoryPerDevice, c.PhysicalMemory); frac > allowed {
				return refuse(reasonModelLoadLimitTooBig, "%s: --%s=%s lets models load until %s of the device's %s are in use, above the %s each server has on class %s; use a fraction of at most %s",
					field, modelLoadGPULimit, prm.Value, memoryAt(c.PhysicalMemory, frac), c.PhysicalMemory.String(), c.MemoryPerDevice.String(), c.Name, formatFraction(allowed))
			}
		}
	}
	if asked || !c.Shared() {
		return nil, nil
	}
	limit := formatFraction(fractionOf(c.MemoryPerDevice, c.PhysicalMemory))
	flags := make([]flag, 0, g.devices)
	for i := range g.devices {
		flags = append(flags, flag{modelLoadGPULimit, strconv.FormatInt(i, 10) + ":" + limit})
	}
	return flags, nil
}

// parseLoadLimit reads <device id>:<fraction>, which Triton checks for a
// device id ≥ 0 and a fraction in [0, 1] (core src/tritonserver.cc
// TRITONSERVER_ServerOptionsSetModelLoadDeviceLimit).
func parseLoadLimit(v string) (int, float64, error) {
	id, f, ok := strings.Cut(v, ":")
	dev, err := strconv.Atoi(id)
	if !ok || err != nil || dev < 0 {
		return 0, 0, fmt.Errorf("the value must be <device id>:<fraction>, such as 0:0.25")
	}
	frac, err := strconv.ParseFloat(f, 64)
	if err != nil || frac < 0 || frac > 1 {
		return 0, 0, fmt.Errorf("the fraction must be between 0 and 1, such as 0:0.25")
	}
	return dev, frac, nil
}

// fractionOf is part/whole, rounded down to the three decimals composed.
func fractionOf(part, whole kresource.Quantity) float64 {
	f := part.AsApproximateFloat64() / whole.AsApproximateFloat64()
	return float64(int64(f*1000)) / 1000
}

func formatFraction(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// memoryAt is frac of a quantity, in its format, for messages.
func memoryAt(q kresource.Quantity, frac float64) string {
	return kresource.NewQuantity(int64(q.AsApproximateFloat64()*frac), q.Format).String()
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
func resourceClaimTemplate(name, namespace string, labels map[string]string, g gpuRequest) *resourcev1.ResourceClaimTemplate {
	return &resourcev1.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: resourcev1.ResourceClaimTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
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
// server, or, while the Deployment is kept as it is, keeps the observed
// ones its pods were made from.
func (c *Composer) addClaimTemplate(d *compose.Desired, fresh bool, labels map[string]string) error {
	if !fresh {
		for name, o := range c.observed {
			if strings.HasPrefix(string(name), resClaimTemplatePrefix) {
				if _, err := d.Keep(name, o.Resource, compose.Exists); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if name := c.claimTemplateName(); name != "" {
		_, err := d.Add(resource.Name(resClaimTemplatePrefix+c.claimTemplateSuffix()), resourceClaimTemplate(name, c.id.Namespace, labels, c.gpu), compose.Exists)
		return err
	}
	return nil
}

// awaitsClaims: a server of a DRA class whose Deployment misses replicas.
// Its pods' ResourceClaims are charged to the quota when the resource claim
// controller creates them, after the pods are admitted, so a pod over
// quota stays Pending with no condition and only a
// FailedResourceClaimCreation event (k8s.io/kubernetes v1.35.4
// pkg/controller/resourceclaim/controller.go syncPod; the scheduler gates
// the pod in PreEnqueue until its claim exists, with no PodScheduled
// condition). Only the quota tells.
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

// claimShortfall says why a DRA server's missing pods wait, when the quota
// has no room for one more pod's claim.
func (c *Composer) claimShortfall(quotas []resource.Required) string {
	if c.deploy == nil || !c.gpu.class.DRA() || c.gpu.devices == 0 {
		return ""
	}
	if want, available := deploymentCounts(c.deploy); available >= want {
		return ""
	}
	short := shortQuota(sortedByName(quotas), c.gpu.class.QuotaKey(), *kresource.NewQuantity(c.gpu.devices, kresource.DecimalSI))
	if short == "" {
		return ""
	}
	return fmt.Sprintf("%s: the ResourceClaim of a new pod (%d devices of class %s) is refused, so the pod stays Pending with a FailedResourceClaimCreation event (kubectl get events -n %s --field-selector reason=FailedResourceClaimCreation); lower the replicas or raise the project's gpuQuota",
		short, c.gpu.devices, c.gpu.class.Name, c.id.Namespace)
}
