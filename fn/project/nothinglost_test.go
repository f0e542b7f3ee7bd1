package project_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/fn/project"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Nothing a user did not delete gets deleted (ARCHITECTURE.md §6): these
// tests follow a project through several reconciles, applying what it
// desires the way Crossplane does, and check what leaves the desired state
// (which Crossplane then deletes) when the spec changes.

const projectUID = "uid-vision"

func newCluster(t *testing.T, spec string, others map[string]string) *composetest.Cluster {
	t.Helper()
	return &composetest.Cluster{
		Head:   "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoProject\nmetadata: {name: vision, uid: " + projectUID + ", generation: 1}\n",
		Spec:   spec,
		Others: others,
		New: func(xr *resource.Composite, observed map[resource.Name]resource.ObservedComposed) (composetest.Composer, error) {
			return project.New(xr, observed)
		},
		Platform: composetest.Platform(t, &v1beta1.Input{}),
		Applied:  controlled,
	}
}

// controlled is an applied object as Crossplane and the controllers leave
// it: labelled and controlled by the project; a created Namespace turns
// Active, the ClusterUsage Ready (its controller labels the project in use
// first), and a ResourceQuota is synced by the quota controller, which
// counts no object.
func controlled(o, _ map[string]any) map[string]any {
	u := &unstructured.Unstructured{Object: o}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["crossplane.io/composite"] = "vision"
	u.SetLabels(labels)
	o["metadata"].(map[string]any)["ownerReferences"] = []any{map[string]any{
		"apiVersion": "serving.kalypso.io/v1alpha1", "kind": "KalypsoProject", "name": "vision", "uid": projectUID, "controller": true,
	}}
	switch u.GetKind() {
	case "Namespace":
		o["status"] = map[string]any{"phase": "Active"}
	case "ClusterUsage":
		o["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "Available"}}}
	case "ResourceQuota":
		hard, _, _ := unstructured.NestedMap(o, "spec", "hard")
		used := map[string]any{}
		for k := range hard {
			used[k] = "0"
		}
		o["status"] = map[string]any{"hard": hard, "used": used}
	}
	return o
}

// settle reconciles and applies until the desired set stops growing (the
// project composes a namespace first and its contents once it exists) and
// returns the last result.
func settle(t *testing.T, c *composetest.Cluster, check func(compose.Result)) compose.Result {
	t.Helper()
	for range 5 {
		r := c.Reconcile(t)
		if check != nil {
			check(r)
		}
		before := len(c.Observed)
		c.Apply(t, r)
		if len(r.Desired) == before && before > 0 {
			return r
		}
	}
	t.Fatal("the project did not settle")
	return compose.Result{}
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
	c := newCluster(t, access+"  environments:\n"+dev+stage+prod, map[string]string{"ml-prod": existingNamespace})
	neverAdoptedNamespace := func(r compose.Result) {
		t.Helper()
		noNamespaceObject(t, r, "ml-prod")
		if slices.Contains(statusOf(t, r).CreatedNamespaces, "ml-prod") {
			t.Errorf("status.createdNamespaces lists the adopted ml-prod")
		}
	}

	all := settle(t, c, neverAdoptedNamespace)
	if len(ofEnvironment(all, "prod")) == 0 || !slices.Contains(ofEnvironment(all, "stage"), "namespace-stage") {
		t.Fatalf("want objects in every environment and stage's namespace, got %v", slices.Sorted(maps.Keys(all.Desired)))
	}
	if diff := cmp.Diff([]string{"vision-dev", "vision-stage"}, statusOf(t, all).CreatedNamespaces); diff != "" {
		t.Errorf("createdNamespaces: -want, +got:\n%s", diff)
	}

	// Remove stage: first its quota closes to new applications (an
	// application created after the project's last look would otherwise
	// go with the namespace) and everything of stage stays; once the quota
	// controller enforces that, its objects go, its namespace (created by
	// the project) with them; nothing else changes.
	c.Spec = access + "  environments:\n" + dev + prod
	closing := c.Reconcile(t)
	for _, n := range ofEnvironment(all, "stage") {
		if _, ok := closing.Desired[n]; !ok {
			t.Errorf("%s of removed stage left the desired state before its quota was closed", n)
		}
	}
	if q, ok := closing.Desired["quota.stage"]; !ok || !strings.Contains(composetest.Bodies(t, closing)["quota.stage"], `"count/kalypsoapplications.serving.kalypso.io":"0"`) {
		t.Errorf("removed stage's quota is not closed to new applications: %v", q)
	}
	if got := conditions(closing)[project.ConditionEnvironmentRemoval]; got != "False/EnvironmentClosing" {
		t.Errorf("EnvironmentRemoval: want False/EnvironmentClosing, got %s", got)
	}
	c.Apply(t, closing)
	withoutStage := c.Reconcile(t)
	neverAdoptedNamespace(withoutStage)
	composetest.AssertOnlyLeft(t, composetest.Bodies(t, all), composetest.Bodies(t, withoutStage), ofEnvironment(all, "stage")...)
	if _, ok := withoutStage.Desired["quota.stage"]; ok {
		t.Error("removed stage's closed quota stays")
	}
	c.Apply(t, withoutStage)

	// Remove the adopted prod: what the project composed inside ml-prod
	// goes, and the namespace was never the project's to delete.
	c.Spec = access + "  environments:\n" + dev
	withoutProd := c.Reconcile(t)
	neverAdoptedNamespace(withoutProd)
	composetest.AssertOnlyLeft(t, composetest.Bodies(t, withoutStage), composetest.Bodies(t, withoutProd), ofEnvironment(withoutStage, "prod")...)
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
	c := newCluster(t, "  environments:\n"+dev+stage, map[string]string{})
	all := settle(t, c, nil)

	c.Others["detector"] = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-stage}, spec: {projectRef: vision}}`
	c.Spec = "  environments:\n" + dev
	r := c.Reconcile(t)
	before, after := composetest.Bodies(t, all), composetest.Bodies(t, r)
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
			c := newCluster(t, "  access: {admins: [{kind: Group, name: vision-leads}]}\n  environments:\n"+env+"    prod: {namespace: vision-prod}\n",
				map[string]string{"vision-dev": tc.existing})
			for round := range 3 {
				r := c.Reconcile(t)
				c.Apply(t, r)
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
					// Round 0 composes the project's ClusterUsage first.
					if _, ok := r.Desired["namespace-prod"]; !ok && round > 0 {
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
	c := newCluster(t, "  environments:\n    dev: {namespace: vision-dev}\n", nil)
	before := settle(t, c, nil)
	c.Spec = "  environments:\n    dev: {namespace: vision-dev, adoptExistingNamespace: true}\n"
	after := c.Reconcile(t)
	composetest.AssertOnlyLeft(t, composetest.Bodies(t, before), composetest.Bodies(t, after))
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
	c := newCluster(t, access+envs(""), nil)
	all := settle(t, c, nil)

	c.Spec = access + envs(", networkIsolation: {enabled: false}")
	composetest.AssertOnlyLeft(t, composetest.Bodies(t, all), composetest.Bodies(t, c.Reconcile(t)), "networkpolicy-allow.dev", "networkpolicy-deny.dev")

	c.Spec = envs("")
	composetest.AssertOnlyLeft(t, composetest.Bodies(t, all), composetest.Bodies(t, c.Reconcile(t)),
		"rolebinding-admin.dev", "rolebinding-edit.dev", "rolebinding-view.dev",
		"rolebinding-admin.prod", "rolebinding-edit.prod", "rolebinding-view.prod",
	)
}

// TestInvalidSpecIsFatalAndKeepsEverything: a spec that turns invalid (a
// quota key no ResourceQuota knows) gets a Fatal naming the field and no
// desired state at all, so Crossplane keeps every composed object and the
// last status; the project's last known conditions are sent again, so
// Crossplane does not turn them to Unknown.
func TestInvalidSpecIsFatalAndKeepsEverything(t *testing.T) {
	c := newCluster(t, "  environments:\n    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '4'}}}\n", nil)
	r := settle(t, c, nil)
	c.Spec = "  environments:\n    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '4', gpu: '1'}}}\n"

	// The status Crossplane persisted, with the conditions of the last
	// good reconcile.
	conds, want := composetest.LastConditions(r, map[string]any{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-01-01T00:00:00Z"})
	c.Status["conditions"] = conds

	composetest.AssertFatalKeepsEverything(t, c.RunFunction(t, fn.New(logging.NewNopLogger()), composetest.Struct(t, `{apiVersion: kalypso.fn.crossplane.io/v1beta1, kind: Input}`)), "spec.environments.dev.resourceQuota.limits[gpu]", want)
}

// TestReleaseLifecycle follows a project's protection: the ClusterUsage
// comes before any namespace; a release closes every environment's quota
// to new applications, waits for the applications to go, and then drops
// only the ClusterUsage; withdrawing the release brings it back and reopens
// the quotas only once it is Ready. No namespace or content leaves the
// desired state at any step.
func TestReleaseLifecycle(t *testing.T) {
	const (
		countApps = "count/kalypsoapplications.serving.kalypso.io"
		envs      = "  access: {admins: [{kind: Group, name: vision-leads}]}\n  environments:\n    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '8'}}}\n    stage: {namespace: vision-stage}\n"
		detector  = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-dev}, spec: {projectRef: vision}}`
	)
	c := newCluster(t, envs, map[string]string{})
	released := func(r compose.Result) string { return conditions(r)[project.ConditionReleased] }
	appCount := func(r compose.Result, name resource.Name) (string, bool) {
		d, ok := r.Desired[name]
		if !ok {
			return "", false
		}
		hard, _, _ := unstructured.NestedStringMap(d.Resource.Object, "spec", "hard")
		v, ok := hard[countApps]
		return v, ok
	}

	first := c.Reconcile(t)
	if diff := cmp.Diff([]resource.Name{"usage"}, slices.Sorted(maps.Keys(first.Desired))); diff != "" {
		t.Fatalf("first reconcile: only the ClusterUsage, before any namespace: -want, +got:\n%s", diff)
	}
	c.Apply(t, first)
	protected := settle(t, c, nil)
	if got := released(protected); got != "False/"+project.ReasonProtected {
		t.Errorf("Released: want False/Protected, got %s", got)
	}

	// Release while an application lives in dev: every environment's quota
	// gets the count 0 (stage gets a quota for it), the ClusterUsage stays.
	c.Others["detector"] = detector
	c.Spec = "  release: true\n" + envs
	closing := c.Reconcile(t)
	assertLeft(t, protected, closing)
	for _, q := range []resource.Name{"quota.dev", "quota.stage"} {
		if v, ok := appCount(closing, q); !ok || v != "0" {
			t.Errorf("%s: want %s: 0, got %q (present %v)", q, countApps, v, ok)
		}
	}
	c.Apply(t, closing)
	held := c.Reconcile(t)
	if _, ok := held.Desired["usage"]; !ok || released(held) != "False/"+project.ReasonReleasePending {
		t.Errorf("with an application the ClusterUsage must stay: usage desired %v, Released %s", ok, released(held))
	}
	c.Apply(t, held)

	// The application goes: only the ClusterUsage leaves.
	delete(c.Others, "detector")
	done := c.Reconcile(t)
	assertLeft(t, held, done, "usage")
	if got := released(done); got != "True/"+project.ReasonReleased {
		t.Errorf("Released: want True/Released, got %s", got)
	}
	c.Apply(t, done)

	// Withdrawn: the ClusterUsage comes back; the quotas stay closed until
	// it is Ready, then reopen (stage's quota existed only for the count).
	c.Spec = envs
	back := c.Reconcile(t)
	assertLeft(t, done, back)
	if _, ok := back.Desired["usage"]; !ok {
		t.Fatal("the ClusterUsage must come back when the release is withdrawn")
	}
	if v, ok := appCount(back, "quota.stage"); !ok || v != "0" {
		t.Errorf("quota.stage must stay closed until the ClusterUsage is Ready, got %q (present %v)", v, ok)
	}
	c.Apply(t, back)
	reopened := c.Reconcile(t)
	assertLeft(t, back, reopened, "quota.stage")
	if _, ok := appCount(reopened, "quota.dev"); ok {
		t.Errorf("quota.dev keeps the application count after the ClusterUsage is Ready again")
	}
}

// assertLeft checks which objects left the desired state between two
// reconciles (Crossplane deletes them); their content may change.
func assertLeft(t *testing.T, before, after compose.Result, want ...resource.Name) {
	t.Helper()
	var left []resource.Name
	for n := range before.Desired {
		if _, ok := after.Desired[n]; !ok {
			left = append(left, n)
		}
	}
	slices.Sort(left)
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("objects that left the desired state (Crossplane deletes them): -want, +got:\n%s", diff)
	}
}
