// Package v1beta1 holds the function's input: the platform defaults every
// composed object starts from.
// +kubebuilder:object:generate=true
// +groupName=kalypso.fn.crossplane.io
// +versionName=v1beta1
package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultEnvironmentConfigName is the EnvironmentConfig read when the Input
// names none.
const DefaultEnvironmentConfigName = "kalypso-defaults"

// Input carries the packaged platform defaults. A cluster-scoped
// EnvironmentConfig named by EnvironmentConfigName overrides them: its data
// has the shape of Spec. Precedence: object spec > EnvironmentConfig > Input >
// built-in default.
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories=crossplane
type Input struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// EnvironmentConfigName names the EnvironmentConfig holding the platform
	// team's overrides; kalypso-defaults when unset. Its absence is fine.
	// +optional
	EnvironmentConfigName string `json:"environmentConfigName,omitempty"`

	// Spec holds the defaults.
	// +optional
	Spec Defaults `json:"spec,omitempty"`
}

// Defaults are the platform defaults. Every field is optional; unset fields
// keep the layer below (built-in defaults at the bottom). Maps merge key by
// key; lists replace.
type Defaults struct {
	Triton *TritonDefaults `json:"triton,omitempty"`
	GPU    *GPUDefaults    `json:"gpu,omitempty"`
	// GPUClasses is the catalogue of GPU kinds servers choose from
	// (spec.gpuClass), by class name. An EnvironmentConfig entry replaces
	// the Input's class of the same name whole. Unless the catalogue has a
	// class named default, gpu.* form an implicit one (README, "GPU
	// classes").
	// +kubebuilder:validation:MaxProperties=64
	GPUClasses    map[string]GPUClass    `json:"gpuClasses,omitempty"`
	Security      *SecurityDefaults      `json:"security,omitempty"`
	Observability *ObservabilityDefaults `json:"observability,omitempty"`
	Tenancy       *TenancyDefaults       `json:"tenancy,omitempty"`
	Gateway       *GatewayDefaults       `json:"gateway,omitempty"`
	Diagnostics   *DiagnosticsDefaults   `json:"diagnostics,omitempty"`
	Autoscaling   *AutoscalingDefaults   `json:"autoscaling,omitempty"`
	Alerts        *AlertsDefaults        `json:"alerts,omitempty"`
	Dashboards    *DashboardDefaults     `json:"dashboards,omitempty"`
	Showback      *ShowbackDefaults      `json:"showback,omitempty"`
}

// ShowbackDefaults: GPU use and cost per project, environment and
// application (README, "Showback").
type ShowbackDefaults struct {
	// Enabled tracks every environment's GPU use: its ResourceQuota gets a
	// GPU key (with a hard value that never limits where the project sets
	// none), the project's status shows use against quota, and each
	// environment namespace gets recording rules for GPUs requested and
	// GPU-hours. Built-in: false.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// CostLabelKeys are the label keys projects may set in spec.costLabels
	// (e.g. cost-center). They go onto environment Namespaces and server
	// Deployments, never into pod templates. Built-in: none.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	CostLabelKeys []string `json:"costLabelKeys,omitempty"`
}

// DashboardDefaults: whether every project ships a Grafana dashboard, and
// where Grafana's dashboard sidecar finds it (README, "Dashboards").
type DashboardDefaults struct {
	// Enabled composes a ConfigMap with each project's dashboard. Built-in:
	// false.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// Namespace the sidecar searches (its searchNamespace). Built-in:
	// monitoring.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Labels the sidecar selects ConfigMaps by (its label and labelValue).
	// Built-in: grafana_dashboard: "1".
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// FolderAnnotation is the sidecar's folderAnnotation; its value is the
	// project's name, so each project gets a folder. Built-in:
	// grafana_folder. Empty: no annotation (the sidecar's folder).
	// +optional
	FolderAnnotation *string `json:"folderAnnotation,omitempty"`
}

