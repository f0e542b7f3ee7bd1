package tritonserver

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/crossplane/function-sdk-go/resource"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Alerts (README, "Alerts"): a server whose ServiceMonitor is composed gets
// a PrometheusRule, in its own namespace, with recording rules for its
// request rates, queue time, latency, failures and GPU memory, and alerts
// on its objectives. One rule per server, not per application: the
// objectives are the server's, and the rule lives and dies with it.
//
// Triton's metric names and labels: triton-inference-server/core
// src/metrics.cc (families) and src/metric_model_reporter.cc (model and
// version labels; the reason label of nv_inference_request_failure since
// 24.07). The namespace, service and pod labels are the Prometheus
// Operator's target labels for the ServiceMonitor's endpoints. The
// deployment and restart series are kube-state-metrics'
// (docs/metrics/workload/deployment-metrics.md, pod-metrics.md).

const (
	resPrometheusRule  = resource.Name("prometheusrule")
	reqPrometheusRule  = "prometheusrule-schema"
	prometheusRuleCRD  = "prometheusrules.monitoring.coreos.com"
	prometheusRuleName = "rules"
	// sloFor is how long an objective must be missed before its alert
	// fires: long enough to ride out one slow batch or scrape.
	sloFor = 5 * time.Minute
)

// Reasons of the Alerting condition.
const (
	reasonAlertsDisabled      = "AlertsDisabled"
	reasonPrometheusRuleCRD   = "PrometheusRuleCRDMissing"
	reasonAlertsComposed      = "AlertsComposed"
	reasonAlertsNeedMetrics   = "MetricsNotScraped"
	reasonAlertsWaitingDeploy = reasonWaitingForDeployment
)

// The recording rules every server's PrometheusRule holds; the dashboard
// reads them too.
const (
	RecordSuccessRate   = "kalypso:nv_inference_request_success:rate"
	RecordFailureRate   = "kalypso:nv_inference_request_failure:rate"
	RecordQueueRate     = "kalypso:nv_inference_queue_duration_us:rate"
	RecordDurationRate  = "kalypso:nv_inference_request_duration_us:rate"
	RecordPending       = "kalypso:nv_inference_pending_request_count:sum"
	RecordQueueTime     = "kalypso:queue_time_us:mean"
	RecordLatency       = "kalypso:request_latency_us:mean"
	RecordFailureRatio  = "kalypso:request_failure:ratio"
	RecordGPUMemory     = "kalypso:gpu_memory_used:ratio"
	RecordGPUUtilPerPod = "kalypso:gpu_utilization:avg"
)

// The alerts.
const (
	AlertServerDown          = "KalypsoTritonServerDown"
	AlertReplicasUnavailable = "KalypsoTritonReplicasUnavailable"
	AlertQueueTimeHigh       = "KalypsoTritonQueueTimeHigh"
	AlertFailureRatioHigh    = "KalypsoTritonFailureRatioHigh"
	AlertGPUMemoryHigh       = "KalypsoTritonGPUMemoryHigh"
	AlertRestarting          = "KalypsoTritonRestarting"
)

// slo is a server's objectives: its spec's, else the platform's.
type slo struct {
	queueTimeUs        int32
	failurePercent     string
	gpuMemoryPercent   int32
	unavailableMinutes int32
	restartsPerHour    int32
}

