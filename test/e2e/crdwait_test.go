//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// optionalKind is a kind a composite checks through a required schema
// before it composes an object of it, and the condition by which the
// composite says the kind is not served.
//
// The composite looks at its next poll (TTL 60 s). Crossplane core answers
// from a discovery cache that it clears on CRD events (v2.2.1 and v2.3.4
// internal/xfn/cached_discovery.go), while the API server publishes a new
// CRD's OpenAPI only after it is Established, from a queue of its own
// (apiextensions-apiserver pkg/controller/openapiv3/controller.go sync): a
// schema check in between, by any composite, caches the group-version (or
// its document, for a new kind in a published one) as it was until the
// next CRD event. The lab's waits for a CRD to take effect tell that apart
// (refreshStaleSchema) and apply the cure the README and the condition
// name, an annotation on the CRD.
type optionalKind struct {
	gvk       schema.GroupVersionKind
	crd       string
	condition string // the composite's condition type
	missing   string // its reason while the kind is not served
}

var (
	optServiceMonitor = optionalKind{schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
		serviceMonitorCRD, "MetricsScraping", "ServiceMonitorCRDMissing"}
	optPrometheusRule = optionalKind{schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"},
		prometheusRuleCRD, "Alerting", "PrometheusRuleCRDMissing"}
	optAlertmanagerConfig = optionalKind{schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1alpha1", Kind: "AlertmanagerConfig"},
		alertmanagerConfigCRD, "AlertRouting", "AlertmanagerConfigCRDMissing"}
	optScaledObject = optionalKind{schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"},
		scaledObjectCRD, "Autoscaling", "KEDANotInstalled"}
	optHTTPRoute = optionalKind{schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
		"httproutes.gateway.networking.k8s.io", "Exposed", "GatewayAPIMissing"}
)

// crdPollWait covers a composite's next poll after a CRD is installed or
// its spec changed while its breaker is open (specChangeWait).
const crdPollWait = specChangeWait

// composedAfterCRD waits for the object (ns/name) that composite xr
// composes once the kind's CRD is installed.
func composedAfterCRD(t *testing.T, k optionalKind, xr objKey, ns, name string) *unstructured.Unstructured {
	t.Helper()
	actedOnCRD(t, k, xr, func() bool {
		o, err := lab.Kube.get(t.Context(), k.gvk.GroupVersion().String(), k.gvk.Kind, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		return o != nil
	})
	return waitExists(t, k.gvk.GroupVersion().String(), k.gvk.Kind, ns, name, crdPollWait)
}

// actedOnCRD polls done every second for crdPollWait, the sign that
// composite xr has acted on kind k's new CRD, and calls refreshStaleSchema
// if it has not by then. The caller then waits once more for the effect.
func actedOnCRD(t *testing.T, k optionalKind, xr objKey, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(crdPollWait); !done(); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			refreshStaleSchema(t, k, xr)
			return
		}
	}
}

// refreshStaleSchema is called when composite xr has not acted on kind k
// crdPollWait after its CRD was installed. Only a composite that still
// says the kind is not served, while the API server publishes the kind in
// its group-version's OpenAPI document (as core reads it,
// internal/xfn/required_schemas.go), shows core's stale cache: the lab then
// records a finding and annotates the CRD. Anything else fails the test.
func refreshStaleSchema(t *testing.T, k optionalKind, xr objKey) {
	t.Helper()
	u := mustGet(t, apiVersionKalypso, xr.kind, xr.ns, xr.name)
	if c := getCondition(u, k.condition); c.Reason != k.missing {
		t.Fatalf("%s %s has not acted on the %s CRD %s after it was installed, and its %s is not %s: %s",
			xr.kind, nsName(xr.ns, xr.name), k.gvk.Kind, crdPollWait, k.condition, k.missing, conditionsSummary(u))
	}
	published, err := publishes(k.gvk)
	if err != nil {
		t.Fatal(err)
	}
	if !published {
		t.Fatalf("%s %s says %s=%s %s after the %s CRD was installed, and the API server does not publish %s in its OpenAPI v3 either",
			xr.kind, nsName(xr.ns, xr.name), k.condition, k.missing, crdPollWait, k.gvk.Kind, k.gvk)
	}
	finding(t, "%s %s still says %s=%s %s after the %s CRD was installed although the API server publishes its OpenAPI: "+
		"Crossplane core cached the kind as absent between the CRD's last event and its OpenAPI (README, Crossplane versions); annotating the CRD",
		xr.kind, nsName(xr.ns, xr.name), k.condition, k.missing, crdPollWait, k.gvk.Kind)
	// A merge patch, as kubectl annotate sends: the lab applied the CRD
	// with its own field manager, and applying only the annotation with it
	// would give up (and so remove) the CRD's spec.
	crds := lab.Kube.Dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Patch(t.Context(), k.crd, types.MergePatchType,
		fmt.Appendf(nil, `{"metadata":{"annotations":{"kalypso-serving.io/refresh":"%d"}}}`, time.Now().UnixNano()), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate CRD %s: %v", k.crd, err)
	}
}

// waitPublished waits, up to a minute, until the API server publishes each
// kind in its group-version's OpenAPI document.
func waitPublished(t *testing.T, gvks ...schema.GroupVersionKind) {
	t.Helper()
	for _, gvk := range gvks {
		waitFor(t, fmt.Sprintf("the API server publishes %s in %s's OpenAPI", gvk.Kind, gvk.GroupVersion()), time.Minute, func() (bool, string, error) {
			ok, err := publishes(gvk)
			return ok, "not yet", err
		})
	}
}

// publishes reports whether the API server's OpenAPI v3 document of the
// kind's group-version has a schema for the kind, found as core finds it:
// by its x-kubernetes-group-version-kind extension.
func publishes(gvk schema.GroupVersionKind) (bool, error) {
	paths, err := lab.Kube.Typed.Discovery().OpenAPIV3().Paths()
	if err != nil {
		return false, fmt.Errorf("read the API server's OpenAPI v3 paths: %w", err)
	}
	gv, ok := paths["apis/"+gvk.GroupVersion().String()]
	if !ok {
		return false, nil
	}
	b, err := gv.Schema("application/json")
	if err != nil {
		return false, fmt.Errorf("read the API server's OpenAPI v3 document of %s: %w", gvk.GroupVersion(), err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				GVKs []struct{ Group, Version, Kind string } `json:"x-kubernetes-group-version-kind"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return false, fmt.Errorf("decode the OpenAPI v3 document of %s: %w", gvk.GroupVersion(), err)
	}
	for _, s := range doc.Components.Schemas {
		for _, g := range s.GVKs {
			if g.Group == gvk.Group && g.Version == gvk.Version && g.Kind == gvk.Kind {
				return true, nil
			}
		}
	}
	return false, nil
}
