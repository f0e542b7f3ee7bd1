package tritonserver

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/prometheus/common/model"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/keda"
)

// KEDA autoscaling (README, "ScaledObject"): with engine keda the server
// composes a keda.sh/v1alpha1 ScaledObject instead of a
// HorizontalPodAutoscaler, and KEDA runs an HPA of its own
// (KEDA v2.20.1 controllers/keda/hpa.go). The function never composes an
// HPA and a ScaledObject together; Crossplane deletes the one it stops
// composing and applies the other in the same reconcile, and drops it from
// the composite's resourceRefs at once, so the next call cannot see it
// terminate (composition_functions.go). Until the garbage collector has
// removed the old HPA, two HPAs target the Deployment and the HPA
// controller scales with neither (AmbiguousSelector): the replicas stay
// where they are for those seconds.

const (
	resScaledObject = resource.Name("scaledobject")
	// KEDA labels its objects with the ScaledObject's name and refuses one
	// whose name or HPA's name exceeds 63 characters
	// (scaledobject_webhook.go verifyName); server names leave 4.
	scaledObjectSuffix = "so"
	kedaHPASuffix      = "kda"
	// kedaHPAOwnershipAnnotation on an HPA lets KEDA's webhook admit a
	// ScaledObject beside it.
	kedaHPAOwnershipAnnotation = "validations.keda.sh/hpa-ownership"
	reqScaledObject            = "scaledobject-schema"
	scaledObjectCRD            = "scaledobjects.keda.sh"
	// defaultPendingTarget is the pending requests per replica KEDA aims
	// for: a few batches' worth waiting behind the one running.
	defaultPendingTarget = 10
	// defaultP95TargetUs is the p95 request latency (µs) KEDA aims for.
	defaultP95TargetUs = 500000
	// minRateWindow bounds the queue-time query's rate window from below;
	// it spans at least four scrapes otherwise.
	minRateWindow = 2 * time.Minute
)

// Reasons of the Autoscaling condition for the keda engine.
const (
	reasonKEDANotInstalled    = "KEDANotInstalled"
	reasonKEDANotConfigured   = "KEDAPrometheusNotConfigured"
	reasonMetricNeedsKEDA     = "MetricNeedsKEDA"
	reasonLatencySummariesOff = "LatencySummariesOff"
	reasonMetricsNotScraped   = "MetricsNotScraped"
	reasonScaledObjectCompose = "ScaledObjectComposed"
)

// The autoscaling metrics (AutoscalingSpec.Metric).
const (
	metricCPU       = "cpu"
	metricQueueTime = "queueTime"
	metricPending   = "pendingRequests"
	metricP95       = "p95Latency"
)

// kedaOnly: metrics only the keda engine reads (no adapter metric).
func kedaOnly(metric string) bool { return metric == metricPending || metric == metricP95 }

// metricOf is the spec's metric; unset is cpu, the schema's default, which
// crossplane render does not apply.
func metricOf(a *v1alpha1.AutoscalingSpec) string { return cmp.Or(a.Metric, metricCPU) }

// engine is the server's autoscaling engine: its own, else the platform's.
func (c *Composer) engine(p compose.Platform) string {
	if a := c.spec.Autoscaling; a != nil && a.Engine != "" {
		return a.Engine
	}
	return p.AutoscalingEngine
}

// usesKEDA: autoscaling is on and KEDA runs it.
func (c *Composer) usesKEDA(p compose.Platform) bool {
	a := c.spec.Autoscaling
	return a != nil && a.Enabled && c.engine(p) == compose.EngineKEDA
}

// checksKEDAKind: KEDA's CRD is looked up while the keda engine is chosen
// and no ScaledObject is composed yet (with one composed, its CRD exists).
func (c *Composer) checksKEDAKind(p compose.Platform) bool {
	_, composed := c.observed[resScaledObject]
	return c.usesKEDA(p) && !composed
}

