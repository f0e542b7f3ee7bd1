package composetest

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Composer is what a kind's composer offers a reconcile.
type Composer interface {
	Requirements(compose.Platform) map[string]*fnv1.ResourceSelector
	Compose(compose.Platform, map[string][]resource.Required) compose.Result
}

// Cluster is what exists around a composite over several reconciles, for
// the nothing-lost tests (ARCHITECTURE.md §6): what leaves the desired
// state, Crossplane deletes.
type Cluster struct {
	// Head is the composite's apiVersion, kind and metadata lines; Spec is
	// its spec's lines, indented.
	Head, Spec string
	// Status is the composite's status as Crossplane wrote it.
	Status map[string]any
	// Observed are the composed objects as the API server returns them, by
	// pipeline name.
	Observed map[string]map[string]any
	// Others are the other objects that exist (YAML), by a name of the
	// test's.
	Others map[string]string

	// New is the kind's composer.
	New      func(*resource.Composite, map[resource.Name]resource.ObservedComposed) (Composer, error)
	Platform compose.Platform
	// Applied is what applying a desired object leaves in the cluster,
	// given what was observed before (nil: nothing); both are copies. Nil:
	// the desired object as it is.
	Applied func(desired, previous map[string]any) map[string]any
}

// XR is the observed composite.
func (c *Cluster) XR(t *testing.T) *resource.Composite {
	t.Helper()
	xr := Composite(t, c.Head+"spec:\n"+c.Spec)
	if c.Status != nil {
		xr.Resource.Object["status"] = runtime.DeepCopyJSON(c.Status)
	}
	return xr
}

// Pool is everything that exists: the others by name, then the composed
// objects by pipeline name.
func (c *Cluster) Pool(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, k := range slices.Sorted(maps.Keys(c.Others)) {
		out = append(out, Object(t, c.Others[k]))
	}
	for _, n := range slices.Sorted(maps.Keys(c.Observed)) {
		out = append(out, c.Observed[n])
	}
	return out
}

// Reconcile runs the composer once, with every requirement answered from
// the pool; a Fatal fails the test.
func (c *Cluster) Reconcile(t *testing.T) compose.Result {
	t.Helper()
	observed := map[resource.Name]resource.ObservedComposed{}
	for n, o := range c.Observed {
		observed[resource.Name(n)] = resource.ObservedComposed{Resource: &composed.Unstructured{Unstructured: unstructured.Unstructured{Object: runtime.DeepCopyJSON(o)}}}
	}
	comp, err := c.New(c.XR(t), observed)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	pool := c.Pool(t)
	required := map[string][]resource.Required{}
	for name, sel := range comp.Requirements(c.Platform) {
		required[name] = []resource.Required{}
		for _, o := range Select(sel, pool) {
			required[name] = append(required[name], resource.Required{Resource: &unstructured.Unstructured{Object: runtime.DeepCopyJSON(o)}})
		}
	}
	for name, sel := range compose.SchemasOf(comp, c.Platform) {
		var served *structpb.Struct
		if schema, ok := ServedSchema(sel, pool); ok {
			if served, err = structpb.NewStruct(schema); err != nil {
				t.Fatal(err)
			}
		}
		required[name] = compose.Served(sel, served)
	}
	r := comp.Compose(c.Platform, required)
	if r.Fatal != nil {
		t.Fatalf("unexpected Fatal: %v", r.Fatal)
	}
	if err := DesiredRefKeysCollide(r.Desired); err != nil {
		t.Error(err)
	}
	return r
}

// Apply does what Crossplane does with a result: it applies every desired
// object (see Applied) with its pipeline name annotated, deletes the
// composed objects no longer desired, and writes the status.
func (c *Cluster) Apply(t *testing.T, r compose.Result) {
	t.Helper()
	observed := map[string]map[string]any{}
	for n, d := range r.Desired {
		var prev map[string]any
		if p, ok := c.Observed[string(n)]; ok {
			prev = runtime.DeepCopyJSON(p)
		}
		o := runtime.DeepCopyJSON(d.Resource.Object)
		if c.Applied != nil {
			o = c.Applied(o, prev)
		}
		u := &unstructured.Unstructured{Object: o}
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann["crossplane.io/composition-resource-name"] = string(n)
		u.SetAnnotations(ann)
		observed[string(n)] = o
	}
	c.Observed = observed
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r.Status)
	if err != nil {
		t.Fatal(err)
	}
	c.Status = st
}

// Settle reconciles and applies three times and returns the last result.
func (c *Cluster) Settle(t *testing.T) compose.Result {
	t.Helper()
	var r compose.Result
	for range 3 {
		r = c.Reconcile(t)
		c.Apply(t, r)
	}
	return r
}

// RunFunction calls f as Crossplane does (Converge) on the cluster's
// composite and composed objects, with the function input in.
func (c *Cluster) RunFunction(t *testing.T, f Runner, in *structpb.Struct) *fnv1.RunFunctionResponse {
	t.Helper()
	_, rsp, err := Converge(f, c.XR(t).Resource.Object, in, c.Observed, c.Pool(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rsp
}

// Bodies are the desired objects, as JSON, by pipeline name.
func Bodies(t *testing.T, r compose.Result) map[resource.Name]string {
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

// AssertOnlyLeft checks that exactly want left the desired state and every
// other object is desired unchanged.
func AssertOnlyLeft(t *testing.T, before, after map[resource.Name]string, want ...resource.Name) {
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

// LastConditions are a result's conditions as Crossplane persists them in
// the composite's status, followed by extra ones of its own (Ready,
// Synced…), and as the function must send them again.
func LastConditions(r compose.Result, extra ...map[string]any) (persisted []any, sent []*fnv1.Condition) {
	for _, cd := range r.Conditions {
		st, pst := "False", fnv1.Status_STATUS_CONDITION_FALSE
		if cd.Status {
			st, pst = "True", fnv1.Status_STATUS_CONDITION_TRUE
		}
		persisted = append(persisted, map[string]any{"type": cd.Type, "status": st, "reason": cd.Reason, "message": cd.Message, "lastTransitionTime": "2026-01-01T00:00:00Z"})
		sent = append(sent, &fnv1.Condition{Type: cd.Type, Status: pst, Reason: cd.Reason, Message: ptr.To(cd.Message), Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()})
	}
	for _, e := range extra {
		persisted = append(persisted, e)
	}
	return persisted, sent
}

// AssertFatalKeepsEverything checks the response to a spec that turned
// invalid: a Fatal naming field, no desired state (so Crossplane keeps the
// composed objects and the last status), and the last known conditions
// want sent again, and only those.
func AssertFatalKeepsEverything(t *testing.T, rsp *fnv1.RunFunctionResponse, field string, want []*fnv1.Condition) {
	t.Helper()
	var fatal *fnv1.Result
	for _, res := range rsp.GetResults() {
		if res.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			fatal = res
		}
	}
	if fatal == nil {
		t.Fatalf("want a Fatal, got %v", rsp.GetResults())
	}
	if !strings.Contains(fatal.GetMessage(), field) {
		t.Errorf("the Fatal must name the field: %s", fatal.GetMessage())
	}
	if len(rsp.GetDesired().GetResources()) > 0 || rsp.GetDesired().GetComposite() != nil {
		t.Errorf("a Fatal carries no desired state, got %v", rsp.GetDesired())
	}
	if diff := cmp.Diff(want, rsp.GetConditions(), protocmp.Transform()); diff != "" {
		t.Errorf("the last known custom conditions are sent again (and only those): -want, +got:\n%s", diff)
	}
}
