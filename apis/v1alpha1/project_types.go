package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KalypsoProject is a team's project: each environment becomes a namespace
// with quotas, limit ranges and tenancy guard rails.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.spec.owner`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KalypsoProject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   KalypsoProjectSpec   `json:"spec"`
	Status KalypsoProjectStatus `json:"status,omitempty"`
}

// The uniqueness rule walks namespace values, not map keys: keys have no
// length bound, so nesting loops over them exceeds the API server's CEL cost
// budget.

// KalypsoProjectSpec is what a platform team declares for a project.
// +kubebuilder:validation:XValidation:rule="!has(self.environments) || self.environments.map(k, self.environments[k].namespace).all(a, self.environments.map(k, self.environments[k].namespace).exists_one(b, a == b))",message="two environments of a project cannot share a namespace"
type KalypsoProjectSpec struct {
	// DisplayName is a human readable name.
	// +kubebuilder:validation:MaxLength=253
	DisplayName string `json:"displayName,omitempty"`

	// Owner is the team that owns the project.
	// +kubebuilder:validation:MaxLength=253
	Owner string `json:"owner,omitempty"`

	// Environments maps an environment name (dev, stage, prod…) to its
	// namespace and guard rails. Composed in sorted order of the names.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 63 && k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",message="environment names must be DNS-1123 labels (lower case letters, digits and '-', at most 63 characters)"
	Environments map[string]EnvironmentSpec `json:"environments,omitempty"`

	// Access lists who may work in every environment namespace. Each list is
	// bound to the ClusterRole of the same role (admin, edit, view).
	Access *AccessSpec `json:"access,omitempty"`

	// ModelRegistry records where the project's models are published.
	ModelRegistry *ModelRegistrySpec `json:"modelRegistry,omitempty"`

	// CostLabels label the project's environment Namespaces and its
	// servers' Deployments (never their pods, so changing one restarts
	// nothing), for cost reports. Only the keys the platform allows
	// (function input showback.costLabelKeys).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	CostLabels map[string]string `json:"costLabels,omitempty"`

	// Alerting routes the alerts of the project's environments to its
	// receivers.
	// +optional
	Alerting *AlertingSpec `json:"alerting,omitempty"`

	// Release lifts the project's deletion protection. A project is
	// protected by a ClusterUsage of itself from before its first namespace
	// exists, so deleting it is refused until it is released: with release
	// set, no new application is admitted in its environments (their
	// ResourceQuotas allow 0 KalypsoApplications), and once no application
	// is left in any of them the project drops its ClusterUsage (condition
	// Released=True) and can be deleted. Setting it back to false protects
	// the project again. New environment namespaces are not created while
	// it is set.
	Release bool `json:"release,omitempty"`
}

// EnvironmentSpec is one environment of a project.
type EnvironmentSpec struct {
	// Namespace the environment lives in. Immutable: moving an environment
	// would delete everything in its namespace; add a new environment instead.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="an environment's namespace is immutable; add a new environment instead"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// Description of the environment.
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// ResourceQuota bounds what the environment may consume. Keys are
	// resource names (cpu, memory, ephemeral-storage, nvidia.com/gpu,
	// hugepages-*) or object counts (pods, services, count/…).
	ResourceQuota *ResourceQuotaSpec `json:"resourceQuota,omitempty"`

	// GPUQuota bounds the devices of each GPU class (by the names of the
	// platform's catalogue) the environment may hold: requests.<resource>
	// of a device plugin class, <deviceclass>.deviceclass.resource.k8s.io/devices
	// of a DRA class. A key set here must not be set in resourceQuota too.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self[k] >= 0)",message="gpuQuota keys are GPU class names (DNS labels) and its values device counts of at least 0"
	GPUQuota map[string]int32 `json:"gpuQuota,omitempty"`

	// LimitRange sets container defaults and bounds. When the quota bounds
	// cpu or memory and this is unset, the platform default applies.
	LimitRange *LimitRangeSpec `json:"limitRange,omitempty"`

	// PodSecurity is the Pod Security Admission level enforced in the
	// namespace. Defaults to the platform's level (restricted).
	// +kubebuilder:validation:Enum=privileged;baseline;restricted
	PodSecurity string `json:"podSecurity,omitempty"`

	// NetworkIsolation restricts ingress into the namespace.
	NetworkIsolation *NetworkIsolationSpec `json:"networkIsolation,omitempty"`

	// AdoptExistingNamespace composes the objects inside a namespace that
	// already exists, without ever composing (or deleting) the Namespace itself.
	AdoptExistingNamespace bool `json:"adoptExistingNamespace,omitempty"`
}