// kedaProblem says why no ScaledObject can be composed now, as an
// Autoscaling condition; nil when it can.
func (c *Composer) kedaProblem(p compose.Platform, required map[string][]resource.Required, res corev1.ResourceRequirements) *compose.Condition {
	_, composed := c.observed[resScaledObject]
	metric := metricOf(c.spec.Autoscaling)
	switch {
	case !composed && len(required[reqScaledObject]) == 0:
		chosen := "spec.autoscaling.engine is keda"
		if c.spec.Autoscaling.Engine == "" {
			chosen = "the platform's default autoscaling engine is keda"
		}
		return &compose.Condition{Type: ConditionAutoscaling, Reason: reasonKEDANotInstalled, Message: chosen + ", but " +
			compose.CRDMissing(scaledObjectCRD, ": install KEDA (v2.20 or later on Kubernetes 1.35), or set spec.autoscaling.engine: hpa")}
	case metric != metricCPU && p.KEDAPrometheusAddress == "":
		return &compose.Condition{Type: ConditionAutoscaling, Reason: reasonKEDANotConfigured, Message: fmt.Sprintf(
			"metric %s is read from Prometheus, but the platform sets no autoscaling.keda.prometheusAddress in its function input or EnvironmentConfig", metric)}
	case metric == metricP95 && !c.latencySummaries():
		return &compose.Condition{Type: ConditionAutoscaling, Reason: reasonLatencySummariesOff, Message: "metric p95Latency reads Triton's latency summaries: set spec.observability.metrics.latencySummaries: true (the pods roll once)"}
	case c.cpuRequestMissing(res):
		return &compose.Condition{Type: ConditionAutoscaling, Reason: "CPURequestMissing", Message: cpuRequestMessage}
	case c.deploy == nil:
		// KEDA's webhook checks the target: a cpu trigger's Deployment
		// must exist with CPU requests (scaledobject_webhook.go
		// verifyCPUMemoryScalers). Its creation event brings the next call.
		return &compose.Condition{Type: ConditionAutoscaling, Reason: reasonWaitingForDeployment, Message: "the ScaledObject is composed once the Deployment exists"}
	case metric != metricCPU && !c.metricsCondition(required).Status:
		// Without the server's series the queries return nothing, which
		// KEDA reads as 0 (ignoreNullValues): the server would never scale.
		return &compose.Condition{Type: ConditionAutoscaling, Reason: reasonMetricsNotScraped, Message: fmt.Sprintf(
			"metric %s is read from Prometheus, which finds the server's series through its ServiceMonitor: set spec.observability.enabled and spec.observability.metrics.enableServiceMonitor (the MetricsScraping condition says why there is none)", metric)}
	}
	return nil
}

// kedaHoldsDeployment: a ScaledObject with a cpu trigger runs and is kept
// (a problem stops a new one), and the spec drops the CPU request. KEDA's
// webhook then refuses every apply of that ScaledObject
// (verifyCPUMemoryScalers), which would stop the whole reconcile; so the
// Deployment keeps its request until the spec has one again or a new
// ScaledObject replaces the kept one.
func (c *Composer) kedaHoldsDeployment(p compose.Platform, required map[string][]resource.Required, res corev1.ResourceRequirements) bool {
	o, running := c.observed[resScaledObject]
	if !running || c.deploy == nil || !c.usesKEDA(p) || hasCPURequest(res) || !hasCPUTrigger(o.Resource.Object) {
		return false
	}
	return c.kedaProblem(p, required, res) != nil
}

// hasCPUTrigger: a ScaledObject scales on cpu.
func hasCPUTrigger(so map[string]any) bool {
	triggers, _, _ := unstructured.NestedSlice(so, "spec", "triggers")
	for _, t := range triggers {
		if m, ok := t.(map[string]any); ok && m["type"] == "cpu" {
			return true
		}
	}
	return false
}

// latencySummaries: Triton reports latency quantiles (args.go).
func (c *Composer) latencySummaries() bool {
	return c.metricsEnabled() && summariesAsked(&c.spec)
}

// summariesAsked: the spec opts in to Triton's latency summaries.
func summariesAsked(spec *v1alpha1.KalypsoTritonServerSpec) bool {
	o := spec.Observability
	return o != nil && o.Metrics != nil && o.Metrics.LatencySummaries
}

// keptScaledObject is the observed ScaledObject that addScaledObject keeps
// as it is while a problem stands (its HPA still scales within its old
// bounds), or nil.
func (c *Composer) keptScaledObject(p compose.Platform, required map[string][]resource.Required, res corev1.ResourceRequirements) *composed.Unstructured {
	o, ok := c.observed[resScaledObject]
	if !ok || !c.usesKEDA(p) || c.kedaProblem(p, required, res) == nil {
		return nil
	}
	return o.Resource
}

// scaledObjectBounds are a ScaledObject's replica counts, lo and hi where
// it sets none.
func scaledObjectBounds(so *composed.Unstructured, lo, hi int32) (int32, int32) {
	if v, ok := compose.Int(so.Object, "spec", "minReplicaCount"); ok {
		lo = int32(v)
	}
	if v, ok := compose.Int(so.Object, "spec", "maxReplicaCount"); ok {
		hi = int32(v)
	}
	return lo, hi
}

// replicaBounds are the autoscaler's replica counts, the HPA's and the
// ScaledObject's: the minimum is always at least 1 (KEDA's default of 0
// would scale to zero), and the maximum no lower than it.
func replicaBounds(a *v1alpha1.AutoscalingSpec) (minReplicas, maxReplicas int32) {
	minReplicas = max(ptr.Deref(a.MinReplicas, 1), 1)
	return minReplicas, max(ptr.Deref(a.MaxReplicas, minReplicas), minReplicas)
}

