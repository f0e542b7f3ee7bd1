package project

import (
	"encoding/json"
	goflag "flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

var updatePromQL = goflag.Bool("update-promql", false, "rewrite test/promql/generated from the dashboard builder")

func dashboardsPlatform(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Dashboards: &v1beta1.DashboardDefaults{Enabled: ptr.To(true)}}})
}

const monitoringNS = `{apiVersion: v1, kind: Namespace, metadata: {name: monitoring}, status: {phase: Active}}`

func TestComposeDashboard(t *testing.T) {
	spec := "  displayName: Vision models\n  environments: {dev: {namespace: vision-dev}, prod: {namespace: vision-prod}}\n"
	oldCM := `{apiVersion: v1, kind: ConfigMap, metadata: {name: kalypso-dashboard-vision, namespace: monitoring}}`
	// dev's namespace exists; prod's does not yet.
	base := map[string]string{"namespace-dev": activeNS}
	cases := map[string]struct {
		reason   string
		platform func(*testing.T) compose.Platform
		observed map[string]string
		nsExists bool
		composed bool
		cond     compose.Condition
	}{
		"Off": {
			reason: "The built-in default ships no dashboard.", platform: platform,
			cond: compose.Condition{Reason: "DashboardsDisabled"},
		},
		"On": {
			reason: "With dashboards on and the sidecar's namespace there, the ConfigMap is composed.", platform: dashboardsPlatform, nsExists: true,
			composed: true, cond: compose.Condition{Status: true, Reason: "DashboardComposed", Message: "ConfigMap monitoring/kalypso-dashboard-vision holds Grafana dashboard kalypso-vision"},
		},
		"NamespaceMissing": {
			reason: "Without the namespace, nothing is applied there (it would fail the project's reconcile), and the condition names the setting.", platform: dashboardsPlatform,
			cond: compose.Condition{Reason: "DashboardNamespaceMissing", Message: "namespace monitoring, where the platform ships dashboards (dashboards.namespace), does not exist"},
		},
		"NamespaceGoneKeeps": {
			reason: "A composed ConfigMap is kept while the namespace is not found.", platform: dashboardsPlatform, observed: map[string]string{"dashboard.monitoring": oldCM},
			composed: true, cond: compose.Condition{Reason: "DashboardNamespaceMissing"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			observed := map[string]string{"usage": readyUsage}
			maps.Copy(observed, base)
			maps.Copy(observed, tc.observed)
			c, err := New(xr(t, spec), composetest.Observed(t, observed))
			if err != nil {
				t.Fatal(err)
			}
			p := tc.platform(t)
			_, asks := c.Requirements(p)[reqDashboardNamespace]
			if asks != p.DashboardsEnabled {
				t.Errorf("%s\nnamespace looked up: want %v, got %v", tc.reason, p.DashboardsEnabled, asks)
			}
			req := map[string][]string{}
			if tc.nsExists {
				req[reqDashboardNamespace] = []string{monitoringNS}
			}
			got := c.Compose(p, composetest.Required(t, req))
			if got.Fatal != nil {
				t.Fatal(got.Fatal)
			}
			if tc.cond.Reason == "DashboardNamespaceMissing" && got.TTL != compose.PollTTL {
				t.Errorf("%s\nwaiting for the namespace: want TTL %v, got %v", tc.reason, compose.PollTTL, got.TTL)
			}
			d, ok := got.Desired[dashboardPart("monitoring")]
			if ok != tc.composed {
				t.Fatalf("%s\nConfigMap composed: want %v, got %v", tc.reason, tc.composed, ok)
			}
			want := tc.cond
			want.Type = ConditionDashboard
			checkCondition(t, tc.reason, got, want)
			if !ok || name != "On" {
				return
			}
			cm := composetest.Decode[corev1.ConfigMap](t, d)
			if cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "vision" || cm.Labels[compose.LabelProject] != "vision" {
				t.Errorf("want the sidecar's label, the folder annotation and the project's labels, got %v %v", cm.Labels, cm.Annotations)
			}
			js, ok := cm.Data["kalypso-vision.json"]
			if !ok {
				t.Fatalf("want data key kalypso-vision.json, got %v", len(cm.Data))
			}
			// Only environments whose namespace the project holds.
			if !strings.Contains(js, "dev : vision-dev") || strings.Contains(js, "vision-prod") {
				t.Errorf("want the environment variable to list dev only (prod's namespace does not exist yet)")
			}

		})
	}
}