// sloOf resolves the objectives and checks the spec's failure percentage,
// which crossplane render does not check against the schema.
func sloOf(spec *v1alpha1.KalypsoTritonServerSpec, p compose.Platform) (slo, error) {
	s := ptr.Deref(spec.SLO, v1alpha1.SLOSpec{})
	out := slo{
		queueTimeUs:        ptr.Deref(s.QueueTimeMicroseconds, p.SLO.QueueTimeMicroseconds),
		failurePercent:     cmp.Or(s.FailurePercent, p.SLO.FailurePercent),
		gpuMemoryPercent:   ptr.Deref(s.GPUMemoryPercent, p.SLO.GPUMemoryPercent),
		unavailableMinutes: ptr.Deref(s.UnavailableMinutes, p.SLO.UnavailableMinutes),
		restartsPerHour:    ptr.Deref(s.RestartsPerHour, p.SLO.RestartsPerHour),
	}
	pct, err := compose.ParsePercent(out.failurePercent)
	if err != nil {
		return slo{}, fmt.Errorf("spec.slo.failurePercent: %w", err)
	}
	// Written into PromQL: the plain decimal form, whatever the spelling
	// ParseFloat accepted (an EnvironmentConfig is not schema-checked).
	out.failurePercent = strconv.FormatFloat(pct, 'f', -1, 64)
	// In a fixed order: the message must not depend on map iteration.
	for _, f := range []struct {
		name string
		v    int32
	}{
		{"queueTimeMicroseconds", out.queueTimeUs}, {"gpuMemoryPercent", out.gpuMemoryPercent},
		{"unavailableMinutes", out.unavailableMinutes}, {"restartsPerHour", out.restartsPerHour},
	} {
		if f.v <= 0 {
			return slo{}, fmt.Errorf("spec.slo.%s must be above zero, got %d", f.name, f.v)
		}
	}
	if out.gpuMemoryPercent > 100 {
		return slo{}, fmt.Errorf("spec.slo.gpuMemoryPercent must be at most 100, got %d", out.gpuMemoryPercent)
	}
	return out, nil
}

// countersOff is the index of a parameter that stops Triton's request
// counters, -1 when none does: --metrics-config counter_latencies=false
// also makes every request counter (success, failure, count) stay at 0
// (core src/metric_model_reporter.cc IncrementCounter returns early;
// triton-inference-server/server#8125), which the alerts and the queueTime
// autoscaling metric read.
func countersOff(spec *v1alpha1.KalypsoTritonServerSpec) int {
	if spec.TritonConfig == nil {
		return -1
	}
	for i, param := range spec.TritonConfig.Parameters {
		if param.Name == "metrics-config" && strings.ReplaceAll(param.Value, " ", "") == "counter_latencies=false" {
			return i
		}
	}
	return -1
}

// checkCounters refuses that parameter while the spec asks for what reads
// the counters: alerts (spec.slo.alerts) or queueTime autoscaling. Alerts
// from the platform's default are left off instead (alertsWanted), so a
// platform change never stops a running server's reconciles.
func (c *Composer) checkCounters() error {
	i := countersOff(&c.spec)
	if i < 0 {
		return nil
	}
	a := c.spec.Autoscaling
	queueTime := a != nil && a.Enabled && metricOf(a) == metricQueueTime
	asked := c.spec.SLO != nil && ptr.Deref(c.spec.SLO.Alerts, false)
	if !asked && !queueTime {
		return nil
	}
	return fmt.Errorf("spec.tritonConfig.parameters[%d]: metrics-config=counter_latencies=false also stops Triton's success and failure counters (triton-inference-server/server#8125), which the server's alerts (spec.slo.alerts) and queueTime autoscaling read: remove the parameter", i)
}

// ruleSet is what a server's rules are built from.
type ruleSet struct {
	series     series
	deployment string
	// window of the rates: four scrapes, at least two minutes (rateWindow).
	window time.Duration
	owner  compose.Owner
	slo    slo
	// alerts: the alerting rules too, not only the recording rules.
	alerts bool
}

// alertsWanted: the spec, else the platform, turns alerts on; the
// platform's default does not where a parameter stops the counters they
// read (checkCounters).
func (c *Composer) alertsWanted(p compose.Platform) bool {
	if s := c.spec.SLO; s != nil && s.Alerts != nil {
		return *s.Alerts
	}
	return p.AlertsEnabled && countersOff(&c.spec) < 0
}

func (c *Composer) prometheusRuleComposed() bool {
	_, ok := c.observed[resPrometheusRule]
	return ok
}

// rulesWanted: the server records its rules for its alerts, or for its
// project's dashboard, which reads them.
func (c *Composer) rulesWanted(p compose.Platform) bool {
	return c.alertsWanted(p) || p.DashboardsEnabled
}

// checksPrometheusRuleKind: the CRD is looked up while rules are wanted
// and none composed, once the Deployment exists (as for the ServiceMonitor,
// whose group-version document core parses at every fetch).
func (c *Composer) checksPrometheusRuleKind(p compose.Platform) bool {
	return c.rulesWanted(p) && c.wantsServiceMonitor() && !c.prometheusRuleComposed() && c.deploy != nil
}