// scaledObject is the server's ScaledObject: bounds and scale-down window
// as for the HPA, one trigger for the metric. minReplicaCount is always
// set, to at least 1: KEDA's default of 0 would scale an idle GPU server
// to zero, and nothing would hold its requests while it came back.
func scaledObject(name, hpaName, namespace, deploymentName string, labels map[string]string, a *v1alpha1.AutoscalingSpec, trigger keda.Trigger) *keda.ScaledObject {
	minReplicas, maxReplicas := replicaBounds(a)
	return &keda.ScaledObject{
		ObjectMeta: meta(name, namespace, labels),
		Spec: keda.ScaledObjectSpec{
			ScaleTargetRef:  keda.ScaleTarget{APIVersion: "apps/v1", Kind: "Deployment", Name: deploymentName},
			MinReplicaCount: ptr.To(minReplicas),
			MaxReplicaCount: ptr.To(maxReplicas),
			Advanced: &keda.Advanced{HorizontalPodAutoscalerConfig: &keda.HorizontalPodAutoscalerConfig{
				Name: hpaName,
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleDown: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: ptr.To(ptr.Deref(a.ScaleDownStabilizationSeconds, defaultScaleDownWindow)),
					},
				},
			}},
			Triggers: []keda.Trigger{trigger},
		},
	}
}

// kedaTarget is the metric's target: the spec's, else its default.
func kedaTarget(a *v1alpha1.AutoscalingSpec) int32 {
	switch metricOf(a) {
	case metricQueueTime:
		return ptr.Deref(a.Target, defaultQueueTargetUs)
	case metricPending:
		return ptr.Deref(a.Target, defaultPendingTarget)
	case metricP95:
		return ptr.Deref(a.Target, defaultP95TargetUs)
	}
	return ptr.Deref(a.Target, defaultCPUTarget)
}

// series selects one server's Triton series: the namespace and service
// labels the Prometheus Operator gives the targets of its ServiceMonitor.
type series struct{ namespace, service string }

func (s series) selector() string {
	return fmt.Sprintf("{namespace=%s,service=%s}", strconv.Quote(s.namespace), strconv.Quote(s.service))
}

// queueTimeQuery is the mean queue time per request in µs over the window
// of the server's busiest model: Triton adds every successful request's
// queue time to nv_inference_queue_duration_us and counts it in
// nv_inference_request_success (triton-inference-server/core
// src/infer_stats.cc, UpdateSuccess), per model. Summed over the server's
// pods, taken per model (an ensemble counts each request again under every
// model it calls, alerts.go), the worst model standing for the server, and
// 0 without traffic (KEDA's Prometheus scaler accepts one series only).
func queueTimeQuery(s series, window time.Duration) string {
	w := fmt.Sprintf("[%ds]", int(window.Seconds()))
	return "max(sum by (model) (rate(nv_inference_queue_duration_us" + s.selector() + w + ")) / " +
		"(sum by (model) (rate(nv_inference_request_success" + s.selector() + w + ")) > 0)) or vector(0)"
}

// pendingQuery is the requests waiting in the server's Triton processes, a
// gauge per model (Triton 23.09 and later, src/metrics.cc).
func pendingQuery(s series) string {
	return "sum(nv_inference_pending_request_count" + s.selector() + ") or vector(0)"
}

// p95Query is the highest 95th percentile of request latency in µs among
// the server's pods, models and GPU instances: Triton keeps one summary per
// model, version and instance (its default quantiles include 0.95, over the
// last 60 s; src/metric_model_reporter.cc), and quantiles cannot be
// aggregated, so the worst one stands for the server. A window without
// requests reports NaN, which KEDA's Prometheus scaler reads as 0
// (ignoreNullValues, its default).
func p95Query(s series) string {
	return "max(nv_inference_request_summary_us" + strings.TrimSuffix(s.selector(), "}") + `,quantile="0.95"}) or vector(0)`
}

// rateWindow spans four scrapes, and at least minRateWindow. The interval
// is a Prometheus duration (checkInterval), which may use d, w and y.
func rateWindow(interval string) time.Duration {
	d, err := model.ParseDuration(interval)
	if err != nil {
		return minRateWindow
	}
	return max(4*time.Duration(d), minRateWindow)
}

