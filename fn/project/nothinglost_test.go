package project_test

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
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/project"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Nothing a user did not delete gets deleted (ARCHITECTURE.md §6): these
// tests follow a project through several reconciles, applying what it
// desires the way Crossplane does, and check what leaves the desired state
// (which Crossplane then deletes) when the spec changes.

const projectUID = "uid-vision"

// nlObject decodes YAML as the SDK decodes a request: integers stay int64.
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

// nlCluster is what exists: the composite, its composed objects as
// Crossplane observes them, and the other objects the function looks up.
type nlCluster struct {
	spec     string
	status   map[string]any
	observed map[resource.Name]map[string]any
	others   []map[string]any
}

func (c *nlCluster) xr(t *testing.T) *resource.Composite {
	t.Helper()
	o := nlObject(t, "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoProject\nmetadata: {name: vision, uid: "+projectUID+", generation: 1}\nspec:\n"+c.spec)
	if c.status != nil {
		o["status"] = runtime.DeepCopyJSON(c.status)
	}
	return &resource.Composite{Resource: &composite.Unstructured{Unstructured: unstructured.Unstructured{Object: o}}}
}

func (c *nlCluster) observedComposed() map[resource.Name]resource.ObservedComposed {
	out := map[resource.Name]resource.ObservedComposed{}
	for n, o := range c.observed {
		out[n] = resource.ObservedComposed{Resource: &composed.Unstructured{Unstructured: unstructured.Unstructured{Object: runtime.DeepCopyJSON(o)}}}
	}
	return out
}

// pool is everything that exists: the composed objects and the others.
func (c *nlCluster) pool() []map[string]any {
	out := slices.Clone(c.others)
	for _, n := range slices.Sorted(maps.Keys(c.observed)) {
		out = append(out, c.observed[n])
	}
	return out
}