// ResourceQuotaSpec maps to a ResourceQuota's hard limits.
type ResourceQuotaSpec struct {
	// Limits become limits.<name> (cpu, memory, ephemeral-storage) or
	// requests.<name> for extended resources, which quotas only know as requests.
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:MaxProperties=32
	Limits corev1.ResourceList `json:"limits,omitempty"`
	// Requests become requests.<name>; object counts pass through unprefixed.
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:MaxProperties=32
	Requests corev1.ResourceList `json:"requests,omitempty"`
}

// LimitRangeSpec maps to a LimitRange.
type LimitRangeSpec struct {
	// +kubebuilder:validation:MaxItems=16
	Limits []corev1.LimitRangeItem `json:"limits,omitempty"`
}

// NetworkIsolationSpec configures the namespace's NetworkPolicies.
type NetworkIsolationSpec struct {
	// Enabled turns on default-deny ingress plus allow rules for the same
	// namespace and the platform namespaces (monitoring, gateway). Defaults to
	// the platform setting.
	Enabled *bool `json:"enabled,omitempty"`
	// AllowFromEnvironments names other environments of this project whose
	// namespaces may reach this one (closed by default, e.g. dev → prod).
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	AllowFromEnvironments []string `json:"allowFromEnvironments,omitempty"`
}

// AccessSpec binds RBAC subjects in every environment namespace.
type AccessSpec struct {
	// Admins are bound to the admin ClusterRole.
	// +kubebuilder:validation:MaxItems=32
	Admins []rbacv1.Subject `json:"admins,omitempty"`
	// Editors are bound to the edit ClusterRole.
	// +kubebuilder:validation:MaxItems=32
	Editors []rbacv1.Subject `json:"editors,omitempty"`
	// Viewers are bound to the view ClusterRole.
	// +kubebuilder:validation:MaxItems=32
	Viewers []rbacv1.Subject `json:"viewers,omitempty"`
}

// ModelRegistrySpec records the project's model registry.
type ModelRegistrySpec struct {
	// URL of the registry, e.g. s3://kalypso-models/vision.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`
	// SecretRef names the Secret holding the registry's credentials.
	// +kubebuilder:validation:MaxLength=253
	SecretRef string `json:"secretRef,omitempty"`
}

// KalypsoProjectStatus is written by the function.
type KalypsoProjectStatus struct {
	// Phase is Provisioning, Ready or Failed.
	// +kubebuilder:validation:Enum=Provisioning;Ready;Failed
	Phase string `json:"phase,omitempty"`
	// CreatedNamespaces lists the namespaces the project composed (not
	// adopted ones), sorted.
	CreatedNamespaces []string `json:"createdNamespaces,omitempty"`
	// Environments reports each environment, sorted by name.
	// +listType=map
	// +listMapKey=name
	Environments []EnvironmentStatus `json:"environments,omitempty"`
	// ObservedGeneration is the spec generation this status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// EnvironmentStatus reports one environment.
type EnvironmentStatus struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Ready is true when every object of the environment is ready.
	Ready bool `json:"ready"`
	// Adopted is true when the namespace existed before and is not composed.
	Adopted bool `json:"adopted,omitempty"`
	// GPUs is the environment's GPU use against its quota, as the quota
	// controller counts it; unset when no quota counts GPUs.
	// +optional
	GPUs *GPUUsage `json:"gpus,omitempty"`
	// GPUClasses is the use against quota of every GPU class the
	// environment's quota counts, by class.
	// +optional
	// +listType=map
	// +listMapKey=class
	GPUClasses []GPUClassUsage `json:"gpuClasses,omitempty"`
}

// GPUClassUsage is what an environment's ResourceQuota counts of one GPU
// class's devices.
type GPUClassUsage struct {
	// Class of the platform's catalogue.
	Class    string `json:"class"`
	GPUUsage `json:",inline"`
}

// GPUUsage is what an environment's ResourceQuota counts of GPU requests.
type GPUUsage struct {
	// Resource is the quota key, e.g. requests.nvidia.com/gpu.
	Resource string `json:"resource"`
	// Requested is the GPUs the environment's pods request.
	Requested string `json:"requested"`
	// Quota is the hard limit; unset when the quota only tracks use
	// (showback with no GPU quota set by the project).
	// +optional
	Quota string `json:"quota,omitempty"`
}
