package compose

import (
	"github.com/crossplane/function-sdk-go/resource"
)

// Labels Crossplane puts on the composite of a claim.
const (
	LabelClaimName      = "crossplane.io/claim-name"
	LabelClaimNamespace = "crossplane.io/claim-namespace"
)

// Identity is the namespace a namespaced kind works in and the name its
// objects are named after: the XR's own for v2 XRs, the claim's for the
// legacy claim flavour (whose XR is cluster scoped and named <claim>-<suffix>).
type Identity struct {
	Namespace string
	Name      string
	// Claim is true for the claim flavour.
	Claim bool
}

// IdentityOf reads the identity of an observed composite.
func IdentityOf(xr *resource.Composite) Identity {
	if ns := xr.Resource.GetNamespace(); ns != "" {
		return Identity{Namespace: ns, Name: xr.Resource.GetName()}
	}
	l := xr.Resource.GetLabels()
	if ns := l[LabelClaimNamespace]; ns != "" {
		name := l[LabelClaimName]
		if name == "" {
			name = xr.Resource.GetName()
		}
		return Identity{Namespace: ns, Name: name, Claim: true}
	}
	if ref := xr.Resource.GetClaimReference(); ref != nil && ref.Namespace != "" {
		return Identity{Namespace: ref.Namespace, Name: ref.Name, Claim: true}
	}
	return Identity{Name: xr.Resource.GetName()}
}

// Generation reads the composite's metadata.generation. Not GetGeneration:
// a request's numbers arrive as float64 (structpb), which it reads as 0.
func Generation(xr *resource.Composite) int64 {
	gen, _ := Int(xr.Resource.Object, "metadata", "generation")
	return gen
}
