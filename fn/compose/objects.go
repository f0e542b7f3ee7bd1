package compose

import (
	"encoding/json"
	"fmt"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	u, err := ToComposed(o)
	if err != nil {
		return false, fmt.Errorf("cannot compose %s: %w", name, err)
	}
	return d.AddUnstructured(name, u, ready), nil
}

// ToComposed converts a typed object the way the API server's own JSON
// does (omitempty drops zero numbers and false), so the function emits only
// the fields it sets: server-side apply makes Crossplane own every emitted
// field. composed.From (go-json-experiment) keeps zeros such as
// successThreshold: 0 and drops empty structs such as emptyDir: {}. The
// status and null values (creationTimestamp) are left out.
func ToComposed(o runtime.Object) (*composed.Unstructured, error) {
	gvks, _, err := composed.Scheme.ObjectKinds(o)
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("%T is not registered in composed.Scheme: %w", o, err)
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	delete(obj, "status")
	dropNulls(obj)
	u := &composed.Unstructured{Unstructured: unstructured.Unstructured{Object: obj}}
	u.SetGroupVersionKind(gvks[0])
	return u, nil
}

// dropNulls removes null values from maps, recursively.
func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range t {
			dropNulls(e)
		}
	}
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
	return Str(o.Object, "status", "phase") == "Active"
}

// Keep carries an observed object forward into the desired state, for an
// object whose spec is gone from the composite or cannot be rebuilt now (an
// environment kept while still in use, a Deployment while its application
// is missing): its content fields and identifying metadata, none of the
// server's bookkeeping. An object that does not decode into its type is
// refused rather than sent back.
func (d *Desired) Keep(name resource.Name, observed *composed.Unstructured, ready ReadyCheck) (bool, error) {
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
	if err := decodes(out); err != nil {
		return false, fmt.Errorf("cannot keep the observed %s: %w", name, err)
	}
	return d.AddUnstructured(name, out, ready), nil
}

// decodes checks an object against its registered Go type. Unknown fields
// are let through: a newer API server may know fields these types do not.
func decodes(u *composed.Unstructured) error {
	obj, err := composed.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return err
	}
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, obj)
}

// ServiceHasClusterIP is the readiness of a ClusterIP Service.
func ServiceHasClusterIP(o *composed.Unstructured) bool {
	return Str(o.Object, "spec", "clusterIP") != ""
}

// ConditionStatus returns the status of a status.conditions entry of any
// object ("" when absent).
func ConditionStatus(obj map[string]any, typ string) string {
	c := FindCondition(obj, typ)
	if c == nil {
		return ""
	}
	s, _ := c["status"].(string)
	return s
}

// FindCondition returns a status.conditions entry of any object, or nil.
func FindCondition(obj map[string]any, typ string) map[string]any {
	return ListEntry(obj, "type", typ, "status", "conditions")
}

// ListEntry returns the first entry of the list at path whose field holds
// value (a condition by its type, a pod's claim by its name), or nil.
func ListEntry(obj map[string]any, field, value string, path ...string) map[string]any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	list, _ := v.([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m[field] == value {
			return m
		}
	}
	return nil
}

// MissingSecretKeys returns the keys a Secret lacks or holds empty, in the
// order asked. Only whether a key holds something is looked at: a value is
// never read into anything the function produces.
func MissingSecretKeys(secret *unstructured.Unstructured, keys ...string) []string {
	data, _, _ := unstructured.NestedMap(secret.Object, "data")
	stringData, _, _ := unstructured.NestedMap(secret.Object, "stringData")
	var missing []string
	for _, k := range keys {
		d, _ := data[k].(string)
		sd, _ := stringData[k].(string)
		if d == "" && sd == "" {
			missing = append(missing, k)
		}
	}
	return missing
}

// OrZero is a quantity read from a status, "0" when it is absent (the
// quota controller leaves out what nothing uses).
func OrZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