// AlertsDefaults: whether servers compose a PrometheusRule, the labels
// Prometheus selects rules by, and the objectives of servers that set none
// (KalypsoTritonServer spec.slo).
type AlertsDefaults struct {
	// Enabled composes every server's PrometheusRule unless its spec.slo.alerts
	// says otherwise. Built-in: false, because rules reach nobody until
	// Prometheus selects them (README, "Alerts").
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// RuleLabels are set on every PrometheusRule, for the Prometheus
	// ruleSelector. Built-in: release: prometheus.
	// +optional
	RuleLabels map[string]string `json:"ruleLabels,omitempty"`
	// AlertmanagerConfigLabels are set on every project's
	// AlertmanagerConfigs, for the Alertmanager's
	// alertmanagerConfigSelector. Built-in: release: prometheus.
	// +optional
	AlertmanagerConfigLabels map[string]string `json:"alertmanagerConfigLabels,omitempty"`
	// QueueTimeMicroseconds built-in: 100000 (100 ms).
	// +kubebuilder:validation:Minimum=1
	// +optional
	QueueTimeMicroseconds *int32 `json:"queueTimeMicroseconds,omitempty"`
	// FailurePercent built-in: "1".
	// +kubebuilder:validation:Pattern=`^(100|[0-9]{1,2}(\.[0-9]{1,3})?)$`
	// +optional
	FailurePercent *string `json:"failurePercent,omitempty"`
	// GPUMemoryPercent built-in: 90.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	GPUMemoryPercent *int32 `json:"gpuMemoryPercent,omitempty"`
	// UnavailableMinutes built-in: 10, the default model loading budget.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1440
	// +optional
	UnavailableMinutes *int32 `json:"unavailableMinutes,omitempty"`
	// RestartsPerHour built-in: 3.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	RestartsPerHour *int32 `json:"restartsPerHour,omitempty"`
}

// AutoscalingDefaults: the autoscaling engine of servers whose
// spec.autoscaling.engine is unset, and where KEDA reads Triton's metrics.
type AutoscalingDefaults struct {
	// Engine is hpa (a HorizontalPodAutoscaler; the built-in default, so
	// installing KEDA never turns HPAs into ScaledObjects by itself) or keda
	// (a KEDA ScaledObject).
	// +kubebuilder:validation:Enum=hpa;keda
	// +optional
	Engine *string `json:"engine,omitempty"`
	// +optional
	KEDA *KEDADefaults `json:"keda,omitempty"`
}

// KEDADefaults tell KEDA's Prometheus scaler where Triton's metrics are.
// Its queries select a server's series by the namespace and service labels
// the Prometheus Operator gives the targets of the server's ServiceMonitor.
type KEDADefaults struct {
	// PrometheusAddress is the Prometheus (or compatible) API KEDA queries,
	// e.g. http://prometheus-operated.monitoring.svc:9090. Required for the
	// keda engine.
	// +optional
	PrometheusAddress *string `json:"prometheusAddress,omitempty"`
	// ClusterTriggerAuthentication names the platform's
	// ClusterTriggerAuthentication for that address (its Secret lives in
	// KEDA's namespace, out of the tenants' reach). Unset: no
	// authentication.
	// +optional
	ClusterTriggerAuthentication *string `json:"clusterTriggerAuthentication,omitempty"`
	// AuthModes is the Prometheus scaler's authModes for that
	// authentication: bearer, basic, tls, custom (comma-separated).
	// +optional
	AuthModes *string `json:"authModes,omitempty"`
	// TenantHeader names an HTTP header sent with every query whose value is
	// the server's project, for multi-tenant Prometheus APIs such as
	// Thanos, Cortex or Mimir (X-Scope-OrgID). Unset: none.
	// +optional
	TenantHeader *string `json:"tenantHeader,omitempty"`
}

// DiagnosticsDefaults choose what the function reads to explain a server
// that is not available.
type DiagnosticsDefaults struct {
	// ReadPods reads the pods of a server whose Deployment is not available,
	// so its condition names the pod's problem (ImagePullFailed,
	// CrashLoopBackOff, Unschedulable...). Crossplane core serves required
	// resources from an informer that caches every Pod in the cluster and
	// keeps it until core restarts, so this costs core memory in proportion
	// to all pods, not only Triton's. Off: the reason comes from the
	// Deployment's conditions (ProgressDeadlineExceeded, ReplicaFailure).
	// +optional
	ReadPods *bool `json:"readPods,omitempty"`
}

