package application_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/crossplane/function-sdk-go/resource/composite"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/application"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Nothing a user did not delete gets deleted (ARCHITECTURE.md §6): these
// tests follow an application through several reconciles, applying what it
// desires the way Crossplane does, and check what leaves the desired state
// (which Crossplane then deletes) when the spec or the cluster changes.

func nlObject(t *testing.T, y string) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("bad YAML: %v", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("bad object: %v\n%s", err, y)
	}
	return u.Object
}

// The cluster around the application detector in vision-prod.
var (
	nlProject = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
  spec: {environments: {prod: {namespace: vision-prod}}}, status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`
	nlProjectProvisioning = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
  spec: {environments: {prod: {namespace: vision-prod}}}, status: {conditions: [{type: Ready, status: "False", reason: Creating}]}}`
	nlSecret   = `{apiVersion: v1, kind: Secret, metadata: {name: models-s3, namespace: vision-prod}, data: {AWS_ACCESS_KEY_ID: eA==, AWS_SECRET_ACCESS_KEY: eA==}}`
	nlRouteCRD = `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: httproutes.gateway.networking.k8s.io}}`
	nlYolo     = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: yolo, namespace: vision-prod},
  spec: {applicationRef: detector}, status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`
	nlRanker = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: ranker, namespace: vision-prod},
  spec: {applicationRef: detector, networking: {httpPort: 9000, grpcPort: 9001}}}`
)

// nlInput is the function Input of a platform with a gateway.
var nlInput = &v1beta1.Input{Spec: v1beta1.Defaults{Gateway: &v1beta1.GatewayDefaults{
	ParentRefs: []v1beta1.ParentRef{{Name: "kalypso-gateway", Namespace: "gateway-system"}},
	Hostname:   ptr.To("models.example.com"),
}}}

type nlCluster struct {
	spec     string
	status   map[string]any
	observed map[resource.Name]map[string]any
	others   map[string]string // name → object that exists
}

func newCluster(spec string) *nlCluster {
	return &nlCluster{spec: spec, others: map[string]string{
		"project": nlProject, "secret": nlSecret, "crd": nlRouteCRD, "yolo": nlYolo, "ranker": nlRanker,
	}}
}

func (c *nlCluster) xr(t *testing.T) *resource.Composite {
	t.Helper()
	o := nlObject(t, "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoApplication\nmetadata: {name: detector, namespace: vision-prod, generation: 1}\nspec:\n"+c.spec)
	if c.status != nil {
		o["status"] = runtime.DeepCopyJSON(c.status)
	}
	return &resource.Composite{Resource: &composite.Unstructured{Unstructured: unstructured.Unstructured{Object: o}}}
}

func (c *nlCluster) pool(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, k := range slices.Sorted(maps.Keys(c.others)) {
		out = append(out, nlObject(t, c.others[k]))
	}
	for _, n := range slices.Sorted(maps.Keys(c.observed)) {
		out = append(out, c.observed[n])
	}
	return out
}

func (c *nlCluster) reconcile(t *testing.T) compose.Result {
	t.Helper()
	observed := map[resource.Name]resource.ObservedComposed{}
	for n, o := range c.observed {
		observed[n] = resource.ObservedComposed{Resource: &composed.Unstructured{Unstructured: unstructured.Unstructured{Object: runtime.DeepCopyJSON(o)}}}
	}
	comp, err := application.New(c.xr(t), observed)
	if err != nil {
		t.Fatalf("application.New: %v", err)
	}
	p, err := compose.ResolvePlatform(nlInput, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := comp.Compose(p, nlResolve(comp.Requirements(p), c.pool(t)))
	if r.Fatal != nil {
		t.Fatalf("unexpected Fatal: %v", r.Fatal)
	}
	return r
}

// apply does what Crossplane and the gateway do with a result: apply the
// desired routes (which the gateway accepts), delete the others, write the
// status.
func (c *nlCluster) apply(t *testing.T, r compose.Result) {
	t.Helper()
	observed := map[resource.Name]map[string]any{}
	for n, d := range r.Desired {
		o := runtime.DeepCopyJSON(d.Resource.Object)
		u := &unstructured.Unstructured{Object: o}
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann["crossplane.io/composition-resource-name"] = string(n)
		u.SetAnnotations(ann)
		if parents, _, _ := unstructured.NestedSlice(o, "spec", "parentRefs"); len(parents) > 0 {
			o["status"] = map[string]any{"parents": []any{map[string]any{
				"parentRef": parents[0], "controllerName": "gateway.example.com/controller",
				"conditions": []any{map[string]any{"type": "Accepted", "status": "True", "reason": "Accepted"}},
			}}}
		}
		observed[n] = o
	}
	c.observed = observed
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r.Status)
	if err != nil {
		t.Fatal(err)
	}
	c.status = st
}

