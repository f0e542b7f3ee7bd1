package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KalypsoTritonServer is one NVIDIA Triton Inference Server.
// The name leaves room for the "-svc" suffix of its Service (a DNS-1035 label).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Application",type=string,JSONPath=`.spec.applicationRef`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.status.canary.state`,priority=1
// +kubebuilder:printcolumn:name="Canary-Weight",type=integer,JSONPath=`.status.canary.weight`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 59 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="a server name must start with a letter, hold only lower case letters, digits and '-', and be at most 59 characters so that <name>-svc is a valid Service name"
type KalypsoTritonServer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   KalypsoTritonServerSpec   `json:"spec"`
	Status KalypsoTritonServerStatus `json:"status,omitempty"`
}

// KalypsoTritonServerSpec is what an application team declares for a server.
// +kubebuilder:validation:XValidation:rule="!has(self.tritonConfig) || !has(self.tritonConfig.pythonBackend) || !has(self.tritonConfig.python_backend)",message="set tritonConfig.pythonBackend only; python_backend is its deprecated alias"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !self.autoscaling.enabled || !has(self.autoscaling.minReplicas) || !has(self.autoscaling.maxReplicas) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",message="autoscaling.minReplicas must not exceed autoscaling.maxReplicas"
type KalypsoTritonServerSpec struct {
	// ApplicationRef names the KalypsoApplication in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ApplicationRef string `json:"applicationRef"`

	// StorageURI is the model repository: s3://bucket/path,
	// s3://host:port/bucket/path, gs://bucket/path or as://account/container/path.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(s3|gs|as)://[^/\s][^\s]*$`
	StorageURI string `json:"storageUri"`

	// TritonConfig selects the image and Triton's own settings.
	TritonConfig *TritonConfig `json:"tritonConfig,omitempty"`

	// Replicas of the server. Ignored while autoscaling is enabled.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// Resources of the Triton container.
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// GPUs is the number of devices of the GPU class each pod gets: its
	// device plugin resource in both requests and limits, or a
	// ResourceClaim for its DRA DeviceClass.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	GPUs *int32 `json:"gpus,omitempty"`

	// GPUClass names a class of the platform's GPU catalogue (whole GPUs,
	// MIG slices, shared GPUs, DRA devices); the platform's default class
	// when unset.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	GPUClass string `json:"gpuClass,omitempty"`

	// Networking sets Triton's ports.
	Networking *NetworkingSpec `json:"networking,omitempty"`

	// Observability configures logs, traces, profiles and metrics.
	Observability *ObservabilitySpec `json:"observability,omitempty"`

	// Scheduling overrides the platform's GPU scheduling defaults.
	Scheduling *SchedulingSpec `json:"scheduling,omitempty"`

	// ModelControl selects how Triton loads models.
	ModelControl *ModelControlSpec `json:"modelControl,omitempty"`

	// Startup bounds the time Triton has to load its models.
	Startup *StartupSpec `json:"startup,omitempty"`

	// Rollout selects how new versions replace old pods.
	Rollout *RolloutSpec `json:"rollout,omitempty"`

	// Autoscaling composes a HorizontalPodAutoscaler.
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// Disruption tunes the PodDisruptionBudget composed when replicas > 1.
	Disruption *DisruptionSpec `json:"disruption,omitempty"`

	// SLO sets the server's objectives and alerts.
	SLO *SLOSpec `json:"slo,omitempty"`

	// ServiceAccountName runs the server with this service account (keyless
	// storage access). Inherited from the application's storage when unset.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Security tunes the server's API restrictions.
	Security *ServerSecuritySpec `json:"security,omitempty"`

	// Shutdown bounds how long a stopping pod drains its requests.
	Shutdown *ShutdownSpec `json:"shutdown,omitempty"`

	// ModelCache sizes the folder Triton downloads the model repository
	// into, an emptyDir on the node's disk.
	ModelCache *ModelCacheSpec `json:"modelCache,omitempty"`

	// Canary runs a second track beside this one, with what differs and
	// the share of traffic it gets through the application's routes.
	Canary *CanarySpec `json:"canary,omitempty"`
}

// Backend types Triton ships.
const (
	BackendPython      = "python"
	BackendTensorflow  = "tensorflow"
	BackendPytorch     = "pytorch"
	BackendONNXRuntime = "onnxruntime"
	BackendTensorRT    = "tensorrt"
)

