package tritonserver_test

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
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/tritonserver"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Nothing a user did not delete gets deleted (ARCHITECTURE.md §6): these
// tests follow a server through several reconciles, applying what it
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

// The cluster around the server yolo in vision-prod.
var nlCluster0 = map[string]string{
	"application": `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod},
  spec: {projectRef: vision, storage: {provider: s3, secretName: models-s3, region: eu-west-1}},
  status: {environment: prod, conditions: [{type: Ready, status: "True", reason: Available}]}}`,
	"api-key":        `{apiVersion: v1, kind: Secret, metadata: {name: kalypso-triton-api-key, namespace: vision-prod}, data: {api-key: eA==}}`,
	"servicemonitor": `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: servicemonitors.monitoring.coreos.com}}`,
}

const notReadyApplication = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod},
  spec: {projectRef: vision, storage: {provider: s3, secretName: models-s3}}, status: {conditions: [{type: Ready, status: "False", reason: Creating}]}}`

type nlCluster struct {
	spec     string
	status   map[string]any
	observed map[resource.Name]map[string]any
	others   map[string]string
}

func newCluster(spec string) *nlCluster {
	return &nlCluster{spec: spec, others: maps.Clone(nlCluster0)}
}

func (c *nlCluster) xr(t *testing.T) *resource.Composite {
	t.Helper()
	o := nlObject(t, "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoTritonServer\nmetadata: {name: yolo, namespace: vision-prod, generation: 1}\nspec:\n"+c.spec)
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
	return out
}

func (c *nlCluster) reconcile(t *testing.T) compose.Result {
	t.Helper()
	observed := map[resource.Name]resource.ObservedComposed{}
	for n, o := range c.observed {
		observed[n] = resource.ObservedComposed{Resource: &composed.Unstructured{Unstructured: unstructured.Unstructured{Object: runtime.DeepCopyJSON(o)}}}
	}
	comp, err := tritonserver.New(c.xr(t), observed)
	if err != nil {
		t.Fatalf("tritonserver.New: %v", err)
	}
	p, err := compose.ResolvePlatform(&v1beta1.Input{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := comp.Compose(p, nlResolve(comp.Requirements(p), c.pool(t)))
	if r.Fatal != nil {
		t.Fatalf("unexpected Fatal: %v", r.Fatal)
	}
	return r
}

// apply does what Crossplane and the cluster do with a result: server-side
// apply of every desired object over what exists (fields others own stay),
// a Deployment that rolls out and a Service that gets its IP, deletion of
// what is no longer desired, and the status written.
func (c *nlCluster) apply(t *testing.T, r compose.Result) {
	t.Helper()
	observed := map[resource.Name]map[string]any{}
	for n, d := range r.Desired {
		o := map[string]any{}
		if prev, ok := c.observed[n]; ok {
			o = runtime.DeepCopyJSON(prev)
		}
		nlMerge(o, runtime.DeepCopyJSON(d.Resource.Object))
		u := &unstructured.Unstructured{Object: o}
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann["crossplane.io/composition-resource-name"] = string(n)
		u.SetAnnotations(ann)
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
		observed[n] = o
	}
	c.observed = observed
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r.Status)
	if err != nil {
		t.Fatal(err)
	}
	c.status = st
}

func nlMerge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				nlMerge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
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
func assertOnlyLeft(t *testing.T, before, after map[resource.Name]string, want ...resource.Name) {
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

func names(r compose.Result) []resource.Name { return slices.Sorted(maps.Keys(r.Desired)) }

const monitored = "  applicationRef: detector\n  storageUri: s3://vision-models/yolo\n  gpus: 1\n" +
	"  observability: {enabled: true, tracing: {enabled: true}, metrics: {enableServiceMonitor: true}}\n"

// TestServiceMonitorOffRemovesOnlyIt: turning the ServiceMonitor off, or
// losing its CRD, removes the ServiceMonitor and nothing else: the server
// keeps serving metrics on its Service.
func TestServiceMonitorOffRemovesOnlyIt(t *testing.T) {
	for name, change := range map[string]func(c *nlCluster){
		"Disabled": func(c *nlCluster) {
			c.spec = strings.Replace(c.spec, "enableServiceMonitor: true", "enableServiceMonitor: false", 1)
		},
		"CRDGone": func(c *nlCluster) { delete(c.others, "servicemonitor") },
	} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(monitored)
			before := c.settle(t)
			if diff := cmp.Diff([]resource.Name{"deployment", "service", "servicemonitor", "usage"}, names(before)); diff != "" {
				t.Fatalf("composed: -want, +got:\n%s", diff)
			}
			change(c)
			assertOnlyLeft(t, bodies(t, before), bodies(t, c.reconcile(t)), "servicemonitor")
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
			spec := "  applicationRef: detector\n  storageUri: s3://vision-models/yolo\n  replicas: " + tc.replicas + "\n"
			c := newCluster(spec + "  autoscaling: " + tc.autoscaling + "\n")
			before := c.settle(t)
			if diff := cmp.Diff([]resource.Name{"deployment", "horizontalpodautoscaler", "poddisruptionbudget", "service", "usage"}, names(before)); diff != "" {
				t.Fatalf("composed: -want, +got:\n%s", diff)
			}
			c.spec = spec + "  autoscaling: " + strings.Replace(tc.autoscaling, "enabled: true", "enabled: false", 1) + "\n"
			assertOnlyLeft(t, bodies(t, before), bodies(t, c.reconcile(t)), tc.gone...)
		})
	}
}

// TestDependencyTroubleKeepsTheServer: once the server runs, its
// application going missing or not Ready, or the API key Secret going
// missing, takes nothing away: Crossplane would delete a running server.
func TestDependencyTroubleKeepsTheServer(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(c *nlCluster)
		// kept: the Deployment is carried forward as observed, so only its
		// spec is compared.
		kept bool
	}{
		"ApplicationMissing":  {change: func(c *nlCluster) { delete(c.others, "application") }},
		"ApplicationNotReady": {change: func(c *nlCluster) { c.others["application"] = notReadyApplication }},
		"APIKeySecretMissing": {change: func(c *nlCluster) { delete(c.others, "api-key") }, kept: true},
	} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(monitored)
			before := c.settle(t)
			tc.change(c)
			after := c.reconcile(t)
			if !tc.kept {
				assertOnlyLeft(t, bodies(t, before), bodies(t, after))
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
	c := newCluster(monitored)
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
	conds = append(conds, map[string]any{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"})
	c.status["conditions"] = conds
	c.spec = monitored + "  tritonConfig: {parameters: [{name: grpc-port, value: '9001'}]}\n"

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
	if !strings.Contains(fatal.GetMessage(), "spec.tritonConfig.parameters[0]") {
		t.Errorf("the Fatal must name the field: %s", fatal.GetMessage())
	}
	if len(rsp.GetDesired().GetResources()) > 0 || rsp.GetDesired().GetComposite() != nil {
		t.Errorf("a Fatal carries no desired state, got %v", rsp.GetDesired())
	}
	if diff := cmp.Diff(want, rsp.GetConditions(), protocmp.Transform()); diff != "" {
		t.Errorf("the last known custom conditions are sent again (and only those): -want, +got:\n%s", diff)
	}
}

// runFunction calls RunFunction with every requirement answered, as on the
// second call of a reconcile.
func runFunction(t *testing.T, c *nlCluster) *fnv1.RunFunctionResponse {
	t.Helper()
	f := fn.New(logging.NewNopLogger())
	xr, err := structpb.NewStruct(c.xr(t).Resource.Object)
	if err != nil {
		t.Fatal(err)
	}
	in, err := structpb.NewStruct(map[string]any{"apiVersion": "kalypso.fn.crossplane.io/v1beta1", "kind": "Input"})
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
	if rsp.GetRequirements() != nil && len(rsp.GetResults()) == 0 {
		req.RequiredResources = map[string]*fnv1.Resources{}
		for name, sel := range rsp.GetRequirements().GetResources() {
			rs := &fnv1.Resources{}
			for _, o := range c.pool(t) {
				if nlMatches(sel, o) {
					s, err := structpb.NewStruct(o)
					if err != nil {
						t.Fatal(err)
					}
					rs.Items = append(rs.Items, &fnv1.Resource{Resource: s})
				}
			}
			req.RequiredResources[name] = rs
		}
		req.Desired = &fnv1.State{}
		if rsp, err = f.RunFunction(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	return rsp
}
