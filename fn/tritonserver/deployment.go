package tritonserver

import (
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

const (
	containerName = "tritonserver"
	// shmFloor keeps /dev/shm above the container runtime's 64 MiB default,
	// which the python backend and system shared memory outgrow.
	shmFloor = 256 << 20
	// shmRegions is how many python backend regions /dev/shm is sized for:
	// each model instance's stub maps one region of the default size and
	// grows it in steps.
	shmRegions = 16
	// progressMargin keeps the rollout deadline above the startup budget.
	progressMargin = 300
	probePeriod    = 10
)

// shmSize is the /dev/shm size limit: room for shmRegions python regions of
// the default size plus one growth step each, never below the floor.
func shmSize(pb *v1alpha1.PythonBackendSpec) resource.Quantity {
	size := int64(shmFloor)
	if pb != nil {
		need := shmRegions * (ptr.Deref(pb.ShmDefaultByteSize, defaultShmDefaultBytes) + ptr.Deref(pb.ShmGrowthByteSize, 0))
		size = max(size, need)
	}
	const mi = 1 << 20
	return *resource.NewQuantity((size+mi-1)/mi*mi, resource.BinarySI)
}

// gpuResources adds the gpus shortcut to the container resources, in both
// requests and limits (extended resources must match), completes a GPU
// given only as a request with the same limit, and refuses requests above
// limits, which the API server would refuse on apply.
func gpuResources(spec *v1alpha1.KalypsoTritonServerSpec, gpu corev1.ResourceName) (corev1.ResourceRequirements, error) {
	var r corev1.ResourceRequirements
	if spec.Resources != nil {
		r = *spec.Resources.DeepCopy()
	}
	set := func(list *corev1.ResourceList, q resource.Quantity) {
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[gpu] = q
	}
	if spec.GPUs != nil && *spec.GPUs > 0 {
		n := *resource.NewQuantity(int64(*spec.GPUs), resource.DecimalSI)
		// In a fixed order: the message must not depend on map iteration.
		for _, s := range []struct {
			side string
			list *corev1.ResourceList
		}{{"limits", &r.Limits}, {"requests", &r.Requests}} {
			if have, ok := (*s.list)[gpu]; ok && have.Cmp(n) != 0 {
				return r, fmt.Errorf("spec.gpus (%d) and spec.resources.%s[%s] (%s) disagree: set one of them", *spec.GPUs, s.side, gpu, have.String())
			}
			set(s.list, n)
		}
	}
	if q, ok := r.Requests[gpu]; ok {
		if _, limited := r.Limits[gpu]; !limited {
			set(&r.Limits, q)
		}
	}
	for _, name := range sortedKeys(r.Requests) {
		req := r.Requests[name]
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			return r, fmt.Errorf("spec.resources.requests[%s] (%s) is above spec.resources.limits[%s] (%s): a request cannot exceed its limit", name, req.String(), name, lim.String())
		}
	}
	return r, nil
}

func usesGPU(r corev1.ResourceRequirements, gpu corev1.ResourceName) bool {
	l, okL := r.Limits[gpu]
	q, okR := r.Requests[gpu]
	return (okL && !l.IsZero()) || (okR && !q.IsZero())
}

// scheduling merges the platform's GPU defaults (for GPU servers) with the
// server's own settings, which win field by field.
func scheduling(pod *corev1.PodSpec, p compose.Platform, s *v1alpha1.SchedulingSpec, gpu bool) {
	if gpu {
		pod.NodeSelector = maps.Clone(p.GPUNodeSelector)
		pod.Tolerations = p.GPUTolerations
		if p.GPURuntimeClassName != "" {
			pod.RuntimeClassName = ptr.To(p.GPURuntimeClassName)
		}
		pod.PriorityClassName = p.GPUPriorityClassName
	}
	if s == nil {
		return
	}
	if s.NodeSelector != nil {
		pod.NodeSelector = s.NodeSelector
	}
	if s.Tolerations != nil {
		pod.Tolerations = s.Tolerations
	}
	if s.RuntimeClassName != nil {
		pod.RuntimeClassName = s.RuntimeClassName
		if *s.RuntimeClassName == "" {
			pod.RuntimeClassName = nil
		}
	}
	if s.PriorityClassName != nil {
		pod.PriorityClassName = *s.PriorityClassName
	}
	pod.Affinity = s.Affinity
	pod.TopologySpreadConstraints = s.TopologySpreadConstraints
}

func httpProbe(path string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
		PeriodSeconds:    period,
		FailureThreshold: failures,
	}
}

