package tritonserver

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// dashboardsPlatform ships dashboards, alerts left off.
func dashboardsPlatform(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Dashboards: &v1beta1.DashboardDefaults{Enabled: ptr.To(true)}}})
}

// alertsPlatform turns alerts on for every server.
func alertsPlatform(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Alerts: &v1beta1.AlertsDefaults{
		Enabled: ptr.To(true), RuleLabels: map[string]string{"prometheus": "tenants"},
	}}})
}

func TestComposeAlerts(t *testing.T) {
	running := func(p func(*testing.T) compose.Platform, spec string) func(*testing.T) map[string]string {
		return func(t *testing.T) map[string]string { return createdOn(t, p(t), spec, deployAvailable) }
	}
	cases := map[string]struct {
		reason   string
		platform func(*testing.T) compose.Platform
		spec     string
		observed func(*testing.T) map[string]string
		noCRD    bool
		rule     bool
		schema   bool
		cond     cond
		message  string
	}{
		"OffByDefault": {
			reason:   "The built-in default composes no rule: rules reach nobody until the platform selects them.",
			platform: platform, spec: smOn, observed: running(platform, smOn),
			cond: cond{false, reasonAlertsDisabled}, message: "set spec.slo.alerts: true",
		},
		"SpecTurnsOn": {
			reason:   "spec.slo.alerts: true composes the rule on a platform that leaves alerts off.",
			platform: platform, spec: smOn + "slo: {alerts: true}\n", observed: running(platform, smOn),
			rule: true, schema: true, cond: cond{true, reasonAlertsComposed},
		},
		"PlatformOn": {
			reason:   "The platform's alerts.enabled composes every server's rule, with its objectives in the message.",
			platform: alertsPlatform, spec: smOn, observed: running(alertsPlatform, smOn),
			rule: true, cond: cond{true, reasonAlertsComposed},
			message: "PrometheusRule resnet-rules alerts when the server is down or short of ready replicas for 10m, when for 5m the mean queue time exceeds 100000 µs, failures exceed 1% or a GPU's memory use exceeds 90%, and when a pod restarts 3 times in an hour",
		},
		"SpecObjectives": {
			reason:   "The spec's objectives win over the platform's.",
			platform: alertsPlatform, spec: smOn + "slo: {queueTimeMicroseconds: 20000, failurePercent: '0.5', gpuMemoryPercent: 95, unavailableMinutes: 15, restartsPerHour: 1}\n",
			observed: running(alertsPlatform, smOn),
			rule:     true, cond: cond{true, reasonAlertsComposed},
			message: "for 15m, when for 5m the mean queue time exceeds 20000 µs, failures exceed 0.5% or a GPU's memory use exceeds 95%, and when a pod restarts 1 times",
		},
		"SpecTurnsOff": {
			reason:   "spec.slo.alerts: false wins over the platform, and a composed rule goes.",
			platform: alertsPlatform, spec: smOn + "slo: {alerts: false}\n", observed: running(alertsPlatform, smOn),
			cond: cond{false, reasonAlertsDisabled}, message: "spec.slo.alerts is false",
		},
		"CountersOffPlatformAlerts": {
			reason:   "Alerts from the platform's default and a parameter that stops Triton's counters: no alerts, and the condition names the parameter (a platform change must not stop the server's reconciles with a Fatal).",
			platform: alertsPlatform, spec: smOn + "tritonConfig: {parameters: [{name: metrics-config, value: counter_latencies=false}]}\n", observed: running(platform, smOn),
			cond: cond{false, "CountersDisabled"}, message: "spec.tritonConfig.parameters[0] (metrics-config=counter_latencies=false) stops the request counters",
		},
		"DashboardsOnly": {
			reason:   "Alerts off but the platform ships dashboards: the rule records what the dashboard reads, without alerts.",
			platform: dashboardsPlatform, spec: smOn, observed: running(platform, smOn),
			rule: true, schema: true, cond: cond{false, reasonAlertsDisabled}, message: "PrometheusRule resnet-rules records what the project's dashboard reads",
		},
		"FirstCall": {
			reason:   "Before the Deployment exists the CRD is not asked for (core parses the group's whole document), and no rule is composed.",
			platform: alertsPlatform, spec: smOn,
			cond: cond{false, reasonAlertsWaitingDeploy},
		},
		"AskCRD": {
			reason:   "Once the Deployment exists the CRD is asked for while no rule is composed.",
			platform: alertsPlatform, spec: smOn, observed: running(platform, smOn),
			rule: true, schema: true, cond: cond{true, reasonAlertsComposed},
		},
		"CRDMissing": {
			reason:   "Without the PrometheusRule CRD: nothing composed, and the condition names the CRD.",
			platform: alertsPlatform, spec: smOn, observed: running(platform, smOn), noCRD: true,
			schema: true, cond: cond{false, reasonPrometheusRuleCRD}, message: "the prometheusrules.monitoring.coreos.com CRD is not installed",
		},
		"NoServiceMonitor": {
			reason:   "The alerts read the series the ServiceMonitor brings: without one, no rule.",
			platform: alertsPlatform, spec: "", observed: running(platform, ""),
			cond: cond{false, reasonAlertsNeedMetrics}, message: "the MetricsScraping condition says why",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := map[string][]string{reqApplication: {readyApp}, reqServiceMonitor: {smCRD}}
			if !tc.noCRD {
				req[reqPrometheusRule] = []string{ruleCRD}
			}
			var observed map[string]string
			if tc.observed != nil {
				observed = tc.observed(t)
			}
			sc := scene{xr: serverXR(tc.spec, snapshot), observed: observed, required: req}
			p := tc.platform(t)
			c, err := sc.composer(t, int64s)
			if err != nil {
				t.Fatal(err)
			}
			if _, asked := c.Schemas(p)[reqPrometheusRule]; asked != tc.schema {
				t.Errorf("%s\nPrometheusRule CRD asked for: want %v, got %v", tc.reason, tc.schema, asked)
			}
			r := sc.run(t, int64s, p)
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			if _, ok := r.Desired[resPrometheusRule]; ok != tc.rule {
				t.Errorf("%s\nPrometheusRule composed: want %v, got %v", tc.reason, tc.rule, ok)
			} else if ok {
				alerts := 0
				for _, rl := range decodeStrict[monitoringv1.PrometheusRule](t, r, resPrometheusRule).Spec.Groups[0].Rules {
					if rl.Alert != "" {
						alerts++
					}
				}
				if want := map[bool]int{true: 6, false: 0}[tc.cond.Status]; alerts != want {
					t.Errorf("%s\nalerts in the rule: want %d, got %d", tc.reason, want, alerts)
				}
			}
			if got := condsOf(r)[ConditionAlerting]; got != tc.cond {
				t.Errorf("%s\nAlerting: want %+v, got %+v (%s)", tc.reason, tc.cond, got, message(r, ConditionAlerting))
			}
			if m := message(r, ConditionAlerting); !strings.Contains(m, tc.message) {
				t.Errorf("%s\nAlerting message: want it to contain %q, got %q", tc.reason, tc.message, m)
			}
			if tc.noCRD && r.TTL != compose.PollTTL {
				t.Errorf("%s\nwaiting for the CRD: want TTL %v, got %v", tc.reason, compose.PollTTL, r.TTL)
			}
		})
	}
}

