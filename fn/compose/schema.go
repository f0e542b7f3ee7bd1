package compose

import (
	"fmt"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// SchemaRequirer is a composer that checks whether optional kinds are
// served (their CRDs installed), through required schemas (GVK.Schema).
type SchemaRequirer interface {
	// Schemas are the kinds it checks on this call, by requirement key.
	Schemas(p Platform) map[string]*fnv1.SchemaSelector
}

// SchemasOf returns a composer's schema requirements: none unless it is a
// SchemaRequirer.
func SchemasOf(c any, p Platform) map[string]*fnv1.SchemaSelector {
	if s, ok := c.(SchemaRequirer); ok {
		return s.Schemas(p)
	}
	return nil
}

// Served puts a resolved schema into the form of a required resource, so a
// composer reads every requirement alike: one item naming the kind when
// the API server serves it, none when it does not (a nil schema).
func Served(sel *fnv1.SchemaSelector, schema *structpb.Struct) []resource.Required {
	if schema == nil {
		return []resource.Required{}
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(sel.GetApiVersion())
	u.SetKind(sel.GetKind())
	return []resource.Required{{Resource: u}}
}

// CRDMissing says that a CRD checked through a required schema is not
// installed, followed by what (", so …: install …"), and how to refresh
// core's view when it is installed after all. Core answers from a discovery
// cache it clears on CRD events (v2.2.1 and v2.3.4
// internal/xfn/cached_discovery.go), while the API server publishes a new
// CRD's OpenAPI only after it is Established, from a queue of its own
// (apiextensions-apiserver v0.35.4 pkg/controller/openapiv3/controller.go
// sync): a check in between holds the kind as absent until an event on a
// CRD, which the informer's resync (core's --sync-interval) also sends.
// Tenants read the message but cannot patch CRDs, so it names who can.
func CRDMissing(crd, what string) string {
	return fmt.Sprintf("the %s CRD is not installed%s (if it is installed and this stays past the next check a minute later, Crossplane core's schema cache is stale "+
		"until a CRD changes or core's --sync-interval, 1h by default, passes: a cluster admin can refresh it with "+
		"kubectl annotate --overwrite crd %s kalypso-serving.io/refresh=<a new value>)", crd, what, crd)
}

// PlatformFirst is a composer that wants the platform's EnvironmentConfig
// resolved before it states its other requirements, because they read
// Secrets (which Crossplane core fetches past its cache) and depend on the
// platform defaults.
type PlatformFirst interface {
	PlatformFirst() bool
}