// deploymentInput is everything the Deployment is built from.
type deploymentInput struct {
	name, namespace string
	labels          map[string]string
	selector        map[string]string
	annotations     map[string]string // pod template
	spec            *v1alpha1.KalypsoTritonServerSpec
	platform        compose.Platform
	args            []string
	ports           ports
	metrics         bool
	storage         storageAccess
	serviceAccount  string
	replicas        *int32 // nil: leave the field to the autoscaler
	resources       corev1.ResourceRequirements
}

func deployment(in deploymentInput) *appsv1.Deployment {
	spec, p := in.spec, in.platform
	startup := p.StartupTimeoutSeconds
	if spec.Startup != nil && spec.Startup.TimeoutSeconds != nil {
		startup = *spec.Startup.TimeoutSeconds
	}
	deadline := startup + progressMargin
	if spec.Startup != nil && spec.Startup.ProgressDeadlineSeconds != nil {
		deadline = *spec.Startup.ProgressDeadlineSeconds
	}

	image := p.TritonImage
	tag := p.TritonTag
	if tc := spec.TritonConfig; tc != nil {
		if tc.Image != "" {
			image = tc.Image
		}
		if tc.Tag != "" {
			tag = tc.Tag
		}
	}

	containerPorts := []corev1.ContainerPort{
		{Name: "http", ContainerPort: in.ports.http, Protocol: corev1.ProtocolTCP},
		{Name: "grpc", ContainerPort: in.ports.grpc, Protocol: corev1.ProtocolTCP},
	}
	if in.metrics {
		containerPorts = append(containerPorts, corev1.ContainerPort{Name: "metrics", ContainerPort: in.ports.metrics, Protocol: corev1.ProtocolTCP})
	}

	emptyDir := func(name string, src *corev1.EmptyDirVolumeSource) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: src}}
	}
	shm := shmSize(pythonBackend(spec))
	volumes := append([]corev1.Volume{
		emptyDir("dshm", &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &shm}),
		emptyDir("tmp", &corev1.EmptyDirVolumeSource{}),
		emptyDir("model-cache", &corev1.EmptyDirVolumeSource{}),
	}, in.storage.volumes...)
	mounts := append([]corev1.VolumeMount{
		{Name: "dshm", MountPath: "/dev/shm"},
		{Name: "tmp", MountPath: "/tmp"},
		{Name: "model-cache", MountPath: modelCacheDir},
	}, in.storage.mounts...)

	uid := p.RunAsUser
	container := corev1.Container{
		Name:         containerName,
		Image:        image + ":" + tag,
		Args:         in.args,
		Ports:        containerPorts,
		Env:          in.storage.env,
		Resources:    in.resources,
		VolumeMounts: mounts,
		// Startup covers model loading; liveness and readiness take over after.
		StartupProbe:   httpProbe("/v2/health/ready", probePeriod, max(1, (startup+probePeriod-1)/probePeriod)),
		ReadinessProbe: httpProbe("/v2/health/ready", 5, 3),
		LivenessProbe:  httpProbe("/v2/health/live", probePeriod, 6),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
		},
	}

	pod := corev1.PodSpec{
		InitContainers:               in.storage.initContainers,
		Containers:                   []corev1.Container{container},
		Volumes:                      volumes,
		ServiceAccountName:           in.serviceAccount,
		AutomountServiceAccountToken: ptr.To(in.serviceAccount != ""),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(uid),
			RunAsGroup:     ptr.To(p.FSGroup),
			FSGroup:        ptr.To(p.FSGroup),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	for _, s := range p.ImagePullSecrets {
		pod.ImagePullSecrets = append(pod.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	scheduling(&pod, p, spec.Scheduling, usesGPU(in.resources, p.GPUResourceName))

	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: in.name, Namespace: in.namespace, Labels: in.labels},
		Spec: appsv1.DeploymentSpec{
			Replicas:                in.replicas,
			Selector:                &metav1.LabelSelector{MatchLabels: in.selector},
			Strategy:                strategy(spec.Rollout),
			ProgressDeadlineSeconds: ptr.To(deadline),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: in.labels, Annotations: in.annotations},
				Spec:       pod,
			},
		},
	}
}

// strategy never needs a spare GPU: a rolling update replaces one pod at a
// time without surging (brief capacity loss), Recreate stops all first.
func strategy(r *v1alpha1.RolloutSpec) appsv1.DeploymentStrategy {
	if r != nil && r.Strategy == string(appsv1.RecreateDeploymentStrategyType) {
		return appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge:       ptr.To(intstr.FromInt32(0)),
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
		},
	}
}