// TritonDefaults pick the Triton image.
type TritonDefaults struct {
	// Image repository. Built-in: nvcr.io/nvidia/tritonserver.
	Image *string `json:"image,omitempty"`
	// Tag of the image. Built-in: 24.12-py3.
	Tag *string `json:"tag,omitempty"`
	// ImagePullSecrets each environment namespace holds for the image.
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`
	// StartupTimeoutSeconds is the model-loading budget. Built-in: 600.
	StartupTimeoutSeconds *int32 `json:"startupTimeoutSeconds,omitempty"`
	// DrainSeconds Triton waits for in-flight requests on shutdown
	// (--exit-timeout-secs). Built-in: 30, Triton's own default.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	DrainSeconds *int32 `json:"drainSeconds,omitempty"`
	// PreStopSleepSeconds a terminating pod keeps serving while endpoints
	// drop it. Built-in: 5.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	PreStopSleepSeconds *int32 `json:"preStopSleepSeconds,omitempty"`
	// ModelCacheSizeLimit bounds the model download folder. Built-in: 20Gi.
	ModelCacheSizeLimit *resource.Quantity `json:"modelCacheSizeLimit,omitempty"`
	// ModelCacheRequest is the disk reserved for the models, part of the
	// container's ephemeral-storage request. Built-in: 10Gi.
	ModelCacheRequest *resource.Quantity `json:"modelCacheRequest,omitempty"`
}

// GPUDefaults apply to servers that request GPUs.
type GPUDefaults struct {
	// ResourceName of a GPU. Built-in: nvidia.com/gpu (MIG names allowed,
	// e.g. nvidia.com/mig-1g.10gb).
	ResourceName *string `json:"resourceName,omitempty"`
	// NodeSelector for GPU pods.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations for GPU pods. Built-in: tolerate nvidia.com/gpu NoSchedule.
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// RuntimeClassName for GPU pods (e.g. nvidia).
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// PriorityClassName for GPU pods, whatever their class.
	PriorityClassName *string `json:"priorityClassName,omitempty"`
	// DefaultClass is the class of servers that set no spec.gpuClass.
	// Built-in: default, formed from the fields above when gpuClasses has
	// no class of that name.
	// +kubebuilder:validation:MaxLength=63
	DefaultClass *string `json:"defaultClass,omitempty"`
}

// GPU sharing modes of a class.
const (
	SharingExclusive  = "exclusive"
	SharingMIG        = "mig"
	SharingTimeSliced = "time-sliced"
	SharingMPS        = "mps"
)

// GPUClass is one kind of GPU: how a pod asks for its devices, the nodes
// that have them, and how a device is shared. A server's gpus counts
// devices of its class.
type GPUClass struct {
	// ResourceName is the device plugin's extended resource
	// (nvidia.com/gpu, nvidia.com/mig-1g.10gb, nvidia.com/gpu.shared...).
	// Set it or deviceClassName.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ResourceName string `json:"resourceName,omitempty"`
	// DeviceClassName is a Dynamic Resource Allocation DeviceClass
	// (resource.k8s.io/v1): each server pod gets a ResourceClaim for its
	// gpus devices of it. Set it or resourceName.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	DeviceClassName string `json:"deviceClassName,omitempty"`
	// NodeSelector of the class's pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations of the class's pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// RuntimeClassName of the class's pods (e.g. nvidia).
	// +optional
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
	// Sharing is how a device is shared: exclusive (a whole GPU, the
	// default), mig (a MIG slice: one per Triton process), time-sliced or
	// mps (a share of a GPU other pods use too).
	// +kubebuilder:validation:Enum=exclusive;mig;time-sliced;mps
	// +optional
	Sharing string `json:"sharing,omitempty"`
	// FailRequestsGreaterThanOne mirrors the device plugin's
	// sharing.timeSlicing (or sharing.mps) failRequestsGreaterThanOne: the
	// kubelet refuses pods asking for more than one device of the class,
	// so servers asking for more are refused first. Time-sliced and mps
	// classes only. Default: false for time-sliced, true for mps (the
	// device plugin's defaults, k8s-device-plugin v0.20.0
	// api/config/v1/config.go).
	// +optional
	FailRequestsGreaterThanOne *bool `json:"failRequestsGreaterThanOne,omitempty"`
	// MemoryPerDevice is the GPU memory a server has on each device: the
	// slice's (mig), its share of the GPU (time-sliced, mps), the GPU's
	// (exclusive). Shown in the server's GPUClass condition.
	// +optional
	MemoryPerDevice *resource.Quantity `json:"memoryPerDevice,omitempty"`
}

// SecurityDefaults harden every pod.
type SecurityDefaults struct {
	// RunAsUser of every container. Built-in: 1000.
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// FSGroup of every pod. Built-in: 1000.
	FSGroup *int64 `json:"fsGroup,omitempty"`
	// RestrictedAPI names the Secret (in every environment namespace) whose
	// key holds the header value that unlocks Triton's model-repository and
	// shared-memory APIs.
	RestrictedAPI *RestrictedAPIDefaults `json:"restrictedAPI,omitempty"`
}

// RestrictedAPIDefaults locate the API key of restricted Triton APIs.
type RestrictedAPIDefaults struct {
	// SecretName built-in: kalypso-triton-api-key.
	SecretName *string `json:"secretName,omitempty"`
	// SecretKey built-in: api-key.
	SecretKey *string `json:"secretKey,omitempty"`
	// HeaderKey clients send. Built-in: triton-api-key.
	HeaderKey *string `json:"headerKey,omitempty"`
}

// ObservabilityDefaults locate the platform's telemetry backends.
type ObservabilityDefaults struct {
	// TracesEndpoint is the OTLP/HTTP collector. Built-in:
	// http://kalypso-otel-collector.otel-system.svc.cluster.local:4318.
	TracesEndpoint *string `json:"tracesEndpoint,omitempty"`
	// LokiEndpoint is the Loki push (OTLP) endpoint node agents ship to;
	// servers get labels those agents select on.
	LokiEndpoint *string `json:"lokiEndpoint,omitempty"`
	// ProfilingEndpoint is the Pyroscope / Alloy receiver.
	ProfilingEndpoint *string `json:"profilingEndpoint,omitempty"`
	// ServiceMonitorLabels select the ServiceMonitors Prometheus reads.
	// Built-in: release: prometheus.
	ServiceMonitorLabels map[string]string `json:"serviceMonitorLabels,omitempty"`
}

// TenancyDefaults are the guard rails of environment namespaces.
type TenancyDefaults struct {
	// PodSecurityLevel enforced in environment namespaces. Built-in: restricted.
	// +kubebuilder:validation:Enum=privileged;baseline;restricted
	PodSecurityLevel *string `json:"podSecurityLevel,omitempty"`
	// NetworkIsolation default of environments. Built-in: true.
	NetworkIsolation *bool `json:"networkIsolation,omitempty"`
	// AllowedNamespaces may always reach environment namespaces (monitoring,
	// gateway). Built-in: [monitoring]; gateway parentRef namespaces are added.
	AllowedNamespaces []string `json:"allowedNamespaces,omitempty"`
	// DefaultLimits and DefaultRequests form the default container LimitRange
	// of environments whose quota bounds cpu or memory and that set none.
	// The default ephemeral-storage request lets pods be admitted under a
	// quota on requests.ephemeral-storage.
	// Built-in: limits cpu 2, memory 4Gi; requests cpu 100m, memory 256Mi,
	// ephemeral-storage 1Gi.
	DefaultLimits   corev1.ResourceList `json:"defaultLimits,omitempty"`
	DefaultRequests corev1.ResourceList `json:"defaultRequests,omitempty"`
}

// GatewayDefaults locate the platform's Gateway API gateway.
type GatewayDefaults struct {
	// ParentRefs name the Gateway(s) routes attach to.
	ParentRefs []ParentRef `json:"parentRefs,omitempty"`
	// Hostname routes are served under.
	Hostname *string `json:"hostname,omitempty"`
	// Scheme clients use to reach the gateway. Built-in: https.
	// +kubebuilder:validation:Enum=http;https
	Scheme *string `json:"scheme,omitempty"`
	// MeshRoutes: a server with a canary also composes GAMMA routes whose
	// parent is its own Service, so that a service mesh implementing the
	// Gateway API's mesh support splits in-cluster calls to <name>-svc as
	// the gateway splits outside ones. Built-in: false.
	MeshRoutes *bool `json:"meshRoutes,omitempty"`
}

// ParentRef names a Gateway.
type ParentRef struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace,omitempty"`
	SectionName string `json:"sectionName,omitempty"`
}
