// Package v1alpha1 holds the Kalypso composite resource types. They are the
// single source of truth: the XRD schemas under apis/ are generated from them.
// +kubebuilder:object:generate=true
// +groupName=serving.kalypso.io
// +versionName=v1alpha1
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and version of every Kalypso kind.
const (
	Group   = "serving.kalypso.io"
	Version = "v1alpha1"
)

// GroupVersion is the API group and version of the Kalypso kinds.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// Kinds served by the function. The claim flavour's composites carry an X prefix.
const (
	KindProject         = "KalypsoProject"
	KindApplication     = "KalypsoApplication"
	KindTritonServer    = "KalypsoTritonServer"
	KindXApplication    = "XKalypsoApplication"
	KindXTritonServer   = "XKalypsoTritonServer"
	ProjectPlural       = "kalypsoprojects"
	ApplicationPlural   = "kalypsoapplications"
	TritonServerPlural  = "kalypsotritonservers"
	XApplicationPlural  = "xkalypsoapplications"
	XTritonServerPlural = "xkalypsotritonservers"
)
