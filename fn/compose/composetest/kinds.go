package composetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// KindsOutsideTable reports every requirement and desired object of a
// response whose kind is not in compose.KindTable with the access it is
// used for: each one is a permission the shipped RBAC may lack.
func KindsOutsideTable(rsp *fnv1.RunFunctionResponse) error {
	var errs []error
	check := func(what, apiVersion, kind string, access compose.Access) {
		g, err := compose.LookupKind(apiVersion, kind)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		case g.Access&access == 0:
			errs = append(errs, fmt.Errorf("%s: %s is not marked for that use in the kind table (fn/compose/gvk.go)", what, g))
		}
	}
	sels := rsp.GetRequirements().GetResources()
	for _, name := range slices.Sorted(maps.Keys(sels)) {
		s := sels[name]
		check("requirement "+name, s.GetApiVersion(), s.GetKind(), compose.Read)
	}
	desired := rsp.GetDesired().GetResources()
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		o := desired[name].GetResource().AsMap()
		apiVersion, _ := o["apiVersion"].(string)
		kind, _ := o["kind"].(string)
		check("composed "+name, apiVersion, kind, compose.Compose)
	}
	return errors.Join(errs...)
}
