// Package keda holds local Go types for the KEDA objects the function
// composes or names: keda.sh/v1alpha1 ScaledObject, and the
// ClusterTriggerAuthentication a platform provides for its Prometheus (the
// example in examples/platform decodes strictly into it), only the fields
// used, named as in KEDA v2.20.1 (apis/keda/v1alpha1/scaledobject_types.go,
// scaletriggers_types.go, triggerauthentication_types.go; CRDs
// config/crd/bases/keda.sh_scaledobjects.yaml and
// keda.sh_clustertriggerauthentications.yaml).
// v2.20 is the first KEDA release whose support matrix includes Kubernetes
// 1.35. Its module is not imported: it would pull its k8s.io v0.36 and
// controller-runtime requirements into ours. The objects built from these
// types are validated offline against KEDA's own CRD instead (test/validate).
// +kubebuilder:object:generate=true
// +groupName=keda.sh
package keda

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is KEDA's API group and version.
var GroupVersion = schema.GroupVersion{Group: "keda.sh", Version: "v1alpha1"}

// AddToScheme registers ScaledObject and ClusterTriggerAuthentication.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ScaledObject{}, &ClusterTriggerAuthentication{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// ScaledObject makes KEDA own a HorizontalPodAutoscaler of the target fed
// by its triggers.
// +kubebuilder:object:root=true
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec: KEDA's defaults for unset fields are minReplicaCount 0
// (scale to zero) and maxReplicaCount 100; pollingInterval (30 s) and
// cooldownPeriod (300 s, which only scale-to-zero uses) are left to KEDA.
type ScaledObjectSpec struct {
	ScaleTargetRef  ScaleTarget `json:"scaleTargetRef"`
	MinReplicaCount *int32      `json:"minReplicaCount,omitempty"`
	MaxReplicaCount *int32      `json:"maxReplicaCount,omitempty"`
	Advanced        *Advanced   `json:"advanced,omitempty"`
	Triggers        []Trigger   `json:"triggers"`
}

// ScaleTarget names the scaled workload; KEDA defaults to an apps/v1
// Deployment.
type ScaleTarget struct {
	Name       string `json:"name"`
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// Advanced tunes the HorizontalPodAutoscaler KEDA creates.
type Advanced struct {
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
}

// HorizontalPodAutoscalerConfig: the HPA's name (default keda-hpa-<name>)
// and behaviour.
type HorizontalPodAutoscalerConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// Trigger is one scaler. MetricType is the HPA's external metric target
// type: AverageValue (KEDA's default) divides the value by the replica
// count, Value does not.
type Trigger struct {
	Type              string                         `json:"type"`
	Name              string                         `json:"name,omitempty"`
	MetricType        autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
	Metadata          map[string]string              `json:"metadata"`
	AuthenticationRef *AuthenticationRef             `json:"authenticationRef,omitempty"`
}

// AuthenticationRef names a TriggerAuthentication or, with Kind
// ClusterTriggerAuthentication, a cluster-wide one.
type AuthenticationRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// ClusterTriggerAuthentication holds credentials triggers in any namespace
// may use; its Secrets live in KEDA's namespace, out of tenants' reach.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type ClusterTriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TriggerAuthenticationSpec `json:"spec"`
}

// TriggerAuthenticationSpec: the scaler parameters read from Secrets.
type TriggerAuthenticationSpec struct {
	SecretTargetRef []AuthSecretTargetRef `json:"secretTargetRef,omitempty"`
}

// AuthSecretTargetRef sets a scaler parameter (bearerToken, ca…) from a
// Secret's key.
type AuthSecretTargetRef struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}
