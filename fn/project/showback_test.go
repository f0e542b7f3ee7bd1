package project

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

func showbackPlatform(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Showback: &v1beta1.ShowbackDefaults{
		Enabled: ptr.To(true), CostLabelKeys: []string{"cost-center"},
	}}})
}

const ruleCRD = `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: prometheusrules.monitoring.coreos.com}}`

func TestComposeShowback(t *testing.T) {
	// dev sets no GPU quota, prod 8; both namespaces exist.
	spec := "  costLabels: {cost-center: cc-4711}\n" +
		"  environments: {dev: {namespace: vision-dev}, prod: {namespace: vision-prod, resourceQuota: {requests: {nvidia.com/gpu: '8'}}}}\n"
	prodQuota := `{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-prod-quota, namespace: vision-prod, labels: {kalypso-serving.io/environment: prod}},
  spec: {hard: {requests.nvidia.com/gpu: "8"}}, status: {hard: {requests.nvidia.com/gpu: "8"}, used: {requests.nvidia.com/gpu: "3"}}}`
	devQuota := `{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-dev-quota, namespace: vision-dev, labels: {kalypso-serving.io/environment: dev}},
  spec: {hard: {requests.nvidia.com/gpu: "1000000"}}, status: {hard: {requests.nvidia.com/gpu: "1M"}, used: {requests.nvidia.com/gpu: "1"}}}`
	observed := map[string]string{"usage": readyUsage, "namespace-dev": activeNS, "namespace-prod": prodNS, "quota.dev": devQuota, "quota.prod": prodQuota}

	t.Run("On", func(t *testing.T) {
		c, err := New(xr(t, spec), composetest.Observed(t, observed))
		if err != nil {
			t.Fatal(err)
		}
		p := showbackPlatform(t)
		if _, asks := c.Schemas(p)[reqPrometheusRule]; !asks {
			t.Error("want the PrometheusRule CRD looked up while no showback rule is composed")
		}
		got := c.Compose(p, composetest.Required(t, map[string][]string{reqPrometheusRule: {ruleCRD}}))
		if got.Fatal != nil {
			t.Fatal(got.Fatal)
		}
		dev := composetest.Decode[corev1.ResourceQuota](t, got.Desired[partName("quota", "dev")])
		if q := dev.Spec.Hard[p.DefaultGPU().QuotaKey()]; q.CmpInt64(compose.UntrackedGPUQuota) != 0 {
			t.Errorf("dev sets no GPU quota: want a tracking key of %d, got %v", compose.UntrackedGPUQuota, dev.Spec.Hard)
		}
		prod := composetest.Decode[corev1.ResourceQuota](t, got.Desired[partName("quota", "prod")])
		if q := prod.Spec.Hard[p.DefaultGPU().QuotaKey()]; !q.Equal(kresource.MustParse("8")) {
			t.Errorf("prod's own GPU quota is kept: got %v", prod.Spec.Hard)
		}
		st := got.Status.(*v1alpha1.KalypsoProjectStatus)
		want := map[string]*v1alpha1.GPUUsage{
			"dev":  {Resource: "requests.nvidia.com/gpu", Requested: "1"},
			"prod": {Resource: "requests.nvidia.com/gpu", Requested: "3", Quota: "8"},
		}
		for _, es := range st.Environments {
			if d := cmp.Diff(want[es.Name], es.GPUs); d != "" {
				t.Errorf("status of %s: GPUs -want +got\n%s", es.Name, d)
			}
		}
		ns := composetest.Decode[corev1.Namespace](t, got.Desired[namespacePart("prod")])
		if ns.Labels["cost-center"] != "cc-4711" {
			t.Errorf("want the cost label on the Namespace, got %v", ns.Labels)
		}
		for _, env := range []string{"dev", "prod"} {
			rule := composetest.Decode[monitoringv1.PrometheusRule](t, got.Desired[showbackPart(env)])
			if rule.Name != "vision-"+env+"-showback" || rule.Namespace != "vision-"+env || rule.Labels["release"] != "prometheus" {
				t.Errorf("want vision-%s-showback in vision-%s with the rule selection labels, got %s/%s %v", env, env, rule.Namespace, rule.Name, rule.Labels)
			}
		}
		checkCondition(t, "showback on", got, compose.Condition{Type: ConditionShowback, Status: true, Reason: "ShowbackComposed"})
	})
	t.Run("Off", func(t *testing.T) {
		c, err := New(xr(t, "  environments: {dev: {namespace: vision-dev}}\n"), composetest.Observed(t, map[string]string{"usage": readyUsage, "namespace-dev": activeNS}))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Compose(platform(t), composetest.Required(t, nil))
		if _, ok := got.Desired[partName("quota", "dev")]; ok {
			t.Error("showback off: no quota for an environment that sets none")
		}
		if _, ok := got.Desired[showbackPart("dev")]; ok {
			t.Error("showback off: no rules")
		}
		checkCondition(t, "showback off", got, compose.Condition{Type: ConditionShowback, Reason: "ShowbackDisabled"})
	})
	t.Run("CRDMissing", func(t *testing.T) {
		c, err := New(xr(t, spec), composetest.Observed(t, observed))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Compose(showbackPlatform(t), composetest.Required(t, nil))
		if _, ok := got.Desired[showbackPart("prod")]; ok {
			t.Error("without the CRD: no rules")
		}
		checkCondition(t, "without the CRD", got, compose.Condition{Type: ConditionShowback, Reason: "PrometheusRuleCRDMissing", Message: "the status still shows GPU use"})
	})
	t.Run("CostLabelNotAllowed", func(t *testing.T) {
		c, err := New(xr(t, "  costLabels: {team: vision, cost-center: cc-1}\n  environments: {dev: {namespace: vision-dev}}\n"), composetest.Observed(t, map[string]string{"usage": readyUsage, "namespace-dev": activeNS}))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Compose(showbackPlatform(t), composetest.Required(t, map[string][]string{reqPrometheusRule: {ruleCRD}}))
		if got.Fatal != nil {
			t.Fatalf("a key the platform does not allow must not stop the project's reconciles: %v", got.Fatal)
		}
		ns := composetest.Decode[corev1.Namespace](t, got.Desired[namespacePart("dev")])
		if ns.Labels["cost-center"] != "cc-1" || ns.Labels["team"] != "" {
			t.Errorf("want the allowed cost label only, got %v", ns.Labels)
		}
		checkCondition(t, "a key not allowed", got, compose.Condition{Type: ConditionShowback, Reason: "CostLabelNotAllowed",
			Message: "spec.costLabels team: the platform allows only these cost label keys (showback.costLabelKeys): cost-center; those labels are left off the Namespaces"})
	})
	t.Run("CostLabelValue", func(t *testing.T) {
		c, err := New(xr(t, "  costLabels: {cost-center: 'not a value'}\n  environments: {dev: {namespace: vision-dev}}\n"), composetest.Observed(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Compose(showbackPlatform(t), composetest.Required(t, nil))
		if got.Fatal == nil || !strings.Contains(got.Fatal.Error(), `spec.costLabels[cost-center]: "not a value" is not a label value`) {
			t.Errorf("want a Fatal naming the field, got %v", got.Fatal)
		}
	})
}

func conditionOf(r compose.Result, typ string) compose.Condition {
	for _, c := range r.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return compose.Condition{}
}

// checkCondition: the result's condition of want's type has want's status
// and reason, and its message contains want's.
func checkCondition(t *testing.T, why string, r compose.Result, want compose.Condition) {
	t.Helper()
	got := conditionOf(r, want.Type)
	if got.Status != want.Status || got.Reason != want.Reason || !strings.Contains(got.Message, want.Message) {
		t.Errorf("%s\n%s: want %v %s containing %q, got %v %s %q", why, want.Type, want.Status, want.Reason, want.Message, got.Status, got.Reason, got.Message)
	}
}

var showbackRulesFile = filepath.Join("..", "..", "test", "promql", "generated", "showback.rules.yaml")

// TestShowbackRuleFile writes (-update-promql) or checks the showback
// rules of the sample environment vision-prod, which promtool checks and
// test/promql/showback.test.yaml tests.
func TestShowbackRuleFile(t *testing.T) {
	groups := []monitoringv1.RuleGroup{showbackGroup("kalypso-showback-vision-prod", "vision-prod", "nvidia.com/gpu", []string{"cost-center"})}
	out, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("# Generated by `go test ./fn/project -run TestShowbackRuleFile -update-promql`; do not edit.\n"), out...)
	composetest.GeneratedFile(t, showbackRulesFile, want, *updatePromQL, "go test ./fn/project -run TestShowbackRuleFile -update-promql")
}