// TritonConfig holds Triton's image and settings.
type TritonConfig struct {
	// Image repository; the platform default is nvcr.io/nvidia/tritonserver.
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
	// Tag of the image; the platform default is 24.12-py3.
	// +kubebuilder:validation:MaxLength=128
	Tag string `json:"tag,omitempty"`
	// Version is the Triton release (YY.MM, e.g. 26.05) the image is built
	// from. It is read from tags that start with it (26.05-py3), so set it
	// only for a custom image whose tag does not; some storage settings
	// depend on it (Azure keyless access needs 26.05 or later).
	// +kubebuilder:validation:Pattern=`^[0-9]{2}\.(0[1-9]|1[0-2])$`
	Version string `json:"version,omitempty"`
	// Parameters are extra tritonserver flags (--<name>=<value>), after the
	// managed ones. A parameter that duplicates a managed flag is refused.
	// +kubebuilder:validation:MaxItems=64
	Parameters []Parameter `json:"parameters,omitempty"`
	// BackendType is the model backend; python sizes /dev/shm.
	// +kubebuilder:validation:Enum=python;tensorflow;pytorch;onnxruntime;tensorrt
	BackendType string `json:"backendType,omitempty"`
	// PythonBackend configures the python backend.
	PythonBackend *PythonBackendSpec `json:"pythonBackend,omitempty"`
	// DeprecatedPythonBackend is the original operator's spelling of
	// pythonBackend, accepted so existing objects move over unchanged.
	// Deprecated: use pythonBackend.
	DeprecatedPythonBackend *PythonBackendSpec `json:"python_backend,omitempty"`
}