func (c *nlCluster) settle(t *testing.T) compose.Result {
	t.Helper()
	var r compose.Result
	for range 3 {
		r = c.reconcile(t)
		c.apply(t, r)
	}
	return r
}

func nlResolve(sels map[string]*fnv1.ResourceSelector, pool []map[string]any) map[string][]resource.Required {
	out := map[string][]resource.Required{}
	for name, sel := range sels {
		out[name] = []resource.Required{}
		for _, o := range pool {
			if nlMatches(sel, o) {
				out[name] = append(out[name], resource.Required{Resource: &unstructured.Unstructured{Object: runtime.DeepCopyJSON(o)}})
			}
		}
	}
	return out
}

func nlMatches(sel *fnv1.ResourceSelector, o map[string]any) bool {
	u := &unstructured.Unstructured{Object: o}
	if u.GetAPIVersion() != sel.GetApiVersion() || u.GetKind() != sel.GetKind() {
		return false
	}
	if sel.Namespace != nil && u.GetNamespace() != sel.GetNamespace() {
		return false
	}
	switch m := sel.GetMatch().(type) {
	case *fnv1.ResourceSelector_MatchName:
		return u.GetName() == m.MatchName
	case *fnv1.ResourceSelector_MatchLabels:
		for k, v := range m.MatchLabels.GetLabels() {
			if u.GetLabels()[k] != v {
				return false
			}
		}
		return true
	}
	return false
}

func bodies(t *testing.T, r compose.Result) map[resource.Name]string {
	t.Helper()
	out := map[resource.Name]string{}
	for n, d := range r.Desired {
		b, err := json.Marshal(d.Resource.Object)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(b)
	}
	return out
}

// assertOnlyLeft checks that exactly want left the desired state and every
// other object is desired unchanged.
func assertOnlyLeft(t *testing.T, before, after map[resource.Name]string, want []resource.Name) {
	t.Helper()
	var gone []resource.Name
	for n, b := range before {
		a, ok := after[n]
		switch {
		case !ok:
			gone = append(gone, n)
		case a != b:
			t.Errorf("%s changed although only other objects should go:\n- %s\n+ %s", n, b, a)
		}
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			t.Errorf("%s appeared", n)
		}
	}
	slices.Sort(gone)
	slices.Sort(want)
	if diff := cmp.Diff(want, gone); diff != "" {
		t.Errorf("objects that left the desired state (Crossplane deletes them): -want, +got:\n%s", diff)
	}
}

const exposed = "  projectRef: vision\n  storage: {secretName: models-s3}\n  gateway: {enabled: true}\n"

var routes = []resource.Name{"grpcroute-ranker", "grpcroute-yolo", "httproute-ranker", "httproute-yolo"}

// TestGatewayOffRemovesOnlyTheRoutes: turning exposure off removes the
// routes, and the application stays Ready.
func TestGatewayOffRemovesOnlyTheRoutes(t *testing.T) {
	c := newCluster(exposed)
	on := c.settle(t)
	if diff := cmp.Diff(routes, slices.Sorted(maps.Keys(on.Desired))); diff != "" {
		t.Fatalf("exposed: -want, +got routes:\n%s", diff)
	}
	c.spec = strings.Replace(exposed, "enabled: true", "enabled: false", 1)
	off := c.reconcile(t)
	assertOnlyLeft(t, bodies(t, on), bodies(t, off), routes)
	if !off.Ready {
		t.Error("turning exposure off must leave the application Ready")
	}
}

