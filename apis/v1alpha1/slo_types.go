package v1alpha1

// SLOSpec sets the server's service level objectives, which its alerts
// check (README, "Alerts"). Unset fields take the platform's defaults
// (function input alerts.*).
type SLOSpec struct {
	// Alerts composes a PrometheusRule with the server's recording rules and
	// alerts. Unset: the platform's alerts.enabled.
	// +optional
	Alerts *bool `json:"alerts,omitempty"`
	// QueueTimeMicroseconds is the highest mean time a request may wait in
	// Triton's queue, in microseconds, before KalypsoTritonQueueTimeHigh
	// fires.
	// +kubebuilder:validation:Minimum=1
	// +optional
	QueueTimeMicroseconds *int32 `json:"queueTimeMicroseconds,omitempty"`
	// FailurePercent is the highest share of requests that may fail, in
	// percent (for example "0.5"), before KalypsoTritonFailureRatioHigh
	// fires.
	// +kubebuilder:validation:Pattern=`^(100|[0-9]{1,2}(\.[0-9]{1,3})?)$`
	// +kubebuilder:validation:MaxLength=6
	// +optional
	FailurePercent string `json:"failurePercent,omitempty"`
	// GPUMemoryPercent is the share of a GPU's memory in use, in percent,
	// above which KalypsoTritonGPUMemoryHigh fires.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	GPUMemoryPercent *int32 `json:"gpuMemoryPercent,omitempty"`
	// UnavailableMinutes is how long the server may be down, or short of
	// ready replicas, before KalypsoTritonServerDown or
	// KalypsoTritonReplicasUnavailable fires. Keep it above the model
	// loading time: Triton serves no metrics while it loads.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1440
	// +optional
	UnavailableMinutes *int32 `json:"unavailableMinutes,omitempty"`
	// RestartsPerHour is how many restarts of a pod's Triton container in
	// an hour fire KalypsoTritonRestarting.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	RestartsPerHour *int32 `json:"restartsPerHour,omitempty"`
}
