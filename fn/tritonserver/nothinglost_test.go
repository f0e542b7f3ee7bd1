package tritonserver_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/fn/tritonserver"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Nothing a user did not delete gets deleted (ARCHITECTURE.md §6): these
// tests follow a server through several reconciles, applying what it
// desires the way Crossplane does, and check what leaves the desired state
// (which Crossplane then deletes) when the spec or the cluster changes.

// The cluster around the server yolo in vision-prod.
var nlCluster0 = map[string]string{
	"application": `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod},
  spec: {projectRef: vision, storage: {provider: s3, secretName: models-s3, region: eu-west-1}},
  status: {environment: prod, conditions: [{type: Ready, status: "True", reason: Available}]}}`,
	"api-key":        `{apiVersion: v1, kind: Secret, metadata: {name: kalypso-triton-api-key, namespace: vision-prod}, data: {api-key: eA==}}`,
	"servicemonitor": `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: servicemonitors.monitoring.coreos.com}, spec: {group: monitoring.coreos.com, names: {kind: ServiceMonitor, plural: servicemonitors}, scope: Namespaced, versions: [{name: v1, served: true, storage: true}]}}`,
}

const notReadyApplication = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod},
  spec: {projectRef: vision, storage: {provider: s3, secretName: models-s3}}, status: {conditions: [{type: Ready, status: "False", reason: Creating}]}}`

func newCluster(t *testing.T, spec string) *composetest.Cluster {
	t.Helper()
	return &composetest.Cluster{
		Head:   "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoTritonServer\nmetadata: {name: yolo, namespace: vision-prod, generation: 1}\n",
		Spec:   spec,
		Others: maps.Clone(nlCluster0),
		New: func(xr *resource.Composite, observed map[resource.Name]resource.ObservedComposed) (composetest.Composer, error) {
			return tritonserver.New(xr, observed)
		},
		Platform: composetest.Platform(t, &v1beta1.Input{}),
		Applied:  applied,
	}
}

// applied is what the cluster makes of an applied object: server-side
// apply over what exists (fields others own stay), a Deployment that rolls
// out and a Service that gets its IP.
func applied(desired, previous map[string]any) map[string]any {
	o := map[string]any{}
	if previous != nil {
		o = previous
	}
	composetest.Merge(o, desired)
	u := &unstructured.Unstructured{Object: o}
	switch u.GetKind() {
	case "Deployment":
		u.SetGeneration(1)
		replicas, found, _ := unstructured.NestedInt64(o, "spec", "replicas")
		if !found {
			replicas = 1
		}
		o["status"] = map[string]any{
			"observedGeneration": int64(1), "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas,
			"conditions": []any{map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}},
		}
	case "Service":
		_ = unstructured.SetNestedField(o, "10.96.0.10", "spec", "clusterIP")
	}
	return o
}

func names(r compose.Result) []resource.Name { return slices.Sorted(maps.Keys(r.Desired)) }

const monitored = "  applicationRef: detector\n  storageUri: s3://vision-models/yolo\n  gpus: 1\n" +
	"  observability: {enabled: true, tracing: {enabled: true}, metrics: {enableServiceMonitor: true}}\n"

// TestServiceMonitorOffRemovesOnlyIt: turning the ServiceMonitor off, or
// losing its CRD, removes the ServiceMonitor and nothing else: the server
// keeps serving metrics on its Service.
func TestServiceMonitorOffRemovesOnlyIt(t *testing.T) {
	for name, change := range map[string]func(c *composetest.Cluster){
		"Disabled": func(c *composetest.Cluster) {
			c.Spec = strings.Replace(c.Spec, "enableServiceMonitor: true", "enableServiceMonitor: false", 1)
		},
		// The API server deletes a CRD's objects with it (its
		// customresourcecleanup finalizer), so the ServiceMonitor is
		// observed no more either.
		"CRDGone": func(c *composetest.Cluster) {
			delete(c.Others, "servicemonitor")
			delete(c.Observed, "servicemonitor")
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, monitored)
			before := c.Settle(t)
			if diff := cmp.Diff([]resource.Name{"deployment", "service", "servicemonitor", "usage"}, names(before)); diff != "" {
				t.Fatalf("composed: -want, +got:\n%s", diff)
			}
			change(c)
			composetest.AssertOnlyLeft(t, composetest.Bodies(t, before), composetest.Bodies(t, c.Reconcile(t)), "servicemonitor")
		})
	}
}

// TestAutoscalingOffRemovesOnlyItsObjects: turning autoscaling off removes
// the HorizontalPodAutoscaler, and the PodDisruptionBudget only when at most
// one replica remains.
func TestAutoscalingOffRemovesOnlyItsObjects(t *testing.T) {
	cases := map[string]struct {
		replicas, autoscaling string
		gone                  []resource.Name
	}{
		"TwoReplicas": {replicas: "2", autoscaling: "{enabled: true, minReplicas: 2, maxReplicas: 6}", gone: []resource.Name{"horizontalpodautoscaler"}},
		"OneReplica":  {replicas: "1", autoscaling: "{enabled: true, minReplicas: 1, maxReplicas: 4}", gone: []resource.Name{"horizontalpodautoscaler", "poddisruptionbudget"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := "  applicationRef: detector\n  storageUri: s3://vision-models/yolo\n  resources: {requests: {cpu: '1'}}\n  replicas: " + tc.replicas + "\n"
			c := newCluster(t, spec+"  autoscaling: "+tc.autoscaling+"\n")
			before := c.Settle(t)
			if diff := cmp.Diff([]resource.Name{"deployment", "horizontalpodautoscaler", "poddisruptionbudget", "service", "usage"}, names(before)); diff != "" {
				t.Fatalf("composed: -want, +got:\n%s", diff)
			}
			c.Spec = spec + "  autoscaling: " + strings.Replace(tc.autoscaling, "enabled: true", "enabled: false", 1) + "\n"
			composetest.AssertOnlyLeft(t, composetest.Bodies(t, before), composetest.Bodies(t, c.Reconcile(t)), tc.gone...)
		})
	}
}

// TestDependencyTroubleKeepsTheServer: once the server runs, its
// application going missing or not Ready, or the API key Secret going
// missing, takes nothing away: Crossplane would delete a running server.
func TestDependencyTroubleKeepsTheServer(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(c *composetest.Cluster)
		// kept: the Deployment is carried forward as observed, so only its
		// spec is compared.
		kept bool
	}{
		"ApplicationMissing":  {change: func(c *composetest.Cluster) { delete(c.Others, "application") }},
		"ApplicationNotReady": {change: func(c *composetest.Cluster) { c.Others["application"] = notReadyApplication }},
		"APIKeySecretMissing": {change: func(c *composetest.Cluster) { delete(c.Others, "api-key") }, kept: true},
	} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, monitored)
			before := c.Settle(t)
			tc.change(c)
			after := c.Reconcile(t)
			if !tc.kept {
				composetest.AssertOnlyLeft(t, composetest.Bodies(t, before), composetest.Bodies(t, after))
				return
			}
			if diff := cmp.Diff(names(before), names(after)); diff != "" {
				t.Errorf("desired objects: -before, +after:\n%s", diff)
			}
			if diff := cmp.Diff(before.Desired["deployment"].Resource.Object["spec"], after.Desired["deployment"].Resource.Object["spec"]); diff != "" {
				t.Errorf("the kept Deployment's spec changed: -before, +after:\n%s", diff)
			}
		})
	}
}

// TestInvalidSpecIsFatalAndKeepsEverything: a spec that turns invalid (a
// parameter that sets a managed flag) gets a Fatal naming the field and no
// desired state, so Crossplane keeps the running server and the last
// status; the last known conditions are sent again.
func TestInvalidSpecIsFatalAndKeepsEverything(t *testing.T) {
	c := newCluster(t, monitored)
	r := c.Settle(t)
	conds, want := composetest.LastConditions(r, map[string]any{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"})
	c.Status["conditions"] = conds
	c.Spec = monitored + "  tritonConfig: {parameters: [{name: grpc-port, value: '9001'}]}\n"

	composetest.AssertFatalKeepsEverything(t, c.RunFunction(t, fn.New(logging.NewNopLogger()), composetest.Struct(t, `{apiVersion: kalypso.fn.crossplane.io/v1beta1, kind: Input}`)), "spec.tritonConfig.parameters[0]", want)
}

// TestWaitingWithoutDeploymentKeepsTheRest: when the Deployment is gone
// (deleted by hand, or its apply failed) while the server waits for
// something, the server holds back only the Deployment it cannot build:
// the Service, ServiceMonitor, PDB, HPA and Usage that exist stay desired,
// or Crossplane would delete them.
func TestWaitingWithoutDeploymentKeepsTheRest(t *testing.T) {
	const spec = monitored + "  replicas: 2\n  resources: {requests: {cpu: '1'}}\n  autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 4}\n"
	for name, change := range map[string]func(c *composetest.Cluster){
		"APIKeySecretMissing": func(c *composetest.Cluster) { delete(c.Others, "api-key") },
		"ApplicationMissing":  func(c *composetest.Cluster) { delete(c.Others, "application") },
		"ApplicationNotReady": func(c *composetest.Cluster) { c.Others["application"] = notReadyApplication },
	} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, spec)
			before := c.Settle(t)
			if diff := cmp.Diff([]resource.Name{"deployment", "horizontalpodautoscaler", "poddisruptionbudget", "service", "servicemonitor", "usage"}, names(before)); diff != "" {
				t.Fatalf("composed: -want, +got:\n%s", diff)
			}
			change(c)
			delete(c.Observed, "deployment")
			after := c.Reconcile(t)
			if after.Ready {
				t.Error("a server without its Deployment reads Ready")
			}
			want := slices.DeleteFunc(names(before), func(n resource.Name) bool { return n == "deployment" })
			if diff := cmp.Diff(want, names(after)); diff != "" {
				t.Fatalf("desired while waiting without a Deployment: -want, +got:\n%s", diff)
			}
			for _, n := range want {
				if diff := cmp.Diff(c.Observed[string(n)]["spec"], after.Desired[n].Resource.Object["spec"]); diff != "" {
					t.Errorf("%s is not kept as it is: -observed, +desired:\n%s", n, diff)
				}
			}
		})
	}
}

// TestWaitingServerConvertsPreviousReleaseUsage: a server v0.1.0 composed
// whose Deployment is gone while it waits keeps its Usage, but as this
// release composes it: no spec.by (a foreground delete of the server would
// wait on it forever) and no replayed delete.
func TestWaitingServerConvertsPreviousReleaseUsage(t *testing.T) {
	c := newCluster(t, monitored)
	current := c.Settle(t)
	want := current.Desired["usage"].Resource.Object["spec"]
	usage := c.Observed["usage"]
	spec := usage["spec"].(map[string]any)
	delete(spec, "reason")
	spec["replayDeletion"] = true
	spec["by"] = map[string]any{"apiVersion": "serving.kalypso.io/v1alpha1", "kind": "KalypsoTritonServer", "resourceRef": map[string]any{"name": "yolo"}}
	delete(c.Others, "api-key")
	delete(c.Observed, "deployment")
	after := c.Reconcile(t)
	got, ok := after.Desired["usage"]
	if !ok {
		t.Fatal("the Usage left the desired state")
	}
	if diff := cmp.Diff(want, got.Resource.Object["spec"]); diff != "" {
		t.Errorf("the kept Usage's spec: -want, +got:\n%s", diff)
	}
}
