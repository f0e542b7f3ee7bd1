package project

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/crossplane/function-sdk-go/resource"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Showback (README, "Showback"): with the platform's showback on, every
// environment's ResourceQuota counts GPU requests (a key that never limits
// where the project sets no GPU quota), the project's status shows use
// against quota per environment, and each environment namespace gets a
// PrometheusRule recording GPUs requested and GPU-hours by project,
// environment and application, joined from kube-state-metrics' namespace
// and pod labels. Cost labels go onto Namespaces (and, by the servers, onto
// Deployments), never into pod templates.

const (
	ConditionShowback = "Showback"

	reqPrometheusRule = "prometheusrule-schema"
)

// The showback recording rules.
const (
	RecordGPUsRequested      = "kalypso:gpus_requested:sum"
	RecordGPUsRequestedByApp = "kalypso:gpus_requested_by_application:sum"
	RecordGPUHours           = "kalypso:gpu_hours:1h"
	RecordGPUHoursByApp      = "kalypso:gpu_hours_by_application:1h"
)

func showbackPart(env string) resource.Name { return partName("showback", env) }

// checkCostLabels refuses cost label values that are not label values.
// Keys the platform does not allow are not refused (costLabels): allowing
// them is the platform's choice, and a change of its list must not stop
// every project's reconciles.
func (c *Composer) checkCostLabels() error {
	for _, k := range slices.Sorted(maps.Keys(c.spec.CostLabels)) {
		if errs := validation.IsValidLabelValue(c.spec.CostLabels[k]); len(errs) > 0 {
			return fmt.Errorf("spec.costLabels[%s]: %q is not a label value: %s", k, c.spec.CostLabels[k], strings.Join(errs, "; "))
		}
	}
	return nil
}

// costLabels are the spec's cost labels whose keys the platform allows
// (showback.costLabelKeys), and what is said of the others.
func (c *Composer) costLabels(p compose.Platform) (map[string]string, string) {
	allowed := map[string]string{}
	var refused []string
	for _, k := range slices.Sorted(maps.Keys(c.spec.CostLabels)) {
		if slices.Contains(p.CostLabelKeys, k) {
			allowed[k] = c.spec.CostLabels[k]
		} else {
			refused = append(refused, k)
		}
	}
	if len(refused) == 0 {
		return allowed, ""
	}
	keys := "none"
	if len(p.CostLabelKeys) > 0 {
		keys = strings.Join(p.CostLabelKeys, ", ")
	}
	return allowed, fmt.Sprintf("spec.costLabels %s: the platform allows only these cost label keys (showback.costLabelKeys): %s; those labels are left off the Namespaces", strings.Join(refused, ", "), keys)
}

// composeShowback composes the recording rules of every live environment
// when showback is on and PrometheusRules are served. A cost label the platform does not allow comes first in the condition.
func (c *Composer) composeShowback(d *compose.Desired, p compose.Platform, live []string, required map[string][]resource.Required) (compose.Condition, error) {
	cond, err := c.composeShowbackRules(d, p, live, required)
	if _, problem := c.costLabels(p); problem != "" {
		cond.Status, cond.Reason, cond.Message = false, "CostLabelNotAllowed", problem+"; "+cond.Message
	}
	return cond, err
}

func (c *Composer) composeShowbackRules(d *compose.Desired, p compose.Platform, live []string, required map[string][]resource.Required) (compose.Condition, error) {
	cond := compose.Condition{Type: ConditionShowback}
	switch {
	case !p.ShowbackEnabled:
		cond.Reason, cond.Message = "ShowbackDisabled", "the platform does not track GPU use (function input showback.enabled)"
		return cond, nil
	case !c.composesKind(compose.KindPrometheusRule.Kind) && len(required[reqPrometheusRule]) == 0:
		cond.Reason, cond.Message = "PrometheusRuleCRDMissing", compose.CRDMissing("prometheusrules.monitoring.coreos.com", ", so no showback rules are recorded (the status still shows GPU use against quota): install the Prometheus Operator's CRDs")
		return cond, nil
	}
	for _, env := range live {
		ns := c.spec.Environments[env].Namespace
		m := c.meta(compose.Owner{Project: c.name, Environment: env}, "showback", c.objectName(env, "showback"), ns)
		m.Labels = compose.Merge(m.Labels, p.AlertRuleLabels)
		rule := &monitoringv1.PrometheusRule{ObjectMeta: m, Spec: monitoringv1.PrometheusRuleSpec{Groups: []monitoringv1.RuleGroup{
			showbackGroup("kalypso-showback-"+c.name+"-"+env, ns, p.DefaultGPU().Resource, p.CostLabelKeys),
		}}}
		if _, err := d.Add(showbackPart(env), rule, compose.Exists); err != nil {
			return cond, err
		}
	}
	cond.Status, cond.Reason = true, "ShowbackComposed"
	cond.Message = "each environment namespace records GPUs requested and GPU-hours (PrometheusRule <project>-<environment>-showback); kube-state-metrics must expose the namespace and pod labels they join on (README, \"Showback\")"
	return cond, nil
}

