package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KalypsoApplication groups the Triton servers of a team inside one
// environment namespace of a project and holds what they share.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.projectRef`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Models",type=integer,JSONPath=`.status.activeModels`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KalypsoApplication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   KalypsoApplicationSpec   `json:"spec"`
	Status KalypsoApplicationStatus `json:"status,omitempty"`
}

// KalypsoApplicationSpec is what an application team declares.
type KalypsoApplicationSpec struct {
	// ProjectRef names the KalypsoProject whose environment namespace holds
	// this application.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ProjectRef string `json:"projectRef"`

	// Description of the application.
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// Source records where the application's code lives.
	Source *SourceSpec `json:"source,omitempty"`

	// Storage holds the model storage settings its servers share.
	Storage *StorageSpec `json:"storage,omitempty"`

	// Gateway exposes the application's servers through the platform's
	// Gateway API gateway.
	Gateway *ApplicationGatewaySpec `json:"gateway,omitempty"`
}

// SourceSpec is descriptive metadata about the application's source.
type SourceSpec struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	GitRepository string `json:"gitRepository"`
	// +kubebuilder:default=main
	// +kubebuilder:validation:MaxLength=255
	Branch string `json:"branch,omitempty"`
	// BuildWorkflow is the path of the CI workflow that builds the models.
	// +kubebuilder:validation:MaxLength=1024
	BuildWorkflow string `json:"buildWorkflow,omitempty"`
}

// Storage providers.
const (
	StorageS3    = "s3"
	StorageGCS   = "gcs"
	StorageAzure = "azure"
)

// StorageSpec says where models are and how servers authenticate.
// +kubebuilder:validation:XValidation:rule="has(self.secretName) || has(self.serviceAccountName)",message="set storage.secretName (credentials Secret) or storage.serviceAccountName (keyless workload identity)"
// +kubebuilder:validation:XValidation:rule="!has(self.caBundle) || !has(self.provider) || self.provider == 's3'",message="storage.caBundle applies to S3-compatible endpoints (provider s3) only: remove it"
type StorageSpec struct {
	// Provider of the object storage.
	// +kubebuilder:default=s3
	// +kubebuilder:validation:Enum=s3;gcs;azure
	Provider string `json:"provider,omitempty"`
	// SecretName is a Secret in the application's namespace holding the
	// provider's credentials. Its values are only ever referenced, never copied.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`
	// ServiceAccountName runs servers with this service account for keyless
	// access (EKS IRSA, GKE Workload Identity, AKS Workload Identity); the
	// secret is then optional. EKS Pod Identity does not work: Triton's AWS
	// SDK (aws-sdk-cpp 1.11.60) predates it; use IRSA. Azure keyless access
	// needs Triton 26.05 or later.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Region of the bucket (S3).
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region,omitempty"`
	// Endpoint of an S3-compatible store such as MinIO, e.g.
	// http://minio.minio.svc:9000. Servers write it into their model URI.
	// +kubebuilder:validation:MaxLength=2048
	Endpoint string `json:"endpoint,omitempty"`
	// Keys names the keys of the secret; defaults fit each provider.
	Keys *StorageKeys `json:"keys,omitempty"`
	// CABundle adds the CA that signs a private S3 endpoint's certificate to
	// the servers' trust store (Triton's S3 client reads no CA setting of
	// its own). Servers restart to pick up a changed CA.
	CABundle *StorageCABundle `json:"caBundle,omitempty"`
}

// StorageCABundle names a PEM file of CA certificates in a Secret or a
// ConfigMap of the application's namespace.
// +kubebuilder:validation:XValidation:rule="has(self.secretName) != has(self.configMapName)",message="set exactly one of storage.caBundle.secretName or storage.caBundle.configMapName"
type StorageCABundle struct {
	// SecretName is a Secret holding the CA certificates.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`
	// ConfigMapName is a ConfigMap holding the CA certificates.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ConfigMapName string `json:"configMapName,omitempty"`
	// Key of the PEM file in the Secret or ConfigMap.
	// +kubebuilder:default=ca.crt
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// StorageKeys names the keys of the storage secret.
type StorageKeys struct {
	// +kubebuilder:default=AWS_ACCESS_KEY_ID
	// +kubebuilder:validation:MaxLength=253
	AccessKeyID string `json:"accessKeyID,omitempty"`
	// +kubebuilder:default=AWS_SECRET_ACCESS_KEY
	// +kubebuilder:validation:MaxLength=253
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	// +kubebuilder:default=gcs-credentials.json
	// +kubebuilder:validation:MaxLength=253
	GCSCredentials string `json:"gcsCredentials,omitempty"`
	// +kubebuilder:default=AZURE_STORAGE_ACCOUNT
	// +kubebuilder:validation:MaxLength=253
	AzureStorageAccount string `json:"azureStorageAccount,omitempty"`
	// +kubebuilder:default=AZURE_STORAGE_KEY
	// +kubebuilder:validation:MaxLength=253
	AzureStorageKey string `json:"azureStorageKey,omitempty"`
	// SessionToken is the key of a temporary credential's session token
	// (S3). Unset, servers read AWS_SESSION_TOKEN when the Secret has it;
	// set, the Secret must have it.
	// +kubebuilder:validation:MaxLength=253
	SessionToken string `json:"sessionToken,omitempty"`
}

// ApplicationGatewaySpec turns on exposure through the platform gateway.
type ApplicationGatewaySpec struct {
	// Enabled composes an HTTPRoute (and a GRPCRoute per server).
	Enabled bool `json:"enabled,omitempty"`
	// Hostname overrides the platform's gateway hostname.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Hostname string `json:"hostname,omitempty"`
}

// KalypsoApplicationStatus is written by the function.
type KalypsoApplicationStatus struct {
	// +kubebuilder:validation:Enum=Pending;Ready;Failed
	Phase string `json:"phase,omitempty"`
	// Environment of the project this application lives in.
	Environment string `json:"environment,omitempty"`
	// ActiveModels counts the servers referencing this application, any phase.
	ActiveModels int32 `json:"activeModels,omitempty"`
	// ReadyModels counts those whose Ready condition is True.
	ReadyModels int32 `json:"readyModels,omitempty"`
	// GatewayEndpoint is set only when a route is accepted by its gateway.
	GatewayEndpoint    string `json:"gatewayEndpoint,omitempty"`
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
}
