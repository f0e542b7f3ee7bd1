package application_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/application"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Nothing a user did not delete gets deleted (ARCHITECTURE.md §6): these
// tests follow an application through several reconciles, applying what it
// desires the way Crossplane does, and check what leaves the desired state
// (which Crossplane then deletes) when the spec or the cluster changes.

// The cluster around the application detector in vision-prod.
var (
	nlProject = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
  spec: {environments: {prod: {namespace: vision-prod}}}, status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`
	nlProjectProvisioning = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
  spec: {environments: {prod: {namespace: vision-prod}}}, status: {conditions: [{type: Ready, status: "False", reason: Creating}]}}`
	nlSecret   = `{apiVersion: v1, kind: Secret, metadata: {name: models-s3, namespace: vision-prod}, data: {AWS_ACCESS_KEY_ID: eA==, AWS_SECRET_ACCESS_KEY: eA==}}`
	nlRouteCRD = `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: httproutes.gateway.networking.k8s.io}, spec: {group: gateway.networking.k8s.io, names: {kind: HTTPRoute, plural: httproutes}, scope: Namespaced, versions: [{name: v1, served: true, storage: true}]}}`
	nlYolo     = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: yolo, namespace: vision-prod},
  spec: {applicationRef: detector}, status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`
	nlRanker = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: ranker, namespace: vision-prod},
  spec: {applicationRef: detector, networking: {httpPort: 9000, grpcPort: 9001}}}`
)

// nlInput is the function Input of a platform with a gateway, and
// nlInputYAML the same as a request carries it.
var nlInput = &v1beta1.Input{Spec: v1beta1.Defaults{Gateway: &v1beta1.GatewayDefaults{
	ParentRefs: []v1beta1.ParentRef{{Name: "kalypso-gateway", Namespace: "gateway-system"}},
	Hostname:   ptr.To("models.example.com"),
}}}

const nlInputYAML = `{apiVersion: kalypso.fn.crossplane.io/v1beta1, kind: Input,
  spec: {gateway: {parentRefs: [{name: kalypso-gateway, namespace: gateway-system}], hostname: models.example.com}}}`

func newCluster(t *testing.T, spec string) *composetest.Cluster {
	t.Helper()
	return &composetest.Cluster{
		Head: "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoApplication\nmetadata: {name: detector, namespace: vision-prod, generation: 1}\n",
		Spec: spec,
		Others: map[string]string{
			"project": nlProject, "secret": nlSecret, "crd": nlRouteCRD, "yolo": nlYolo, "ranker": nlRanker,
		},
		New: func(xr *resource.Composite, observed map[resource.Name]resource.ObservedComposed) (composetest.Composer, error) {
			return application.New(xr, observed)
		},
		Platform: composetest.Platform(t, nlInput),
		Applied:  accepted,
	}
}

// accepted is an applied object with the gateway's verdict: it accepts
// every route.
func accepted(o, _ map[string]any) map[string]any {
	if parents, _, _ := unstructured.NestedSlice(o, "spec", "parentRefs"); len(parents) > 0 {
		o["status"] = map[string]any{"parents": []any{map[string]any{
			"parentRef": parents[0], "controllerName": "gateway.example.com/controller",
			"conditions": []any{map[string]any{"type": "Accepted", "status": "True", "reason": "Accepted"}},
		}}}
	}
	return o
}

const exposed = "  projectRef: vision\n  storage: {secretName: models-s3}\n  gateway: {enabled: true}\n"

var routes = []resource.Name{"grpcroute-ranker", "grpcroute-yolo", "httproute-ranker", "httproute-yolo"}

// TestGatewayOffRemovesOnlyTheRoutes: turning exposure off removes the
// routes, and the application stays Ready.
func TestGatewayOffRemovesOnlyTheRoutes(t *testing.T) {
	c := newCluster(t, exposed)
	on := c.Settle(t)
	if diff := cmp.Diff(append(slices.Clone(routes), "usage"), slices.Sorted(maps.Keys(on.Desired))); diff != "" {
		t.Fatalf("exposed: -want, +got routes and the application's Usage of itself:\n%s", diff)
	}
	c.Spec = strings.Replace(exposed, "enabled: true", "enabled: false", 1)
	off := c.Reconcile(t)
	composetest.AssertOnlyLeft(t, composetest.Bodies(t, on), composetest.Bodies(t, off), routes...)
	if !off.Ready {
		t.Error("turning exposure off must leave the application Ready")
	}
}

// TestServerGoneRemovesOnlyItsRoutes: a server that no longer exists loses
// its routes; the other server's stay as they are.
func TestServerGoneRemovesOnlyItsRoutes(t *testing.T) {
	c := newCluster(t, exposed)
	before := c.Settle(t)
	delete(c.Others, "ranker")
	composetest.AssertOnlyLeft(t, composetest.Bodies(t, before), composetest.Bodies(t, c.Reconcile(t)), "grpcroute-ranker", "httproute-ranker")
}

// TestRoutesSurviveDependencyTrouble: once routes exist, a project that is
// briefly not Ready or missing, or storage that goes missing, does not make
// the application drop them.
func TestRoutesSurviveDependencyTrouble(t *testing.T) {
	for name, change := range map[string]func(c *composetest.Cluster){
		"ProjectNotReady": func(c *composetest.Cluster) { c.Others["project"] = nlProjectProvisioning },
		"ProjectMissing":  func(c *composetest.Cluster) { delete(c.Others, "project") },
		"SecretMissing":   func(c *composetest.Cluster) { delete(c.Others, "secret") },
	} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, exposed)
			before := c.Settle(t)
			change(c)
			after := c.Reconcile(t)
			composetest.AssertOnlyLeft(t, composetest.Bodies(t, before), composetest.Bodies(t, after))
			if after.Ready {
				t.Error("the application must not be Ready while its dependency is in trouble")
			}
		})
	}
}

// TestInvalidSpecIsFatalAndKeepsEverything: a stored spec that no longer
// decodes (written before an XRD change) gets a Fatal naming the field and
// no desired state, so Crossplane keeps the routes and the last status; the
// last known conditions are sent again.
func TestInvalidSpecIsFatalAndKeepsEverything(t *testing.T) {
	c := newCluster(t, exposed)
	r := c.Settle(t)
	conds, want := composetest.LastConditions(r, map[string]any{"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-01-01T00:00:00Z"})
	c.Status["conditions"] = conds
	c.Spec = "  projectRef: vision\n  storage: {secretName: models-s3}\n  gateway: {enabled: 'yes'}\n"

	composetest.AssertFatalKeepsEverything(t, c.RunFunction(t, fn.New(logging.NewNopLogger()), composetest.Struct(t, nlInputYAML)), "spec.gateway.enabled", want)
}