// sampleDashboard is the dashboard of the sample project the promtool
// file and the round trip use.
func sampleDashboard(t *testing.T) dashboard.Dashboard {
	t.Helper()
	d, err := projectDashboard("vision", "Kalypso: Vision models", []string{"dev", "prod"},
		map[string]string{"dev": "vision-dev", "prod": "vision-prod"}, "nvidia.com/gpu")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDashboardRoundTrip: the JSON the sidecar loads decodes back into the
// SDK's types and encodes to the same JSON; each panel, and the rest of the
// dashboard, decode strictly (no field the SDK does not know). v0.0.22's
// strict decoder of a whole dashboard drops the panels union, so panels are
// checked one by one.
func TestDashboardRoundTrip(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	b, err := json.MarshalIndent(sampleDashboard(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var back dashboard.Dashboard
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("dashboard JSON does not decode: %v", err)
	}
	again, err := json.MarshalIndent(back, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(b), string(again)); d != "" {
		t.Errorf("round trip changed the JSON: -first +second\n%s", d)
	}
	if len(back.Panels) != len(dashboardPanels("vision", "nvidia.com/gpu")) || len(back.Templating.List) != 4 {
		t.Errorf("want every panel and the four variables, got %d panels, %d variables", len(back.Panels), len(back.Templating.List))
	}
	// An allValue would be put into the queries as it is: .* would show
	// other projects' namespaces.
	for _, v := range back.Templating.List {
		if v.AllValue != nil {
			t.Errorf("variable %s has allValue %q: All must expand to the listed values", v.Name, *v.AllValue)
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	var panels []json.RawMessage
	if err := json.Unmarshal(fields["panels"], &panels); err != nil {
		t.Fatal(err)
	}
	delete(fields, "panels")
	rest, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	strict := func(what string, err error) {
		// The SDK returns its error list even when empty (cog.BuildErrors).
		if be, ok := err.(cog.BuildErrors); err != nil && (!ok || len(be) > 0) {
			t.Errorf("%s does not decode strictly: %v", what, err)
		}
	}
	strict("the dashboard", new(dashboard.Dashboard).UnmarshalJSONStrict(rest))
	for i, p := range panels {
		strict(fmt.Sprintf("panel %d", i+1), new(dashboard.Panel).UnmarshalJSONStrict(p))
	}
}

func TestDashboardUID(t *testing.T) {
	if got := dashboardUID("vision"); got != "kalypso-vision" {
		t.Errorf("short name: got %q", got)
	}
	long := dashboardUID(strings.Repeat("a", 60))
	if len(long) != grafanaUIDMax || long == dashboardUID(strings.Repeat("a", 61)) {
		t.Errorf("long names: want distinct uids of %d characters, got %q", grafanaUIDMax, long)
	}
	dotted := dashboardUID("vision.ml")
	if dotted == dashboardUID("vision-ml") || uidInvalidRE.MatchString(dotted) || len(dotted) > grafanaUIDMax {
		t.Errorf("a name with a dot: want a valid uid distinct from vision-ml's, got %q", dotted)
	}
}

// The dashboard's variables as the generated rules file substitutes them:
// Grafana writes a multi-value or All selection as a regex.
var sampleVariables = strings.NewReplacer(
	"${"+varServer+"}", "(reranker|ranker)", "$"+varEnvironment, "vision-prod|vision-dev",
	"$"+varApplication, ".*", "$"+varServer, "(reranker|ranker)")

var dashboardRulesFile = filepath.Join("..", "..", "test", "promql", "generated", "dashboard.rules.yaml")

// TestDashboardRuleFile writes (-update-promql) or checks the generated
// file promtool checks: every panel query of the sample dashboard, its
// variables substituted, as a recording rule.
func TestDashboardRuleFile(t *testing.T) {
	g := monitoringv1.RuleGroup{Name: "kalypso-dashboard-queries"}
	for i, p := range dashboardPanels("vision", "nvidia.com/gpu") {
		for j, tg := range p.targets {
			g.Rules = append(g.Rules, monitoringv1.Rule{
				Record: "kalypso:dashboard_panel" + string(rune('1'+i)) + "_" + string(rune('a'+j)),
				Expr:   intstr.FromString(sampleVariables.Replace(tg.expr)),
			})
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []monitoringv1.RuleGroup{g}})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("# Generated by `go test ./fn/project -run TestDashboardRuleFile -update-promql`; do not edit.\n"), out...)
	composetest.GeneratedFile(t, dashboardRulesFile, want, *updatePromQL, "go test ./fn/project -run TestDashboardRuleFile -update-promql")
}

// TestDashboardReadsRecords: every recording rule a panel reads is one the
// servers ship (the generated rules file of fn/tritonserver).
func TestDashboardReadsRecords(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "test", "promql", "generated", "tritonserver.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Groups []monitoringv1.RuleGroup }
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	shipped := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			shipped[r.Record] = true
		}
	}
	for _, p := range dashboardPanels("vision", "nvidia.com/gpu") {
		for _, tg := range p.targets {
			if name, _, found := strings.Cut(tg.expr, "{"); found && strings.HasPrefix(name, "kalypso:") && !shipped[name] {
				t.Errorf("panel %q reads %s, which no server records", p.title, name)
			}
		}
	}
}