// composesKind: an object of the kind is observed, so it is served.
func (c *Composer) composesKind(kind string) bool {
	for _, o := range c.observed {
		if o.Resource.GetKind() == kind {
			return true
		}
	}
	return false
}

// showbackGroup is an environment's showback rule group.
func showbackGroup(name, namespace string, gpu corev1.ResourceName, costKeys []string) monitoringv1.RuleGroup {
	interval := monitoringv1.Duration(showbackInterval)
	return monitoringv1.RuleGroup{Name: name, Interval: &interval, Rules: showbackRules(namespace, gpu, costKeys)}
}

// showbackInterval is the showback group's evaluation interval: GPU-hours
// add up its samples, each worth a minute.
const showbackInterval = "1m"

// showbackRules: GPUs requested in the namespace by pods that hold them
// (Pending or Running: the quota does not count Failed or Succeeded pods,
// k8s pkg/quota/v1/evaluator/core/pods.go, but kube-state-metrics exports
// their requests until they are deleted), labelled with the namespace's
// project, environment and cost labels (kube_namespace_labels), also by
// application (kube_pod_labels), and GPU-hours over the last hour: the
// recorded GPUs summed over the hour's one-minute samples, a missing
// minute (no GPU pod) counting as none. Every kube-state-metrics series is
// taken once (max by its identity), so two unsharded replicas neither
// double the count nor break the joins.
func showbackRules(namespace string, gpu corev1.ResourceName, costKeys []string) []monitoringv1.Rule {
	ns := "namespace=" + strconv.Quote(namespace)
	requests := fmt.Sprintf(`max by (namespace, pod, container) (kube_pod_container_resource_requests{%s,resource=%q})`, ns, compose.KSMResource(gpu))
	holding := fmt.Sprintf(` * on (namespace, pod) group_left () max by (namespace, pod) (kube_pod_status_phase{%s,phase=~"Pending|Running"} == 1)`, ns)
	nsLabels := []string{compose.KSMLabel(compose.LabelProject), compose.KSMLabel(compose.LabelEnvironment)}
	for _, k := range costKeys {
		nsLabels = append(nsLabels, compose.KSMLabel(k))
	}
	byNS := strings.Join(nsLabels, ", ")
	withNamespace := " * on (namespace) group_left (" + byNS + ") max by (namespace, " + byNS + ") (kube_namespace_labels{" + ns + "})"
	app := compose.KSMLabel(compose.LabelApplication)
	byApp := fmt.Sprintf("sum by (namespace, %s) (%s%s * on (namespace, pod) group_left (%s) max by (namespace, pod, %s) (kube_pod_labels{%s}))", app, requests, holding, app, app, ns)
	rec := func(name, e string) monitoringv1.Rule {
		return monitoringv1.Rule{Record: name, Expr: intstr.FromString(e)}
	}
	hours := func(record string) string {
		return "sum_over_time(" + record + "{" + ns + "}[1h]) / 60"
	}
	return []monitoringv1.Rule{
		rec(RecordGPUsRequested, "sum by (namespace) ("+requests+holding+")"+withNamespace),
		rec(RecordGPUsRequestedByApp, byApp+withNamespace),
		rec(RecordGPUHours, hours(RecordGPUsRequested)),
		rec(RecordGPUHoursByApp, hours(RecordGPUsRequestedByApp)),
	}
}
