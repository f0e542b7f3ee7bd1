package compose_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/test/xpchart"
)

const aggregateLabel = "rbac.crossplane.io/aggregate-to-crossplane"

// TestShippedRBACCoversKindTable: Crossplane core, with the rules of its
// own chart plus examples/platform/crossplane-rbac.yaml, may get, list and
// watch every kind the function requires and fully manage every kind it
// composes; and crossplane-rbac.yaml grants nothing on a kind the table
// does not hold (apart from binding the roles a project binds).
func TestShippedRBACCoversKindTable(t *testing.T) {
	ours := shippedRules(t)
	rules := append(chartRules(t), ours...)
	for _, g := range compose.KindTable {
		for _, verb := range g.Access.Verbs() {
			if !allows(rules, g.Group, g.Resource, verb) {
				t.Errorf("core may not %s %s (%s): add it to examples/platform/crossplane-rbac.yaml", verb, g.Resource, g)
			}
		}
	}
	for _, r := range ours {
		if slices.Equal(r.Verbs, []string{"bind"}) {
			continue
		}
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				i := slices.IndexFunc(compose.KindTable, func(g compose.GVK) bool { return g.Group == group && g.Resource == res })
				if i < 0 {
					t.Errorf("crossplane-rbac.yaml grants %v on %s in group %q, which is not in the kind table (fn/compose/gvk.go)", r.Verbs, res, group)
					continue
				}
				if extra := slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return slices.Contains(compose.KindTable[i].Access.Verbs(), v) }); len(extra) > 0 {
					t.Errorf("crossplane-rbac.yaml grants %v on %s, more than the kind table needs (%v)", extra, res, compose.KindTable[i].Access.Verbs())
				}
			}
		}
	}
}

// allows: a rule without resourceNames grants the verb on the resource.
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	in := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return len(r.ResourceNames) == 0 && in(r.APIGroups, group) && in(r.Resources, resource) && in(r.Verbs, verb)
	})
}

// shippedRules are the rules of every ClusterRole in crossplane-rbac.yaml
// that aggregates into core's role.
func shippedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "platform", "crossplane-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []rbacv1.PolicyRule
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var cr rbacv1.ClusterRole
		if err := d.Decode(&cr); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if cr.Kind == "ClusterRole" && cr.Labels[aggregateLabel] == "true" {
			out = append(out, cr.Rules...)
		}
	}
	if len(out) == 0 {
		t.Fatalf("crossplane-rbac.yaml has no ClusterRole labelled %s", aggregateLabel)
	}
	return out
}

// chartRules are the rules of the chart's clusterrole.yaml, the role
// aggregated into core's.
func chartRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	dir, err := xpchart.ModuleDir(t.Context(), filepath.Join("..", "..", "test", "tools", "crossplane-core"), xpchart.Module, xpchart.Version)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := xpchart.Rules(dir, "clusterrole.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return rules
}