// Parameter is one extra tritonserver flag.
type Parameter struct {
	// Name of the flag without leading dashes, e.g. exit-timeout-secs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`
	// Value of the flag.
	// +required
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// PythonBackendSpec configures Triton's python backend.
type PythonBackendSpec struct {
	// ShmDefaultByteSize is the initial shared memory per model instance.
	// +kubebuilder:default=1048576
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=68719476736
	ShmDefaultByteSize *int64 `json:"shmDefaultByteSize,omitempty"`
	// ShmGrowthByteSize is the shared memory growth step.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=68719476736
	ShmGrowthByteSize *int64 `json:"shmGrowthByteSize,omitempty"`
	// ExtraArgs are further python backend settings (--backend-config=python,<k>=<v>).
	// +kubebuilder:validation:MaxProperties=32
	ExtraArgs map[string]string `json:"extraArgs,omitempty"`
}

// NetworkingSpec sets Triton's ports.
// +kubebuilder:validation:XValidation:rule="self.httpPort != self.grpcPort && self.httpPort != self.metricsPort && self.grpcPort != self.metricsPort",message="httpPort, grpcPort and metricsPort must differ"
type NetworkingSpec struct {
	// +kubebuilder:default=8000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	HTTPPort *int32 `json:"httpPort,omitempty"`
	// +kubebuilder:default=8001
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	GRPCPort *int32 `json:"grpcPort,omitempty"`
	// +kubebuilder:default=8002
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	MetricsPort *int32 `json:"metricsPort,omitempty"`
}

// ObservabilitySpec configures logs, traces, profiles and metrics.
type ObservabilitySpec struct {
	// Enabled turns on logging flags, tracing and profiling as configured below.
	Enabled bool `json:"enabled,omitempty"`
	// CollectorEndpoint is the OTLP/HTTP collector (base URL or …/v1/traces);
	// the platform default applies when unset.
	// +kubebuilder:validation:MaxLength=2048
	CollectorEndpoint string         `json:"collectorEndpoint,omitempty"`
	Logging           *LoggingSpec   `json:"logging,omitempty"`
	Tracing           *TracingSpec   `json:"tracing,omitempty"`
	Profiling         *ProfilingSpec `json:"profiling,omitempty"`
	Metrics           *MetricsSpec   `json:"metrics,omitempty"`
}

// LoggingSpec configures Triton's logs.
type LoggingSpec struct {
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// +kubebuilder:default=INFO
	// +kubebuilder:validation:Enum=INFO;WARNING;ERROR;VERBOSE
	Level string `json:"level,omitempty"`
	// Format of log lines.
	// +kubebuilder:validation:Enum=default;ISO8601
	Format string `json:"format,omitempty"`
}

// TracingSpec configures OpenTelemetry tracing.
type TracingSpec struct {
	Enabled bool `json:"enabled,omitempty"`
	// SamplingRate is the fraction of requests traced, e.g. "0.1" (one in ten).
	// A string, as in the original operator.
	// +kubebuilder:default="0.1"
	// +kubebuilder:validation:MaxLength=32
	SamplingRate string `json:"samplingRate,omitempty"`
}

// ProfilingSpec configures profile scraping by Grafana Alloy.
type ProfilingSpec struct {
	Enabled  bool          `json:"enabled,omitempty"`
	Profiles *ProfileTypes `json:"profiles,omitempty"`
}

// ProfileTypes selects the profile types scraped.
type ProfileTypes struct {
	// +kubebuilder:default=true
	CPU *bool `json:"cpu,omitempty"`
	// +kubebuilder:default=true
	Memory *bool `json:"memory,omitempty"`
}

// MetricsSpec configures Prometheus metrics.
type MetricsSpec struct {
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// Interval between scrapes.
	// +kubebuilder:default="15s"
	// +kubebuilder:validation:MaxLength=32
	Interval string `json:"interval,omitempty"`
	// EnableServiceMonitor composes a ServiceMonitor when its CRD exists.
	EnableServiceMonitor bool `json:"enableServiceMonitor,omitempty"`
	// LatencySummaries makes Triton report request and queue latency
	// quantiles per model (--metrics-config summary_latencies=true), which
	// autoscaling on p95Latency reads. It changes the pod template: the
	// pods roll once.
	LatencySummaries bool `json:"latencySummaries,omitempty"`
}

// SchedulingSpec overrides the platform's GPU scheduling defaults.
type SchedulingSpec struct {
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	Affinity    *corev1.Affinity    `json:"affinity,omitempty"`
	// +kubebuilder:validation:MaxItems=8
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName *string `json:"priorityClassName,omitempty"`
}

// ModelControlSpec maps to --model-control-mode and friends.
type ModelControlSpec struct {
	// +kubebuilder:validation:Enum=none;poll;explicit
	Mode string `json:"mode,omitempty"`
	// LoadModels are loaded at start-up in explicit mode.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	LoadModels []string `json:"loadModels,omitempty"`
	// RepositoryPollSeconds is the poll interval in poll mode.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	RepositoryPollSeconds *int32 `json:"repositoryPollSeconds,omitempty"`
}

// StartupSpec bounds model loading.
type StartupSpec struct {
	// TimeoutSeconds is the startup probe's budget before the container is
	// restarted.
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=7200
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
	// ProgressDeadlineSeconds of the Deployment; defaults above the startup
	// budget so a slow load is not reported as a failed rollout.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// RolloutSpec selects the Deployment strategy.
type RolloutSpec struct {
	// Strategy RollingUpdate (maxSurge 0: never needs a spare GPU) or Recreate.
	// +kubebuilder:default=RollingUpdate
	// +kubebuilder:validation:Enum=RollingUpdate;Recreate
	Strategy string `json:"strategy,omitempty"`
}

// AutoscalingSpec configures the autoscaler: a HorizontalPodAutoscaler, or
// a KEDA ScaledObject (which makes KEDA run one).
// +kubebuilder:validation:XValidation:rule="!self.enabled || has(self.maxReplicas)",message="autoscaling.maxReplicas is required when autoscaling is enabled"
type AutoscalingSpec struct {
	Enabled bool `json:"enabled,omitempty"`
	// Engine runs the autoscaling: hpa, a HorizontalPodAutoscaler (queueTime
	// then needs a custom metrics adapter), or keda, a KEDA ScaledObject that
	// reads Triton's metrics from the platform's Prometheus. Unset: the
	// platform's default (hpa unless the platform chose keda).
	// +kubebuilder:validation:Enum=hpa;keda
	Engine string `json:"engine,omitempty"`
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
	// Metric drives the scaling: cpu; queueTime, Triton's mean queue time
	// per request; and with the keda engine only, pendingRequests, the
	// requests waiting in Triton per replica, or p95Latency, the highest
	// 95th percentile of request latency among the server's pods and models
	// (needs observability.metrics.latencySummaries).
	// +kubebuilder:default=cpu
	// +kubebuilder:validation:Enum=cpu;queueTime;pendingRequests;p95Latency
	Metric string `json:"metric,omitempty"`
	// Target value: CPU utilisation percent, queue microseconds per request,
	// pending requests per replica, or p95 latency in microseconds.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000000
	Target *int32 `json:"target,omitempty"`
	// ScaleDownStabilizationSeconds keeps replicas through short dips; GPU
	// servers warm up slowly.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	ScaleDownStabilizationSeconds *int32 `json:"scaleDownStabilizationSeconds,omitempty"`
}

// DisruptionSpec tunes the PodDisruptionBudget.
type DisruptionSpec struct {
	// MaxUnavailable pods during voluntary disruptions.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxUnavailable *int32 `json:"maxUnavailable,omitempty"`
}

// ServerSecuritySpec tunes the server's API restrictions.
type ServerSecuritySpec struct {
	// UnrestrictedAPIs opts out of restricting Triton's model-repository and
	// shared-memory APIs to holders of the platform's API key.
	UnrestrictedAPIs bool `json:"unrestrictedAPIs,omitempty"`
}

// ShutdownSpec bounds a pod's shutdown. The pod's grace period is
// preStopSleepSeconds + drainSeconds + 10 s; a GPU pod keeps its GPUs for
// all of it.
type ShutdownSpec struct {
	// DrainSeconds is how long Triton, once it stops accepting requests,
	// waits for in-flight ones (--exit-timeout-secs). The platform default
	// applies when unset (built-in: 30, Triton's own default).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	DrainSeconds *int32 `json:"drainSeconds,omitempty"`
	// PreStopSleepSeconds keeps Triton serving after the pod is marked
	// terminating, until load balancers and Services stopped sending it
	// requests. The platform default applies when unset (built-in: 5); 0
	// sends SIGTERM at once.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	PreStopSleepSeconds *int32 `json:"preStopSleepSeconds,omitempty"`
}

// ModelCacheSpec sizes the model download folder. The container's
// ephemeral-storage request is request plus 1Gi for /tmp, the home folder
// and the container's logs; it counts against requests.ephemeral-storage
// in the project's quota.
// +kubebuilder:validation:XValidation:rule="!has(self.sizeLimit) || !has(self.request) || quantity(self.sizeLimit).compareTo(quantity(self.request)) >= 0",message="modelCache.sizeLimit must not be below modelCache.request"
type ModelCacheSpec struct {
	// SizeLimit of the folder: a pod that writes more is evicted (and its
	// folder emptied), so a crash-looping server cannot fill the node's
	// disk with repeated downloads. The platform default applies when unset
	// (built-in: 20Gi).
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
	// Request is the disk the scheduler reserves for the models: the size
	// of the model repository. The platform default applies when unset
	// (built-in: 10Gi).
	Request *resource.Quantity `json:"request,omitempty"`
}

// KalypsoTritonServerStatus is written by the function.
type KalypsoTritonServerStatus struct {
	// +kubebuilder:validation:Enum=Pending;Running;Failed
	Phase              string `json:"phase,omitempty"`
	DeploymentName     string `json:"deploymentName,omitempty"`
	ServiceEndpoint    string `json:"serviceEndpoint,omitempty"`
	GRPCEndpoint       string `json:"grpcEndpoint,omitempty"`
	AvailableReplicas  int32  `json:"availableReplicas,omitempty"`
	Message            string `json:"message,omitempty"`
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	// Application records what the server last used of its application, so
	// a server keeps running unchanged while its application is briefly
	// missing or not ready.
	Application *ServerApplicationStatus `json:"application,omitempty"`
	// Canary is the canary as routes serve it; it outlives spec.canary
	// until the canary is deleted.
	Canary *CanaryStatus `json:"canary,omitempty"`
	// Tracks shows the stable and the canary track while there is a canary.
	// +listType=map
	// +listMapKey=track
	Tracks []TrackStatus `json:"tracks,omitempty"`
}

// ServerApplicationStatus is what a server takes from its application.
type ServerApplicationStatus struct {
	Name        string       `json:"name,omitempty"`
	Project     string       `json:"project,omitempty"`
	Environment string       `json:"environment,omitempty"`
	Storage     *StorageSpec `json:"storage,omitempty"`
}