// reconcile runs the composer once, with every requirement answered from
// the cluster.
func (c *nlCluster) reconcile(t *testing.T) compose.Result {
	t.Helper()
	comp, err := project.New(c.xr(t), c.observedComposed())
	if err != nil {
		t.Fatalf("project.New: %v", err)
	}
	p, err := compose.ResolvePlatform(&v1beta1.Input{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	required := nlResolve(comp.Requirements(p), c.pool())
	return comp.Compose(p, required)
}

// apply does what Crossplane does with a result: it applies every desired
// object (a created Namespace gets the project as controller and turns
// Active), deletes every composed object no longer desired, and writes the
// status.
func (c *nlCluster) apply(t *testing.T, r compose.Result) {
	t.Helper()
	if r.Fatal != nil {
		t.Fatalf("unexpected Fatal: %v", r.Fatal)
	}
	observed := map[resource.Name]map[string]any{}
	for n, d := range r.Desired {
		o := runtime.DeepCopyJSON(d.Resource.Object)
		u := &unstructured.Unstructured{Object: o}
		u.SetAnnotations(merged(u.GetAnnotations(), map[string]string{"crossplane.io/composition-resource-name": string(n)}))
		u.SetLabels(merged(u.GetLabels(), map[string]string{"crossplane.io/composite": "vision"}))
		o["metadata"].(map[string]any)["ownerReferences"] = []any{map[string]any{
			"apiVersion": "serving.kalypso.io/v1alpha1", "kind": "KalypsoProject", "name": "vision", "uid": projectUID, "controller": true,
		}}
		if u.GetKind() == "Namespace" {
			o["status"] = map[string]any{"phase": "Active"}
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

func merged(a, b map[string]string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// settle reconciles and applies until the desired set stops growing (the
// project composes a namespace first and its contents once it exists) and
// returns the last result.
func (c *nlCluster) settle(t *testing.T, check func(compose.Result)) compose.Result {
	t.Helper()
	for range 5 {
		r := c.reconcile(t)
		if check != nil {
			check(r)
		}
		before := len(c.observed)
		c.apply(t, r)
		if len(r.Desired) == before && before > 0 {
			return r
		}
	}
	t.Fatal("the project did not settle")
	return compose.Result{}
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

// bodies are the desired objects, as JSON, by pipeline name.
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

// ofEnvironment are the pipeline names of an environment's objects.
func ofEnvironment(r compose.Result, env string) []resource.Name {
	var out []resource.Name
	for n, d := range r.Desired {
		if d.Resource.GetLabels()[compose.LabelEnvironment] == env {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// left are the names desired before and not after: what Crossplane deletes.
func left(before, after map[resource.Name]string) []resource.Name {
	var out []resource.Name
	for n := range before {
		if _, ok := after[n]; !ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// assertOnlyLeft checks that exactly want left and every other object is
// desired unchanged.
func assertOnlyLeft(t *testing.T, before, after map[resource.Name]string, want []resource.Name) {
	t.Helper()
	slices.Sort(want)
	if diff := cmp.Diff(want, left(before, after)); diff != "" {
		t.Errorf("objects that left the desired state (Crossplane deletes them): -want, +got:\n%s", diff)
	}
	for n, b := range before {
		if a, ok := after[n]; ok && a != b {
			t.Errorf("%s changed although only other objects should go:\n- %s\n+ %s", n, b, a)
		}
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			t.Errorf("%s appeared", n)
		}
	}
}

func noNamespaceObject(t *testing.T, r compose.Result, ns string) {
	t.Helper()
	for n, d := range r.Desired {
		if d.Resource.GetKind() == "Namespace" && d.Resource.GetName() == ns {
			t.Errorf("the desired state holds Namespace %s as %s: Crossplane would own it, and delete it with the project", ns, n)
		}
	}
}

func statusOf(t *testing.T, r compose.Result) *v1alpha1.KalypsoProjectStatus {
	t.Helper()
	st, ok := r.Status.(*v1alpha1.KalypsoProjectStatus)
	if !ok {
		t.Fatalf("status is %T", r.Status)
	}
	return st
}

const existingNamespace = `{apiVersion: v1, kind: Namespace, metadata: {name: ml-prod, labels: {team: ml}}, status: {phase: Active}}`

// TestRemovingAnEnvironmentDeletesOnlyWhatTheProjectCreated: dev and stage
// live in namespaces the project creates, prod adopts the existing ml-prod.
// Removing stage drops exactly stage's objects, its namespace with them;
// removing prod drops exactly what the project composed inside ml-prod. The
// adopted namespace's Namespace object is never desired, before or after,
// so Crossplane never owns it and can never delete it.
func TestRemovingAnEnvironmentDeletesOnlyWhatTheProjectCreated(t *testing.T) {
	const access = "  access: {admins: [{kind: Group, name: vision-leads}], viewers: [{kind: ServiceAccount, name: ci}]}\n"
	dev := "    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '8', nvidia.com/gpu: '1'}}}\n"
	stage := "    stage: {namespace: vision-stage, networkIsolation: {allowFromEnvironments: [dev]}}\n"
	prod := "    prod: {namespace: ml-prod, adoptExistingNamespace: true, resourceQuota: {requests: {nvidia.com/gpu: '4'}}}\n"
	c := &nlCluster{spec: access + "  environments:\n" + dev + stage + prod, others: []map[string]any{nlObject(t, existingNamespace)}}
	neverAdoptedNamespace := func(r compose.Result) {
		t.Helper()
		noNamespaceObject(t, r, "ml-prod")
		if slices.Contains(statusOf(t, r).CreatedNamespaces, "ml-prod") {
			t.Errorf("status.createdNamespaces lists the adopted ml-prod")
		}
	}

	all := c.settle(t, neverAdoptedNamespace)
	if len(ofEnvironment(all, "prod")) == 0 || !slices.Contains(ofEnvironment(all, "stage"), "namespace-stage") {
		t.Fatalf("want objects in every environment and stage's namespace, got %v", slices.Sorted(maps.Keys(all.Desired)))
	}
	if diff := cmp.Diff([]string{"vision-dev", "vision-stage"}, statusOf(t, all).CreatedNamespaces); diff != "" {
		t.Errorf("createdNamespaces: -want, +got:\n%s", diff)
	}

	// Remove stage: its objects go, its namespace (created by the project)
	// with them; nothing else changes.
	c.spec = access + "  environments:\n" + dev + prod
	withoutStage := c.reconcile(t)
	neverAdoptedNamespace(withoutStage)
	assertOnlyLeft(t, bodies(t, all), bodies(t, withoutStage), ofEnvironment(all, "stage"))
	c.apply(t, withoutStage)

	// Remove the adopted prod: what the project composed inside ml-prod
	// goes, and the namespace was never the project's to delete.
	c.spec = access + "  environments:\n" + dev
	withoutProd := c.reconcile(t)
	neverAdoptedNamespace(withoutProd)
	assertOnlyLeft(t, bodies(t, withoutStage), bodies(t, withoutProd), ofEnvironment(withoutStage, "prod"))
	for _, n := range ofEnvironment(withoutStage, "prod") {
		if ns := withoutStage.Desired[n].Resource.GetNamespace(); ns != "ml-prod" {
			t.Errorf("prod's %s was in namespace %q, not in the adopted ml-prod", n, ns)
		}
	}
}

// TestRemovingAnEnvironmentInUseKeepsIt: while an application lives in a
// removed environment's namespace, nothing of the environment goes.
func TestRemovingAnEnvironmentInUseKeepsIt(t *testing.T) {
	dev := "    dev: {namespace: vision-dev}\n"
	stage := "    stage: {namespace: vision-stage, resourceQuota: {limits: {cpu: '4'}}}\n"
	c := &nlCluster{spec: "  environments:\n" + dev + stage}
	all := c.settle(t, nil)

	c.others = append(c.others, nlObject(t, `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-stage}, spec: {projectRef: vision}}`))
	c.spec = "  environments:\n" + dev
	r := c.reconcile(t)
	before, after := bodies(t, all), bodies(t, r)
	for _, n := range ofEnvironment(all, "stage") {
		if _, ok := after[n]; !ok {
			t.Errorf("%s of the removed but used environment left the desired state", n)
		}
	}
	for n := range before {
		if _, ok := after[n]; !ok {
			t.Errorf("%s left the desired state", n)
		}
	}
	if conds := conditions(r); conds[project.ConditionEnvironmentRemoval] != "False/EnvironmentInUse" {
		t.Errorf("EnvironmentRemoval: got %s", conds[project.ConditionEnvironmentRemoval])
	}
}

func conditions(r compose.Result) map[string]string {
	out := map[string]string{}
	for _, c := range r.Conditions {
		s := "False"
		if c.Status {
			s = "True"
		}
		out[c.Type] = s + "/" + c.Reason
	}
	return out
}

// TestForeignNamespaceIsNeverAdoptedWithoutOptIn: a namespace that exists
// and was not created by this project gets nothing composed in it or for
// it, reconcile after reconcile, whatever its labels say. Only the
// project's own controller reference makes a namespace the project's.
func TestForeignNamespaceIsNeverAdoptedWithoutOptIn(t *testing.T) {
	cases := map[string]struct {
		reason   string
		existing string
		adopt    bool
		owned    bool // the project composes the Namespace
	}{
		"Unowned": {
			reason:   "A namespace someone created by hand.",
			existing: `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev}, status: {phase: Active}}`,
		},
		"AnotherProject": {
			reason: "A namespace another project created and controls.",
			existing: `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev, labels: {kalypso-serving.io/project: ml, app.kubernetes.io/managed-by: kalypso-serving},
			  ownerReferences: [{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, name: ml, uid: uid-ml, controller: true}]}, status: {phase: Active}}`,
		},
		"LabelledAsThisProject": {
			reason:   "Labels are not ownership: anyone may write them.",
			existing: `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev, labels: {kalypso-serving.io/project: vision, kalypso-serving.io/environment: dev, app.kubernetes.io/managed-by: kalypso-serving}}, status: {phase: Active}}`,
		},
		"ControlledByThisProject": {
			reason: "A namespace this project's UID controls is its own, even if its composed state was lost.",
			existing: `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev,
			  ownerReferences: [{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, name: vision, uid: ` + projectUID + `, controller: true}]}, status: {phase: Active}}`,
			owned: true,
		},
		"AdoptedOnOptIn": {
			reason:   "With the opt-in the objects inside are composed, never the Namespace.",
			existing: `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev}, status: {phase: Active}}`,
			adopt:    true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := "    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '4'}}}\n"
			if tc.adopt {
				env = "    dev: {namespace: vision-dev, adoptExistingNamespace: true, resourceQuota: {limits: {cpu: '4'}}}\n"
			}
			c := &nlCluster{
				spec:   "  access: {admins: [{kind: Group, name: vision-leads}]}\n  environments:\n" + env + "    prod: {namespace: vision-prod}\n",
				others: []map[string]any{nlObject(t, tc.existing)},
			}
			for round := range 3 {
				r := c.reconcile(t)
				c.apply(t, r)
				var inside []resource.Name
				for n, d := range r.Desired {
					if d.Resource.GetNamespace() == "vision-dev" {
						inside = append(inside, n)
					}
				}
				_, nsDesired := r.Desired["namespace-dev"]
				owned := conditions(r)[project.ConditionNamespacesOwned] == "True/NamespacesOwned"
				created := slices.Contains(statusOf(t, r).CreatedNamespaces, "vision-dev")
				switch {
				case tc.owned:
					if !nsDesired || !owned || !created {
						t.Errorf("%s\nround %d: want the Namespace composed and owned, got desired=%v owned=%v created=%v", tc.reason, round, nsDesired, owned, created)
					}
				case tc.adopt:
					if nsDesired || !owned || created {
						t.Errorf("%s\nround %d: want the Namespace never desired, got desired=%v owned=%v created=%v", tc.reason, round, nsDesired, owned, created)
					}
					if round > 0 && len(inside) == 0 {
						t.Errorf("%s\nround %d: nothing composed inside the adopted namespace", tc.reason, round)
					}
				default:
					if nsDesired || len(inside) > 0 || created {
						t.Errorf("%s\nround %d: want nothing composed for the foreign namespace, got the Namespace=%v, inside it %v, createdNamespaces=%v", tc.reason, round, nsDesired, inside, statusOf(t, r).CreatedNamespaces)
					}
					if got := conditions(r)[project.ConditionNamespacesOwned]; got != "False/NamespaceNotOwned" {
						t.Errorf("%s\nround %d: NamespacesOwned: want False/NamespaceNotOwned, got %s", tc.reason, round, got)
					}
					if _, ok := r.Desired["namespace-prod"]; !ok {
						t.Errorf("%s\nround %d: the other environment must still be composed", tc.reason, round)
					}
				}
			}
		})
	}
}

// TestAdoptingLaterKeepsACreatedNamespace: setting adoptExistingNamespace
// on an environment whose namespace the project created keeps composing
// the Namespace: dropping it would delete it.
func TestAdoptingLaterKeepsACreatedNamespace(t *testing.T) {
	c := &nlCluster{spec: "  environments:\n    dev: {namespace: vision-dev}\n"}
	before := c.settle(t, nil)
	c.spec = "  environments:\n    dev: {namespace: vision-dev, adoptExistingNamespace: true}\n"
	after := c.reconcile(t)
	assertOnlyLeft(t, bodies(t, before), bodies(t, after), nil)
}

// TestDisablingAFeatureRemovesOnlyItsObjects: network isolation off in one
// environment removes its two NetworkPolicies only; no access lists remove
// the RoleBindings only.
func TestDisablingAFeatureRemovesOnlyItsObjects(t *testing.T) {
	const access = "  access: {admins: [{kind: Group, name: a}], editors: [{kind: User, name: e}], viewers: [{kind: Group, name: v}]}\n"
	envs := func(devIsolation string) string {
		return "  environments:\n    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '4'}}" + devIsolation + "}\n" +
			"    prod: {namespace: vision-prod, networkIsolation: {allowFromEnvironments: [dev]}}\n"
	}
	c := &nlCluster{spec: access + envs("")}
	all := c.settle(t, nil)

	c.spec = access + envs(", networkIsolation: {enabled: false}")
	assertOnlyLeft(t, bodies(t, all), bodies(t, c.reconcile(t)), []resource.Name{"networkpolicy-allow-dev", "networkpolicy-deny-dev"})

	c.spec = envs("")
	assertOnlyLeft(t, bodies(t, all), bodies(t, c.reconcile(t)), []resource.Name{
		"rolebinding-admin-dev", "rolebinding-edit-dev", "rolebinding-view-dev",
		"rolebinding-admin-prod", "rolebinding-edit-prod", "rolebinding-view-prod",
	})
}

// TestInvalidSpecIsFatalAndKeepsEverything: a spec that turns invalid (a
// quota key no ResourceQuota knows) gets a Fatal naming the field and no
// desired state at all, so Crossplane keeps every composed object and the
// last status; the project's last known conditions are sent again, so
// Crossplane does not turn them to Unknown.
func TestInvalidSpecIsFatalAndKeepsEverything(t *testing.T) {
	c := &nlCluster{spec: "  environments:\n    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '4'}}}\n"}
	r := c.settle(t, nil)
	c.spec = "  environments:\n    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '4', gpu: '1'}}}\n"

	// The status Crossplane persisted, with the conditions of the last
	// good reconcile.
	var conds []any
	var want []*fnv1.Condition
	for _, cd := range r.Conditions {
		st, pst := "False", fnv1.Status_STATUS_CONDITION_FALSE
		if cd.Status {
			st, pst = "True", fnv1.Status_STATUS_CONDITION_TRUE
		}
		conds = append(conds, map[string]any{"type": cd.Type, "status": st, "reason": cd.Reason, "message": cd.Message, "lastTransitionTime": "2026-01-01T00:00:00Z"})
		want = append(want, &fnv1.Condition{Type: cd.Type, Status: pst, Reason: cd.Reason, Message: &cd.Message, Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()})
	}
	conds = append(conds, map[string]any{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"})
	c.status["conditions"] = conds

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
	if !strings.Contains(fatal.GetMessage(), "spec.environments.dev.resourceQuota.limits[gpu]") {
		t.Errorf("the Fatal must name the field: %s", fatal.GetMessage())
	}
	if len(rsp.GetDesired().GetResources()) > 0 || rsp.GetDesired().GetComposite() != nil {
		t.Errorf("a Fatal carries no desired state, got %v", rsp.GetDesired())
	}
	if diff := cmp.Diff(want, rsp.GetConditions(), protocmp.Transform()); diff != "" {
		t.Errorf("the last known custom conditions are sent again (and only those): -want, +got:\n%s", diff)
	}
}

// runFunction calls RunFunction with the cluster's composite, composed
// objects and every requirement answered.
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
	// Every requirement answered, as on the second call of a reconcile.
	rsp, err := f.RunFunction(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.GetRequirements() != nil {
		req.RequiredResources = map[string]*fnv1.Resources{}
		for name, sel := range rsp.GetRequirements().GetResources() {
			rs := &fnv1.Resources{}
			for _, o := range c.pool() {
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