// rulesProblem says why the server's PrometheusRule cannot be composed,
// as an Alerting condition; nil when it can (or is not wanted).
func (c *Composer) rulesProblem(p compose.Platform, metrics compose.Condition, required map[string][]resource.Required) *compose.Condition {
	what := "the alerts"
	if !c.alertsWanted(p) {
		what = "the recording rules the project's dashboard reads"
	}
	cond := &compose.Condition{Type: ConditionAlerting}
	switch {
	case !c.rulesWanted(p):
		return nil
	case !metrics.Status:
		cond.Reason, cond.Message = reasonAlertsNeedMetrics, what+" read the series Prometheus scrapes through the server's ServiceMonitor, and there is none (the MetricsScraping condition says why)"
	case !c.prometheusRuleComposed() && c.deploy == nil:
		cond.Reason, cond.Message = reasonAlertsWaitingDeploy, "the PrometheusRule is composed once the Deployment exists (its CRD is checked then)"
	case !c.prometheusRuleComposed() && len(required[reqPrometheusRule]) == 0:
		cond.Reason, cond.Message = reasonPrometheusRuleCRD, compose.CRDMissing(prometheusRuleCRD, ", so "+what+" are not composed: install the Prometheus Operator's CRDs")
	default:
		return nil
	}
	return cond
}

// alertingCondition says whether the server's alerts are composed, and if
// not, why.
func (c *Composer) alertingCondition(p compose.Platform, problem *compose.Condition, s slo) compose.Condition {
	cond := compose.Condition{Type: ConditionAlerting}
	records := ""
	if c.rulesWanted(p) {
		records = fmt.Sprintf("; PrometheusRule %s records what the project's dashboard reads", c.name(prometheusRuleName))
	}
	switch {
	case problem != nil:
		return *problem
	case !c.alertsWanted(p) && c.spec.SLO != nil && c.spec.SLO.Alerts != nil:
		cond.Reason, cond.Message = reasonAlertsDisabled, "spec.slo.alerts is false: no alerts are composed"+records
	case !c.alertsWanted(p) && p.AlertsEnabled:
		cond.Reason, cond.Message = "CountersDisabled", fmt.Sprintf("no alerts are composed: spec.tritonConfig.parameters[%d] (metrics-config=counter_latencies=false) stops the request counters they read (triton-inference-server/server#8125); remove it", countersOff(&c.spec))+records
	case !c.alertsWanted(p):
		cond.Reason, cond.Message = reasonAlertsDisabled, "no alerts are composed: set spec.slo.alerts: true (the platform's default, alerts.enabled, is off)"+records
	default:
		cond.Status, cond.Reason = true, reasonAlertsComposed
		cond.Message = fmt.Sprintf("PrometheusRule %s alerts when the server is down or short of ready replicas for %dm, when for %s the mean queue time exceeds %d µs, failures exceed %s%% or a GPU's memory use exceeds %d%%, and when a pod restarts %d times in an hour",
			c.name(prometheusRuleName), s.unavailableMinutes, promDuration(sloFor), s.queueTimeUs, s.failurePercent, s.gpuMemoryPercent, s.restartsPerHour)
	}
	return cond
}

// addPrometheusRule composes the server's PrometheusRule: its recording
// rules, and its alerts when they are wanted.
func (c *Composer) addPrometheusRule(d *compose.Desired, p compose.Platform, problem *compose.Condition, labels map[string]string, owner compose.Owner, s slo) error {
	if !c.rulesWanted(p) || problem != nil {
		return nil
	}
	rs := ruleSet{
		series: series{namespace: c.id.Namespace, service: c.name("svc")}, deployment: c.name("deploy"),
		window: rateWindow(c.metricsInterval()), owner: owner, slo: s, alerts: c.alertsWanted(p),
	}
	_, err := d.Add(resPrometheusRule, prometheusRule(c.name(prometheusRuleName), c.id.Namespace, compose.Merge(labels, p.AlertRuleLabels), rs), compose.Exists)
	return err
}

