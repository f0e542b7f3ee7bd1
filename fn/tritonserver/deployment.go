package tritonserver

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

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
	// homeDir is HOME: a writable emptyDir (the root file system is
	// read-only), where Python models and their libraries cache
	// (~/.cache, e.g. Hugging Face and torch hub downloads).
	homeDir = "/var/lib/triton/home"
	// scratchRequest is the ephemeral storage requested beside the model
	// cache: /tmp, the home folder and the container's log files.
	scratchRequest = 1 << 30
	// graceMargin is the grace period beyond the preStop sleep and the
	// drain: after --exit-timeout-secs Triton still unloads its models
	// and exits before the kubelet's SIGKILL.
	graceMargin = 10
	// exitTimeoutFlag is Triton's drain time on shutdown.
	exitTimeoutFlag = "exit-timeout-secs"
	// maxDrainSeconds bounds drainSeconds (and an exit-timeout-secs
	// parameter mapped onto it), as the XRD does.
	maxDrainSeconds = 3600
)

// shutdown is how a pod stops: Kubernetes marks it terminating (its
// endpoints go), runs the preStop sleep while Triton still serves, then
// sends SIGTERM; Triton stops accepting requests and waits up to drain
// seconds for in-flight ones (--exit-timeout-secs, src/main.cc). The
// preStop hook runs inside the grace period
// (https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/),
// so the grace period is all of it plus a margin.
type shutdown struct{ drain, preStop int32 }

func (s shutdown) gracePeriod() int64 { return int64(s.preStop) + int64(s.drain) + graceMargin }

// lifecycle is the preStop sleep (GA since Kubernetes 1.34,
// PodLifecycleSleepAction), nil for no sleep.
func (s shutdown) lifecycle() *corev1.Lifecycle {
	if s.preStop <= 0 {
		return nil
	}
	return &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: int64(s.preStop)}}}
}

// shutdownOf resolves the server's shutdown. A tritonConfig parameter
// exit-timeout-secs, which v0.1.0 passed through and the yolo example
// sets, is the drain time when spec.shutdown.drainSeconds is unset. One
// that disagrees with the field, or is not a whole number of seconds
// Triton accepts, is a problem, not a Fatal: the server keeps running as
// it is until it is fixed.
func shutdownOf(spec *v1alpha1.KalypsoTritonServerSpec, p compose.Platform) (shutdown, *compose.Condition) {
	s := shutdown{drain: p.DrainSeconds, preStop: p.PreStopSleepSeconds}
	var field *int32
	if spec.Shutdown != nil {
		field = spec.Shutdown.DrainSeconds
		if spec.Shutdown.PreStopSleepSeconds != nil {
			s.preStop = max(0, *spec.Shutdown.PreStopSleepSeconds)
		}
	}
	if field != nil {
		s.drain = max(0, *field)
	}
	if spec.TritonConfig == nil {
		return s, nil
	}
	mapped := -1 // the parameter the drain time came from
	for i, prm := range spec.TritonConfig.Parameters {
		if prm.Name != exitTimeoutFlag {
			continue
		}
		at := fmt.Sprintf("spec.tritonConfig.parameters[%d]", i)
		n, err := strconv.ParseInt(strings.TrimSpace(prm.Value), 10, 32)
		if err != nil || n < 0 || n > maxDrainSeconds {
			return s, &compose.Condition{Type: ConditionShutdown, Reason: "ExitTimeoutParameterInvalid", Message: fmt.Sprintf(
				"%s: exit-timeout-secs %q is not a whole number of seconds from 0 to %d: remove the parameter and set spec.shutdown.drainSeconds", at, prm.Value, maxDrainSeconds)}
		}
		if field != nil && int64(*field) != n {
			return s, &compose.Condition{Type: ConditionShutdown, Reason: "ExitTimeoutParameterConflict", Message: fmt.Sprintf(
				"%s: exit-timeout-secs %d disagrees with spec.shutdown.drainSeconds %d, which composes --exit-timeout-secs: remove the parameter", at, n, *field)}
		}
		if mapped >= 0 && int64(s.drain) != n {
			return s, &compose.Condition{Type: ConditionShutdown, Reason: "ExitTimeoutParameterConflict", Message: fmt.Sprintf(
				"%s: exit-timeout-secs %d disagrees with spec.tritonConfig.parameters[%d] (%d): remove both and set spec.shutdown.drainSeconds", at, n, mapped, s.drain)}
		}
		s.drain, mapped = int32(n), i
	}
	return s, nil
}

// modelCache is the model download folder's size limit and the part of
// the ephemeral-storage request reserved for it.
type modelCache struct{ sizeLimit, request resource.Quantity }

