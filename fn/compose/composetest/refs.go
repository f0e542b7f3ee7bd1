package composetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// RefKeysCollide reports desired objects that share apiVersion, kind and
// name. Crossplane v2.2.1 sorts a composite's spec.crossplane.resourceRefs
// by that key alone (internal/controller/apiextensions/composite/
// composition_functions.go UpdateResourceRefs, sort.Slice, not stable) from
// a map of the desired objects, so two objects that differ only in their
// namespace swap places at random: every reconcile then rewrites the spec,
// bumps the generation, and the composite's own watch event reconciles it
// again until core's circuit breaker opens. v2.3 adds the namespace to the
// key (crossplane/crossplane#7341).
func RefKeysCollide(rsp *fnv1.RunFunctionResponse) error {
	objs := map[string]map[string]any{}
	for name, r := range rsp.GetDesired().GetResources() {
		objs[name] = r.GetResource().AsMap()
	}
	return refKeyCollisions(objs)
}

// DesiredRefKeysCollide is RefKeysCollide for a composer's desired state.
func DesiredRefKeysCollide(desired map[resource.Name]*resource.DesiredComposed) error {
	objs := map[string]map[string]any{}
	for name, d := range desired {
		objs[string(name)] = d.Resource.Object
	}
	return refKeyCollisions(objs)
}

func refKeyCollisions(objs map[string]map[string]any) error {
	seen := map[string]string{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(objs)) {
		o := objs[name]
		apiVersion, _ := o["apiVersion"].(string)
		kind, _ := o["kind"].(string)
		meta, _ := o["metadata"].(map[string]any)
		objName, _ := meta["name"].(string)
		key := apiVersion + "|" + kind + "|" + objName
		if other, ok := seen[key]; ok {
			errs = append(errs, fmt.Errorf("composed %s and %s are both %s %s %q: Crossplane v2.2.1 orders resourceRefs by apiVersion, kind and name only, so their order changes at every reconcile", other, name, apiVersion, kind, objName))
			continue
		}
		seen[key] = name
	}
	return errors.Join(errs...)
}