// kedaTrigger is the one trigger of the server's ScaledObject.
//
//   - cpu: KEDA's cpu scaler, utilisation of the CPU request as with the HPA.
//   - queueTime: metricType Value. A time per request does not grow with
//     the replicas serving it; with AverageValue (KEDA's default) the HPA
//     would divide it by the replica count and scale down a server whose
//     queue is long (TestKEDAMetricTypes shows both).
//   - pendingRequests: AverageValue. A count does grow with the load the
//     replicas share: the HPA aims for the target per replica.
//   - p95Latency: Value, a time per request as queueTime.
func kedaTrigger(a *v1alpha1.AutoscalingSpec, p compose.Platform, s series, project, interval string) keda.Trigger {
	target := strconv.Itoa(int(kedaTarget(a)))
	metric := metricOf(a)
	if metric == metricCPU {
		return keda.Trigger{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": target}}
	}
	t := keda.Trigger{Type: "prometheus", Name: metric, Metadata: map[string]string{
		"serverAddress": p.KEDAPrometheusAddress,
		"threshold":     target,
	}}
	switch metric {
	case metricQueueTime:
		t.MetricType = autoscalingv2.ValueMetricType
		t.Metadata["query"] = queueTimeQuery(s, rateWindow(interval))
	case metricP95:
		t.MetricType = autoscalingv2.ValueMetricType
		t.Metadata["query"] = p95Query(s)
	default:
		t.MetricType = autoscalingv2.AverageValueMetricType
		t.Metadata["query"] = pendingQuery(s)
	}
	if p.KEDATenantHeader != "" {
		t.Metadata["customHeaders"] = p.KEDATenantHeader + "=" + project
	}
	if p.KEDAClusterTriggerAuthentication != "" {
		t.AuthenticationRef = &keda.AuthenticationRef{Kind: "ClusterTriggerAuthentication", Name: p.KEDAClusterTriggerAuthentication}
		if p.KEDAAuthModes != "" {
			t.Metadata["authModes"] = p.KEDAAuthModes
		}
	}
	return t
}

// kedaCondition reports the keda engine: its problem, or the ScaledObject.
func (c *Composer) kedaCondition(p compose.Platform, problem *compose.Condition, required map[string][]resource.Required, res corev1.ResourceRequirements) compose.Condition {
	_, hpa := c.observed[resHPA]
	_, so := c.observed[resScaledObject]
	switch {
	case problem != nil:
		cond := *problem
		if hpa {
			cond.Message += fmt.Sprintf("; HorizontalPodAutoscaler %s is kept as it is until then", c.name("hpa"))
		} else if so {
			cond.Message += fmt.Sprintf("; ScaledObject %s is kept as it is until then", c.name(scaledObjectSuffix))
		}
		if c.kedaHoldsDeployment(p, required, res) {
			cond.Message += ", and the Deployment too: KEDA refuses a ScaledObject on cpu for a Deployment without a CPU request"
		}
		return cond
	}
	a := c.spec.Autoscaling
	minReplicas, maxReplicas := replicaBounds(a)
	return compose.Condition{Type: ConditionAutoscaling, Status: true, Reason: reasonScaledObjectCompose, Message: fmt.Sprintf(
		"ScaledObject %s makes KEDA scale between %d and %d replicas through HorizontalPodAutoscaler %s, aiming at %s", c.name(scaledObjectSuffix), minReplicas,
		maxReplicas, c.name(kedaHPASuffix), targetText(a))}
}

// targetText says what the autoscaler aims at, with its unit.
func targetText(a *v1alpha1.AutoscalingSpec) string {
	switch metricOf(a) {
	case metricQueueTime:
		return fmt.Sprintf("a mean queue time of %d µs per request", kedaTarget(a))
	case metricPending:
		return fmt.Sprintf("%d pending requests per replica", kedaTarget(a))
	case metricP95:
		return fmt.Sprintf("a p95 request latency of %d µs", kedaTarget(a))
	}
	return fmt.Sprintf("%d%% of the CPU request", kedaTarget(a))
}

// addScaledObject composes the ScaledObject of the keda engine, or keeps
// the one observed while a problem stands (dropping it would delete KEDA's
// HPA and leave the Deployment at whatever replicas it last chose).
func (c *Composer) addScaledObject(d *compose.Desired, p compose.Platform, project string, labels map[string]string, required map[string][]resource.Required, res corev1.ResourceRequirements) error {
	if !c.usesKEDA(p) {
		return nil
	}
	if c.kedaProblem(p, required, res) != nil {
		if o := c.keptScaledObject(p, required, res); o != nil {
			_, err := d.Keep(resScaledObject, o, compose.Exists)
			return err
		}
		return nil
	}
	a := c.spec.Autoscaling
	ns := c.id.Namespace
	trigger := kedaTrigger(a, p, series{namespace: ns, service: c.name("svc")}, project, c.metricsInterval())
	_, err := d.Add(resScaledObject, scaledObject(c.name(scaledObjectSuffix), c.name(kedaHPASuffix), ns, c.name("deploy"), labels, a, trigger), compose.Exists)
	return err
}