// TestPrometheusRuleObject checks what the composed rule carries beyond its
// expressions (test/promql checks those): the platform's selection labels,
// the owner labels on every series and alert, and the namespace alerts are
// routed on.
func TestPrometheusRuleObject(t *testing.T) {
	p := alertsPlatform(t)
	r := scene{xr: serverXR(smOn, snapshot), observed: createdOn(t, p, smOn, deployAvailable),
		required: map[string][]string{reqApplication: {readyApp}, reqServiceMonitor: {smCRD}, reqPrometheusRule: {ruleCRD}}}.run(t, int64s, p)
	if r.Fatal != nil {
		t.Fatal(r.Fatal)
	}
	rule := decodeStrict[monitoringv1.PrometheusRule](t, r, resPrometheusRule)
	if rule.Name != "resnet-rules" || rule.Namespace != "vision-dev" || rule.Labels["prometheus"] != "tenants" || rule.Labels[compose.LabelTritonServer] != "resnet" {
		t.Errorf("want resnet-rules in vision-dev labelled prometheus: tenants and with the server's labels, got %s/%s %v", rule.Namespace, rule.Name, rule.Labels)
	}
	owner := map[string]string{"kalypso_project": "vision", "kalypso_environment": "dev", "kalypso_application": "classifier", "kalypso_server": "resnet"}
	var records, alerts []string
	for _, g := range rule.Spec.Groups {
		for _, rl := range g.Rules {
			for k, v := range owner {
				if rl.Labels[k] != v {
					t.Errorf("%s%s: label %s: want %q, got %q", rl.Record, rl.Alert, k, v, rl.Labels[k])
				}
			}
			if rl.Record != "" {
				records = append(records, rl.Record)
				continue
			}
			alerts = append(alerts, rl.Alert)
			if rl.Labels["namespace"] != "vision-dev" || rl.Labels["severity"] == "" {
				t.Errorf("%s: want namespace vision-dev and a severity, got %v", rl.Alert, rl.Labels)
			}
			if rl.Annotations["summary"] == "" || rl.Annotations["description"] == "" {
				t.Errorf("%s: want a summary and a description, got %v", rl.Alert, rl.Annotations)
			}
		}
	}
	wantAlerts := []string{AlertServerDown, AlertReplicasUnavailable, AlertQueueTimeHigh, AlertFailureRatioHigh, AlertGPUMemoryHigh, AlertRestarting}
	if d := cmp.Diff(wantAlerts, alerts); d != "" {
		t.Errorf("alerts: -want +got\n%s", d)
	}
	wantRecords := []string{RecordSuccessRate, RecordFailureRate, RecordQueueRate, RecordDurationRate, RecordPending,
		RecordQueueTime, RecordLatency, RecordFailureRatio, RecordGPUMemory, RecordGPUUtilPerPod}
	if d := cmp.Diff(wantRecords, records); d != "" {
		t.Errorf("records (before the alerts that read them): -want +got\n%s", d)
	}
}

