package tritonserver

import (
	"fmt"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// reqAppProtection is the application's Usage of itself (see
// compose.ApplicationProtectionName).
const reqAppProtection = "application-protection"

// appProtectionRequirement asks for the application's Usage of itself (the
// claim flavour: its ClusterUsage), which Crossplane core serves from its
// cache of Usages.
func (c *Composer) appProtectionRequirement() *fnv1.ResourceSelector {
	app := compose.Identity{Namespace: c.id.Namespace, Name: c.spec.ApplicationRef, Claim: c.id.Claim}
	if c.id.Claim {
		return compose.KindClusterUsage.Named("", compose.ApplicationProtectionName(app))
	}
	return compose.KindUsage.Named(c.id.Namespace, compose.ApplicationProtectionName(app))
}

// applicationProtected: the application refuses its deletion by itself, so
// this server needs no Usage of its own. A Usage being deleted does not
// count: the application dropped it, having counted no server.
func applicationProtected(required map[string][]resource.Required) bool {
	items := required[reqAppProtection]
	return len(items) > 0 && items[0].Resource.GetDeletionTimestamp() == nil
}

// addUsage composes the server's own Usage of its application until the
// application protects itself; then Crossplane deletes it. The server finds
// the application's Usage in core's cache only after the application's
// count (polled every compose.PollTTL) included this server, so there is
// no time when neither protects it, except one: an application that counts
// no server drops its Usage, and a server created while that call runs may
// have seen the Usage a moment before. That application is protected again
// at its next count, about a minute later. A dropped Usage is never held:
// Crossplane strips its crossplane.io/composite label before deleting it
// (v2.2.1 composition_functions.go, garbage collection), and the Usage
// controller waits for a `by` object only while that label is there
// (internal/controller/protection/usage/reconciler.go), so one an older
// release composed with spec.by goes as well.
func (c *Composer) addUsage(d *compose.Desired, app *unstructured.Unstructured, labels map[string]string, required map[string][]resource.Required) error {
	if applicationProtected(required) {
		return nil
	}
	reason := fmt.Sprintf("KalypsoTritonServer %s/%s serves this application: delete the server first, then delete the application again", c.id.Namespace, c.id.Name)
	if !c.id.Claim {
		_, err := d.Add(resUsage, compose.ApplicationUsage(c.name("uses-application"), c.id.Namespace, labels, c.spec.ApplicationRef, reason), compose.Exists)
		return err
	}
	// Claim flavour: both composites are cluster scoped, so the Usage is a
	// ClusterUsage between them; the application's composite is named in its
	// claim's spec.resourceRef.
	appXR := ""
	if app != nil {
		appXR, _, _ = unstructured.NestedString(app.Object, "spec", "resourceRef", "name")
	}
	if appXR == "" {
		if o, ok := c.observed[resUsage]; ok {
			if _, err := d.Keep(resUsage, o.Resource, compose.Exists); err != nil {
				return err
			}
			// Reason-only even when kept: one an older release composed
			// names the server in spec.by (see compose.ApplicationUsage).
			kept := d.Objects[resUsage].Resource.Object
			unstructured.RemoveNestedField(kept, "spec", "by")
			if err := unstructured.SetNestedField(kept, reason, "spec", "reason"); err != nil {
				return err
			}
			return unstructured.SetNestedField(kept, false, "spec", "replayDeletion")
		}
		return nil
	}
	_, err := d.Add(resUsage, compose.ApplicationClusterUsage(c.name("uses-application")+"-"+c.id.Namespace, labels, appXR, reason), compose.Exists)
	return err
}
