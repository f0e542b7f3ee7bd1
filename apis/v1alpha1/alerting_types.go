package v1alpha1

// AlertingSpec routes the alerts raised in the project's environment
// namespaces (its servers' and any other PrometheusRule's there) to the
// project's receivers, through one AlertmanagerConfig per environment.
type AlertingSpec struct {
	// Receivers get the alerts. Each references a Secret that must exist in
	// every environment namespace it serves; the project reads whether it
	// exists and never copies it.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	Receivers []AlertReceiver `json:"receivers"`
}

// AlertReceiver is one destination of the project's alerts.
// +kubebuilder:validation:XValidation:rule="self.type == 'slack' || !has(self.channel)",message="channel is for slack receivers only"
type AlertReceiver struct {
	// Name of the receiver, unique in the project.
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`
	// Type of the receiver: slack, pagerduty, webhook, or msteams (a Teams
	// Workflows webhook; Alertmanager 0.28 or later).
	// +kubebuilder:validation:Enum=slack;pagerduty;webhook;msteams
	Type string `json:"type"`
	// SecretRef names the Secret, and its key, holding the receiver's
	// webhook URL (slack, webhook, msteams) or Events API v2 routing key
	// (pagerduty), in every environment namespace the receiver serves.
	SecretRef SecretKeyRef `json:"secretRef"`
	// Channel of a slack receiver; the webhook's own channel when unset.
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Channel string `json:"channel,omitempty"`
	// Environments the receiver serves; every environment when unset.
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	Environments []string `json:"environments,omitempty"`
	// Severities the receiver gets (the servers' alerts are critical or
	// warning); every severity when unset.
	// +kubebuilder:validation:MaxItems=3
	// +listType=set
	// +kubebuilder:validation:items:Enum=critical;warning;info
	// +optional
	Severities []string `json:"severities,omitempty"`
}

// SecretKeyRef names a key of a Secret in the same namespace.
type SecretKeyRef struct {
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}
