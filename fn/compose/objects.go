package compose

import (
	"fmt"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"k8s.io/apimachinery/pkg/runtime"
)

// Desired collects composed objects with their readiness taken from the
// observed state: an object is never ready before it has been observed.
type Desired struct {
	Observed map[resource.Name]resource.ObservedComposed
	Objects  map[resource.Name]*resource.DesiredComposed
	// NotReady lists the objects that are not ready yet, in insertion order.
	NotReady []resource.Name
}

// NewDesired starts an empty desired state against the observed one.
func NewDesired(observed map[resource.Name]resource.ObservedComposed) *Desired {
	return &Desired{Observed: observed, Objects: map[resource.Name]*resource.DesiredComposed{}}
}

// ReadyCheck decides readiness from an observed object.
type ReadyCheck func(observed *composed.Unstructured) bool

// Exists is the readiness of objects without a status worth reading
// (ResourceQuota, LimitRange, NetworkPolicy, RoleBinding…).
func Exists(*composed.Unstructured) bool { return true }

// Add converts a typed object and records its readiness. It reports whether
// the object is ready.
func (d *Desired) Add(name resource.Name, o runtime.Object, ready ReadyCheck) (bool, error) {
	u, err := composed.From(o)
	if err != nil {
		return false, fmt.Errorf("cannot compose %s: %w", name, err)
	}
	return d.AddUnstructured(name, u, ready), nil
}

// AddUnstructured records an already converted object.
func (d *Desired) AddUnstructured(name resource.Name, u *composed.Unstructured, ready ReadyCheck) bool {
	ok := false
	if obs, seen := d.Observed[name]; seen {
		ok = ready(obs.Resource)
	}
	r := resource.ReadyFalse
	if ok {
		r = resource.ReadyTrue
	} else {
		d.NotReady = append(d.NotReady, name)
	}
	d.Objects[name] = &resource.DesiredComposed{Resource: u, Ready: r}
	return ok
}

// NamespaceActive is the readiness of a Namespace.
func NamespaceActive(o *composed.Unstructured) bool {
	phase, _ := o.GetString("status.phase")
	return phase == "Active"
}

// CarryForward rebuilds the desired form of an observed object whose spec is
// gone from the composite (e.g. an environment kept while still in use): the
// content fields and identifying metadata, none of the server's bookkeeping.
func CarryForward(observed *composed.Unstructured) *composed.Unstructured {
	out := composed.New()
	for k, v := range observed.Object {
		if k != "metadata" && k != "status" {
			out.Object[k] = runtime.DeepCopyJSONValue(v)
		}
	}
	out.SetName(observed.GetName())
	out.SetNamespace(observed.GetNamespace())
	out.SetLabels(observed.GetLabels())
	out.SetAnnotations(observed.GetAnnotations())
	return out
}