// TestSLOErrors: objectives the function refuses, and a parameter that
// would silence the alerts, refused only while something reads the counters.
func TestSLOErrors(t *testing.T) {
	for name, tc := range map[string]struct{ spec, want string }{
		"CountersOffAlone":    {"tritonConfig: {parameters: [{name: metrics-config, value: counter_latencies=false}]}\n", ""},
		"FailurePercentZero":  {"slo: {failurePercent: '0'}\n", "spec.slo.failurePercent: \"0\" is not a percentage above 0 and at most 100"},
		"FailurePercentWords": {"slo: {failurePercent: one}\n", "spec.slo.failurePercent"},
		"FailurePercentOver":  {"slo: {failurePercent: '101'}\n", "spec.slo.failurePercent"},
		"GPUMemoryOver":       {"slo: {gpuMemoryPercent: 120}\n", "spec.slo.gpuMemoryPercent must be at most 100"},
		"RestartsZero":        {"slo: {restartsPerHour: 0}\n", "spec.slo.restartsPerHour must be above zero"},
		"CountersOffWithAlerts": {"slo: {alerts: true}\ntritonConfig: {parameters: [{name: metrics-config, value: counter_latencies=false}]}\n",
			"spec.tritonConfig.parameters[0]: metrics-config=counter_latencies=false also stops Triton's success and failure counters"},
		"CountersOffWithQueueTime": {cpuReq + "autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}\ntritonConfig: {parameters: [{name: metrics-config, value: counter_latencies=false}]}\n",
			"triton-inference-server/server#8125"},
	} {
		t.Run(name, func(t *testing.T) {
			r := scene{xr: serverXR(tc.spec, snapshot), required: map[string][]string{reqApplication: {readyApp}}}.run(t, int64s, platform(t))
			if tc.want == "" {
				if r.Fatal != nil {
					t.Errorf("nothing reads the counters: want no error, got %v", r.Fatal)
				}
				return
			}
			if r.Fatal == nil || !strings.Contains(r.Fatal.Error(), tc.want) {
				t.Errorf("want an error containing %q, got %v", tc.want, r.Fatal)
			}
		})
	}
}

// TestCostLabels: the platform's cost label keys the namespace carries go
// onto the Deployment, not its pod template (a renamed cost center must not
// restart the server).
func TestCostLabels(t *testing.T) {
	p := composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Showback: &v1beta1.ShowbackDefaults{CostLabelKeys: []string{"cost-center"}}}})
	ns := `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev, labels: {cost-center: cc-4711, team: vision}}}`
	sc := scene{xr: serverXR("", snapshot), required: map[string][]string{reqApplication: {readyApp}, reqNamespace: {ns}}}
	c, err := sc.composer(t, int64s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Requirements(p)[reqNamespace]; !ok {
		t.Error("want the namespace read while the platform has cost label keys")
	}
	if _, ok := c.Requirements(platform(t))[reqNamespace]; ok {
		t.Error("want no namespace read without cost label keys")
	}
	r := sc.run(t, int64s, p)
	if r.Fatal != nil {
		t.Fatal(r.Fatal)
	}
	d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
	if d.Labels["cost-center"] != "cc-4711" || d.Labels["team"] != "" {
		t.Errorf("want the platform's cost label keys only on the Deployment, got %v", d.Labels)
	}
	if _, ok := d.Spec.Template.Labels["cost-center"]; ok {
		t.Errorf("the pod template must not carry cost labels, got %v", d.Spec.Template.Labels)
	}
}
