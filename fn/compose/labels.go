// Package compose holds what every kind shares: labels, resolved platform
// defaults, readiness checks, conditions and the result a kind returns.
package compose

import (
	"maps"
)

// Label keys on everything composed (ARCHITECTURE §7).
const (
	LabelProject      = "kalypso-serving.io/project"
	LabelEnvironment  = "kalypso-serving.io/environment"
	LabelApplication  = "kalypso-serving.io/application"
	LabelTritonServer = "kalypso-serving.io/tritonserver"
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	LabelName         = "app.kubernetes.io/name"
	LabelInstance     = "app.kubernetes.io/instance"
	LabelComponent    = "app.kubernetes.io/component"
	LabelPartOf       = "app.kubernetes.io/part-of"

	ManagedBy = "kalypso-serving"
	PartOf    = "kalypso"
)

// Owner says which Kalypso objects a composed object belongs to. Empty
// fields are left out of the labels.
type Owner struct {
	Project, Environment, Application, TritonServer string
}

// Labels returns the standard labels of an object with the given component
// (namespace, quota, deployment…) and instance (usually the owning XR's name).
func (o Owner) Labels(component, instance string) map[string]string {
	l := map[string]string{
		LabelManagedBy: ManagedBy,
		LabelPartOf:    PartOf,
		LabelName:      "kalypso-" + component,
		LabelComponent: component,
		LabelInstance:  instance,
	}
	set := func(k, v string) {
		if v != "" {
			l[k] = v
		}
	}
	set(LabelProject, o.Project)
	set(LabelEnvironment, o.Environment)
	set(LabelApplication, o.Application)
	set(LabelTritonServer, o.TritonServer)
	return l
}

// Merge returns the union of label sets; later sets win.
func Merge(sets ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		maps.Copy(out, s)
	}
	return out
}