// TestServerGoneRemovesOnlyItsRoutes: a server that no longer exists loses
// its routes; the other server's stay as they are.
func TestServerGoneRemovesOnlyItsRoutes(t *testing.T) {
	c := newCluster(exposed)
	before := c.settle(t)
	delete(c.others, "ranker")
	assertOnlyLeft(t, bodies(t, before), bodies(t, c.reconcile(t)), []resource.Name{"grpcroute-ranker", "httproute-ranker"})
}

// TestRoutesSurviveDependencyTrouble: once routes exist, a project that is
// briefly not Ready or missing, or storage that goes missing, does not make
// the application drop them.
func TestRoutesSurviveDependencyTrouble(t *testing.T) {
	for name, change := range map[string]func(c *nlCluster){
		"ProjectNotReady": func(c *nlCluster) { c.others["project"] = nlProjectProvisioning },
		"ProjectMissing":  func(c *nlCluster) { delete(c.others, "project") },
		"SecretMissing":   func(c *nlCluster) { delete(c.others, "secret") },
	} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(exposed)
			before := c.settle(t)
			change(c)
			after := c.reconcile(t)
			assertOnlyLeft(t, bodies(t, before), bodies(t, after), nil)
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
	c := newCluster(exposed)
	r := c.settle(t)
	var conds []any
	var want []*fnv1.Condition
	for _, cd := range r.Conditions {
		st, pst := "False", fnv1.Status_STATUS_CONDITION_FALSE
		if cd.Status {
			st, pst = "True", fnv1.Status_STATUS_CONDITION_TRUE
		}
		conds = append(conds, map[string]any{"type": cd.Type, "status": st, "reason": cd.Reason, "message": cd.Message, "lastTransitionTime": "2026-01-01T00:00:00Z"})
		want = append(want, &fnv1.Condition{Type: cd.Type, Status: pst, Reason: cd.Reason, Message: ptr.To(cd.Message), Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()})
	}
	conds = append(conds, map[string]any{"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-01-01T00:00:00Z"})
	c.status["conditions"] = conds
	c.spec = "  projectRef: vision\n  storage: {secretName: models-s3}\n  gateway: {enabled: 'yes'}\n"

	rsp := runFunction(t, c)
	var fatal *fnv1.Result
	for _, res := range rsp.GetResults() {
		if res.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			fatal = res
		}
	}
	if fatal == nil {
		t.Fatalf("want a Fatal, got %v", rsp.GetResults())
	}
	if !strings.Contains(fatal.GetMessage(), "spec.gateway.enabled") {
		t.Errorf("the Fatal must name the field: %s", fatal.GetMessage())
	}
	if len(rsp.GetDesired().GetResources()) > 0 || rsp.GetDesired().GetComposite() != nil {
		t.Errorf("a Fatal carries no desired state, got %v", rsp.GetDesired())
	}
	if diff := cmp.Diff(want, rsp.GetConditions(), protocmp.Transform()); diff != "" {
		t.Errorf("the last known custom conditions are sent again (and only those): -want, +got:\n%s", diff)
	}
}

func runFunction(t *testing.T, c *nlCluster) *fnv1.RunFunctionResponse {
	t.Helper()
	f := fn.New(logging.NewNopLogger())
	xr, err := structpb.NewStruct(c.xr(t).Resource.Object)
	if err != nil {
		t.Fatal(err)
	}
	in, err := structpb.NewStruct(map[string]any{"apiVersion": "kalypso.fn.crossplane.io/v1beta1", "kind": "Input", "spec": map[string]any{
		"gateway": map[string]any{"parentRefs": []any{map[string]any{"name": "kalypso-gateway", "namespace": "gateway-system"}}, "hostname": "models.example.com"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	req := &fnv1.RunFunctionRequest{
		Meta:     &fnv1.RequestMeta{Tag: "nothing-lost"},
		Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: xr}, Resources: map[string]*fnv1.Resource{}},
		Desired:  &fnv1.State{},
		Input:    in,
	}
	for n, o := range c.observed {
		s, err := structpb.NewStruct(o)
		if err != nil {
			t.Fatal(err)
		}
		req.Observed.Resources[string(n)] = &fnv1.Resource{Resource: s}
	}
	rsp, err := f.RunFunction(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return rsp
}
