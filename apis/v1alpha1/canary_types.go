package v1alpha1

import corev1 "k8s.io/api/core/v1"

// What happens to a canary when spec.canary is removed.
const (
	CanaryPromote = "promote"
	CanaryDrop    = "drop"
)

// States of a canary track (status.canary.state).
const (
	// CanaryStarting: composed, not yet available; it gets no traffic.
	CanaryStarting = "Starting"
	// CanaryServing: available, and routes give it its weight or mirror.
	CanaryServing = "Serving"
	// CanaryPromoting: spec.canary was removed with onRemoval promote; the
	// canary keeps serving while the stable track rolls to the new spec.
	CanaryPromoting = "Promoting"
	// CanaryDropping: routes are told to drop the canary; its Deployment
	// and Service are deleted once every route has.
	CanaryDropping = "Dropping"
)

// CanarySpec is a second track of a server: what differs from the stable
// track, its own fixed replicas, and the traffic it gets. Every field it
// leaves unset is the stable track's.
// +kubebuilder:validation:XValidation:rule="!(has(self.weight) && has(self.mirror))",message="spec.canary: set weight (a share of the traffic) or mirror (a copy of it), not both"
// +kubebuilder:validation:XValidation:rule="has(self.image) || has(self.tag) || has(self.storageUri) || has(self.modelControl) || has(self.parameters) || has(self.resources) || has(self.gpus) || has(self.gpuClass)",message="spec.canary must change something: set image, tag, storageUri, modelControl, parameters, resources, gpus or gpuClass"
type CanarySpec struct {
	// Image of the canary's Triton, without tag.
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
	// Tag of the canary's image.
	// +kubebuilder:validation:MaxLength=128
	Tag string `json:"tag,omitempty"`
	// StorageURI is the canary's model repository, of the same provider as
	// the stable track's.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(s3|gs|as)://[^/\s][^\s]*$`
	StorageURI string `json:"storageUri,omitempty"`
	// ModelControl replaces the stable track's.
	ModelControl *ModelControlSpec `json:"modelControl,omitempty"`
	// Parameters replace the stable track's tritonConfig.parameters.
	// +kubebuilder:validation:MaxItems=64
	Parameters []Parameter `json:"parameters,omitempty"`
	// Resources replace the stable track's.
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// GPUs of the canary's class per pod.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	GPUs *int32 `json:"gpus,omitempty"`
	// GPUClass of the canary.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	GPUClass string `json:"gpuClass,omitempty"`

	// Replicas of the canary: fixed, a canary is never autoscaled.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`
	// Weight is the percentage of the requests the gateway sends to the
	// canary once it is available; the stable track gets the rest. 0 when
	// neither weight nor mirror is set.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`
	// Mirror sends the canary a copy of the requests instead; the gateway
	// drops its answers.
	Mirror *CanaryMirror `json:"mirror,omitempty"`
	// OnRemoval says what removing spec.canary means: drop (the default)
	// deletes the canary; promote keeps it serving until the stable track
	// runs the new spec. It is recorded in status.canary.onRemoval, so set
	// it before removing spec.canary.
	// +kubebuilder:default=drop
	// +kubebuilder:validation:Enum=promote;drop
	OnRemoval string `json:"onRemoval,omitempty"`
}

// CanaryMirror is the share of the requests copied to the canary.
type CanaryMirror struct {
	// Percent of the requests copied.
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`
}

// CanaryStatus is the canary as the server serves it, and what the routes
// of its application read: the weight stays here once spec.canary is gone,
// until the canary is deleted.
type CanaryStatus struct {
	// +kubebuilder:validation:Enum=Starting;Serving;Promoting;Dropping
	State string `json:"state,omitempty"`
	// OnRemoval as last set in spec.canary.
	OnRemoval string `json:"onRemoval,omitempty"`
	// Service the routes send the canary's share to.
	Service string `json:"service,omitempty"`
	// Weight the routes give the canary now (0 until it is available).
	Weight int32 `json:"weight,omitempty"`
	// MirrorPercent of the requests the routes copy to the canary now.
	MirrorPercent int32 `json:"mirrorPercent,omitempty"`
}

// TrackStatus is one track of a server with a canary.
type TrackStatus struct {
	// +kubebuilder:validation:Enum=stable;canary
	Track             string `json:"track"`
	Image             string `json:"image,omitempty"`
	Phase             string `json:"phase,omitempty"`
	Replicas          int32  `json:"replicas,omitempty"`
	AvailableReplicas int32  `json:"availableReplicas,omitempty"`
	// Weight of the requests routes send to this track.
	Weight int32 `json:"weight,omitempty"`
}