// prometheusRule holds one group: the recording rules first, so the alerts
// after them read this evaluation's values (Prometheus evaluates a group's
// rules in order).
func prometheusRule(name, namespace string, labels map[string]string, rs ruleSet) *monitoringv1.PrometheusRule {
	return &monitoringv1.PrometheusRule{
		ObjectMeta: meta(name, namespace, labels),
		Spec: monitoringv1.PrometheusRuleSpec{Groups: []monitoringv1.RuleGroup{{
			Name:  "kalypso-tritonserver-" + rs.owner.TritonServer,
			Rules: rules(rs),
		}}},
	}
}

// rules are the recording rules, then the alerts when wanted.
func rules(rs ruleSet) []monitoringv1.Rule {
	if !rs.alerts {
		return recordingRules(rs)
	}
	return append(recordingRules(rs), alertingRules(rs)...)
}

// ruleLabels are the owner labels every recorded series and alert gets, so
// dashboards and routes can select by project, environment, application
// and server.
func ruleLabels(o compose.Owner) map[string]string {
	l := map[string]string{}
	for k, v := range map[string]string{
		"kalypso_project": o.Project, "kalypso_environment": o.Environment,
		"kalypso_application": o.Application, "kalypso_server": o.TritonServer,
	} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

func expr(s string) intstr.IntOrString { return intstr.FromString(s) }

// recordingRules: rates per server and model, summed over the server's
// pods, versions, GPU instances and (for failures) reasons. Per model, not
// per server: an ensemble (or a BLS model) counts each request under its
// own name and again under every model it calls (core
// src/ensemble_scheduler/ensemble_scheduler.cc, backend_model_instance.cc),
// so a server-wide sum would count a request several times and mix
// end-to-end times with per-step ones. Means are ratios of rates, recorded
// only where requests came (> 0), so an idle model records nothing rather
// than NaN. Failures leave out reason CANCELED: the client gave up, the
// server did not fail (the reason label exists from Triton 24.07; earlier
// series have none and all count).
func recordingRules(rs ruleSet) []monitoringv1.Rule {
	sel := rs.series.selector()
	failed := strings.TrimSuffix(sel, "}") + `,reason!="CANCELED"}`
	w := fmt.Sprintf("[%s]", promDuration(rs.window))
	byModel := "sum by (namespace, service, model) "
	labels := ruleLabels(rs.owner)
	record := func(name, e string) monitoringv1.Rule {
		return monitoringv1.Rule{Record: name, Expr: expr(e), Labels: labels}
	}
	gpu := "max by (namespace, service, pod, gpu_uuid) "
	return []monitoringv1.Rule{
		record(RecordSuccessRate, byModel+"(rate(nv_inference_request_success"+sel+w+"))"),
		record(RecordFailureRate, byModel+"(rate(nv_inference_request_failure"+failed+w+"))"),
		record(RecordQueueRate, byModel+"(rate(nv_inference_queue_duration_us"+sel+w+"))"),
		record(RecordDurationRate, byModel+"(rate(nv_inference_request_duration_us"+sel+w+"))"),
		record(RecordPending, byModel+"(nv_inference_pending_request_count"+sel+")"),
		record(RecordQueueTime, RecordQueueRate+sel+" / ("+RecordSuccessRate+sel+" > 0)"),
		record(RecordLatency, RecordDurationRate+sel+" / ("+RecordSuccessRate+sel+" > 0)"),
		record(RecordFailureRatio, RecordFailureRate+sel+" / (("+RecordSuccessRate+sel+" + "+RecordFailureRate+sel+") > 0)"),
		// Device-wide framebuffer use of each GPU the pod sees
		// (DCGM_FI_DEV_FB_USED/TOTAL in metrics.cc), per pod and GPU.
		record(RecordGPUMemory, gpu+"(nv_gpu_memory_used_bytes"+sel+") / ("+gpu+"(nv_gpu_memory_total_bytes"+sel+") > 0)"),
		// nv_gpu_utilization is a ratio 0..1 per GPU (metrics.cc).
		record(RecordGPUUtilPerPod, "avg by (namespace, service, pod) (nv_gpu_utilization"+sel+")"),
	}
}

// alertingRules: each alert carries the owner labels, the namespace (which
// an AlertmanagerConfig with the OnNamespace matcher strategy routes on)
// and a severity.
func alertingRules(rs ruleSet) []monitoringv1.Rule {
	sel := rs.series.selector()
	ns := strconv.Quote(rs.series.namespace)
	deploy := strconv.Quote(rs.deployment)
	server := rs.series.namespace + "/" + rs.owner.TritonServer
	unavailable := monitoringv1.Duration(promDuration(time.Duration(rs.slo.unavailableMinutes) * time.Minute))
	sloWait := monitoringv1.Duration(promDuration(sloFor))
	alert := func(name, severity, e string, wait *monitoringv1.Duration, summary, description string) monitoringv1.Rule {
		labels := compose.Merge(ruleLabels(rs.owner), map[string]string{"namespace": rs.series.namespace, "severity": severity})
		return monitoringv1.Rule{Alert: name, Expr: expr(e), For: wait, Labels: labels, Annotations: map[string]string{
			"summary": summary, "description": description,
		}}
	}
	return []monitoringv1.Rule{
		// No target of the server answers a scrape: every pod is gone,
		// crashed, or still loading its models (Triton serves metrics only
		// once loaded).
		alert(AlertServerDown, "critical", "absent(up"+sel+" == 1)", &unavailable,
			"Triton server "+server+" is down",
			fmt.Sprintf("No pod of KalypsoTritonServer %s has answered a metrics scrape for %s.", server, unavailable)),
		alert(AlertReplicasUnavailable, "warning",
			"kube_deployment_status_replicas_available{namespace="+ns+",deployment="+deploy+"} < on (namespace, deployment) kube_deployment_spec_replicas{namespace="+ns+",deployment="+deploy+"}",
			&unavailable, "Triton server "+server+" is short of ready replicas",
			fmt.Sprintf("Deployment %s has had {{ $value }} available replicas, fewer than it wants, for %s.", rs.deployment, unavailable)),
		alert(AlertQueueTimeHigh, "warning", fmt.Sprintf("%s%s > %d", RecordQueueTime, sel, rs.slo.queueTimeUs), &sloWait,
			"Triton server "+server+" queues requests too long",
			fmt.Sprintf("Requests for model {{ $labels.model }} wait {{ printf \"%%.0f\" $value }} µs on average in Triton's queue, above the objective of %d µs.", rs.slo.queueTimeUs)),
		alert(AlertFailureRatioHigh, "warning", fmt.Sprintf("%s%s * 100 > %s", RecordFailureRatio, sel, rs.slo.failurePercent), &sloWait,
			"Triton server "+server+" fails too many requests",
			fmt.Sprintf("{{ printf \"%%.2f\" $value }}%% of requests for model {{ $labels.model }} fail, above the objective of %s%%.", rs.slo.failurePercent)),
		alert(AlertGPUMemoryHigh, "warning", fmt.Sprintf("%s%s * 100 > %d", RecordGPUMemory, sel, rs.slo.gpuMemoryPercent), &sloWait,
			"Triton server "+server+" is running out of GPU memory",
			fmt.Sprintf("GPU {{ $labels.gpu_uuid }} of pod {{ $labels.pod }} has {{ printf \"%%.0f\" $value }}%% of its memory in use, above %d%%: another model or a larger batch may fail to load.", rs.slo.gpuMemoryPercent)),
		alert(AlertRestarting, "warning",
			fmt.Sprintf("sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total{namespace=%s,pod=~%s,container=%q}[1h])) >= %d",
				ns, strconv.Quote(rs.deployment+"-[a-z0-9]+-[a-z0-9]+"), containerName, rs.slo.restartsPerHour), nil,
			"Triton server "+server+" keeps restarting",
			fmt.Sprintf("Pod {{ $labels.pod }} restarted Triton {{ printf \"%%.0f\" $value }} times in the last hour (objective: fewer than %d).", rs.slo.restartsPerHour)),
	}
}

// promDuration writes a duration the way Prometheus does (5m, 1h30m).
func promDuration(d time.Duration) string { return model.Duration(d).String() }