// modelCacheOf resolves the model cache from the spec and the platform,
// and refuses a size limit below the request: the kubelet evicts a pod
// whose emptyDir outgrows its sizeLimit
// (pkg/kubelet/eviction/eviction_manager.go, emptyDirLimitEviction), so
// models the scheduler reserved room for would never fit.
func modelCacheOf(spec *v1alpha1.KalypsoTritonServerSpec, p compose.Platform) (modelCache, error) {
	m := modelCache{sizeLimit: p.ModelCacheSizeLimit.DeepCopy(), request: p.ModelCacheRequest.DeepCopy()}
	limitFrom, requestFrom := "the platform default triton.modelCacheSizeLimit", "the platform default triton.modelCacheRequest"
	if mc := spec.ModelCache; mc != nil {
		if mc.SizeLimit != nil {
			m.sizeLimit, limitFrom = mc.SizeLimit.DeepCopy(), "spec.modelCache.sizeLimit"
		}
		if mc.Request != nil {
			m.request, requestFrom = mc.Request.DeepCopy(), "spec.modelCache.request"
		}
	}
	if m.request.Sign() <= 0 {
		return m, fmt.Errorf("spec.modelCache.request: %s must be above zero: it is the disk the scheduler reserves for the models", m.request.String())
	}
	if m.sizeLimit.Cmp(m.request) < 0 {
		// Name the field the server set: the other value is the platform's.
		field := "spec.modelCache.sizeLimit"
		if requestFrom == "spec.modelCache.request" && limitFrom != "spec.modelCache.sizeLimit" {
			field = "spec.modelCache.request"
		}
		return m, fmt.Errorf("%s: the model cache's size limit %s (%s) is below its request %s (%s): the pod would be evicted before its models fit; raise spec.modelCache.sizeLimit or lower spec.modelCache.request",
			field, m.sizeLimit.String(), limitFrom, m.request.String(), requestFrom)
	}
	return m, nil
}

// withEphemeralStorage adds the container's ephemeral-storage request, the
// model cache's request plus scratchRequest, unless the spec's resources
// set an ephemeral-storage request or limit (Kubernetes defaults a missing
// request to the limit, pkg/apis/core/v1/defaults.go).
func withEphemeralStorage(r corev1.ResourceRequirements, m modelCache) corev1.ResourceRequirements {
	if _, ok := r.Requests[corev1.ResourceEphemeralStorage]; ok {
		return r
	}
	if _, ok := r.Limits[corev1.ResourceEphemeralStorage]; ok {
		return r
	}
	out := *r.DeepCopy()
	if out.Requests == nil {
		out.Requests = corev1.ResourceList{}
	}
	q := m.request.DeepCopy()
	q.Add(*resource.NewQuantity(scratchRequest, resource.BinarySI))
	out.Requests[corev1.ResourceEphemeralStorage] = q
	return out
}

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
	if gpu == "" {
		// A DRA class's devices come through a ResourceClaim.
		return r, checkRequests(r)
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
	return r, checkRequests(r)
}

// checkRequests refuses requests above limits, which the API server would
// refuse on apply.
func checkRequests(r corev1.ResourceRequirements) error {
	for _, name := range sortedKeys(r.Requests) {
		req := r.Requests[name]
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			return fmt.Errorf("spec.resources.requests[%s] (%s) is above spec.resources.limits[%s] (%s): a request cannot exceed its limit", name, req.String(), name, lim.String())
		}
	}
	return nil
}

// scheduling merges the GPU class's placement and the platform's priority
// (for GPU servers) with the server's own settings, which win field by
// field.
func scheduling(pod *corev1.PodSpec, p compose.Platform, s *v1alpha1.SchedulingSpec, g gpuRequest) {
	if g.devices > 0 {
		pod.NodeSelector = maps.Clone(g.class.NodeSelector)
		pod.Tolerations = g.class.Tolerations
		if g.class.RuntimeClassName != "" {
			pod.RuntimeClassName = ptr.To(g.class.RuntimeClassName)
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
	costLabels      map[string]string // the Deployment's only, not its pods'
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
	gpu             gpuRequest
	claimTemplate   string // the ResourceClaimTemplate of a DRA class
	shutdown        shutdown
	modelCache      modelCache
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
	cacheLimit := in.modelCache.sizeLimit.DeepCopy()
	volumes := append([]corev1.Volume{
		emptyDir("dshm", &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &shm}),
		emptyDir("tmp", &corev1.EmptyDirVolumeSource{}),
		emptyDir("model-cache", &corev1.EmptyDirVolumeSource{SizeLimit: &cacheLimit}),
		emptyDir("home", &corev1.EmptyDirVolumeSource{}),
	}, in.storage.volumes...)
	mounts := append([]corev1.VolumeMount{
		{Name: "dshm", MountPath: "/dev/shm"},
		{Name: "tmp", MountPath: "/tmp"},
		{Name: "model-cache", MountPath: modelCacheDir},
		{Name: "home", MountPath: homeDir},
	}, in.storage.mounts...)

	uid := p.RunAsUser
	container := corev1.Container{
		Name:         containerName,
		Image:        tritonImage(spec.TritonConfig, p),
		Args:         in.args,
		Ports:        containerPorts,
		Env:          append([]corev1.EnvVar{{Name: "HOME", Value: homeDir}}, in.storage.env...),
		Resources:    in.resources,
		VolumeMounts: mounts,
		Lifecycle:    in.shutdown.lifecycle(),
		// A container that fails with no termination message gets its
		// last log lines as one (at most 80 lines, 2 KiB:
		// pkg/kubelet/kuberuntime/kuberuntime_container.go), which the
		// pod's lastState carries and the server's conditions quote.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
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
		// A GPU pod holds its GPUs for all of it.
		TerminationGracePeriodSeconds: ptr.To(in.shutdown.gracePeriod()),
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
	if in.gpu.devices > 0 && in.gpu.class.DRA() {
		pod.ResourceClaims = []corev1.PodResourceClaim{{Name: gpuClaimName, ResourceClaimTemplateName: ptr.To(in.claimTemplate)}}
		pod.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: gpuClaimName}}
	}
	scheduling(&pod, p, spec.Scheduling, in.gpu)

	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: in.name, Namespace: in.namespace, Labels: compose.Merge(in.costLabels, in.labels)},
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
