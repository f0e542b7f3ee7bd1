package tritonserver

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/fn/compose/keda"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

const prometheusAddress = "http://prometheus-operated.monitoring.svc:9090"

// kedaPlatform: a platform whose default engine is keda, with Prometheus.
func kedaPlatform(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Autoscaling: &v1beta1.AutoscalingDefaults{
		Engine: ptr.To(compose.EngineKEDA), KEDA: &v1beta1.KEDADefaults{PrometheusAddress: ptr.To(prometheusAddress)},
	}}})
}

// kedaNoPrometheus: keda by default, but no Prometheus address.
func kedaNoPrometheus(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Autoscaling: &v1beta1.AutoscalingDefaults{Engine: ptr.To(compose.EngineKEDA)}}})
}

// The specs of TestComposeKEDA: a CPU request, and the ServiceMonitor
// through which Prometheus finds Triton's series.
const (
	cpuReq    = "resources: {requests: {cpu: '1'}}\n"
	smOn      = "observability: {enabled: true, metrics: {enableServiceMonitor: true}}\n"
	smAndP95  = "observability: {enabled: true, metrics: {enableServiceMonitor: true, latencySummaries: true}}\n"
	plainSpec = cpuReq + smOn
	hpaSpec   = plainSpec + "autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6}\n"
	kedaSpec  = plainSpec + "autoscaling: {enabled: true, engine: keda, minReplicas: 2, maxReplicas: 6, metric: queueTime}\n"
	queueSpec = plainSpec + "autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6, metric: queueTime}\n"
)

func TestComposeKEDA(t *testing.T) {
	running := func(t *testing.T) map[string]string { return created(t, plainSpec, deployAvailable) }
	hpaRunning := func(t *testing.T) map[string]string { return created(t, hpaSpec, deployAvailable) }
	kedaRunning := func(t *testing.T) map[string]string { return createdOn(t, kedaPlatform(t), queueSpec, deployAvailable) }
	cases := map[string]struct {
		reason   string
		platform func(*testing.T) compose.Platform
		spec     string
		observed func(*testing.T) map[string]string
		noCRD    bool
		hpa, so  bool
		cond     cond
		message  string
		// holdsCPU: the Deployment keeps the CPU request the spec dropped.
		holdsCPU bool
		// replicas, when set, is the Deployment's spec.replicas.
		replicas int32
	}{
		"FirstCall": {
			reason:   "Before the Deployment exists: no ScaledObject yet (KEDA's webhook checks the target), the next call brings it.",
			platform: kedaPlatform, spec: kedaSpec,
			cond: cond{false, reasonWaitingForDeployment}, message: "the ScaledObject is composed once the Deployment exists",
		},
		"EngineKEDA": {
			reason:   "engine: keda with KEDA installed: a ScaledObject, no HPA.",
			platform: kedaPlatform, spec: kedaSpec, observed: running,
			so: true, cond: cond{true, reasonScaledObjectCompose},
			message: "ScaledObject resnet-so makes KEDA scale between 2 and 6 replicas through HorizontalPodAutoscaler resnet-kda, aiming at a mean queue time of 50000 µs per request",
		},
		"PlatformDefaultKEDA": {
			reason:   "No engine in the spec: the platform's default decides.",
			platform: kedaPlatform, spec: queueSpec, observed: running,
			so: true, cond: cond{true, reasonScaledObjectCompose},
		},
		"PlatformDefaultHPA": {
			reason:   "The built-in default is hpa: installing KEDA changes nothing by itself.",
			platform: platform, spec: hpaSpec, observed: running,
			hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"SpecOverridesPlatform": {
			reason:   "engine: hpa in the spec wins over a keda platform.",
			platform: kedaPlatform, spec: plainSpec + "autoscaling: {enabled: true, engine: hpa, maxReplicas: 6}\n", observed: running,
			hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"KEDANotInstalled": {
			reason:   "engine: keda without KEDA's CRD: nothing is composed for autoscaling, and the condition says what to install.",
			platform: kedaPlatform, spec: kedaSpec, observed: running, noCRD: true,
			cond: cond{false, reasonKEDANotInstalled}, message: "spec.autoscaling.engine is keda, but the scaledobjects.keda.sh CRD is not installed: install KEDA",
		},
		"KEDANotInstalledPlatformDefault": {
			reason:   "…and says when the choice is the platform's.",
			platform: kedaPlatform, spec: queueSpec, observed: running, noCRD: true,
			cond: cond{false, reasonKEDANotInstalled}, message: "the platform's default autoscaling engine is keda",
		},
		"KEDANotInstalledKeepsHPA": {
			reason:   "A running server switched to keda before KEDA is installed keeps its HPA, and says so.",
			platform: kedaPlatform, spec: kedaSpec, observed: hpaRunning, noCRD: true,
			hpa: true, cond: cond{false, reasonKEDANotInstalled}, message: "HorizontalPodAutoscaler resnet-hpa is kept as it is until then",
		},
		"SwitchToKEDA": {
			reason:   "With KEDA installed the switch drops the HPA (Crossplane deletes it) and composes the ScaledObject in the same call: never both composed. The HPA tells KEDA's webhook to admit the ScaledObject beside it while it terminates.",
			platform: kedaPlatform, spec: kedaSpec, observed: hpaRunning,
			so: true, cond: cond{true, reasonScaledObjectCompose},
		},
		"SwitchBackToHPA": {
			reason:   "Back to hpa: the ScaledObject goes (KEDA's HPA with it) and the HPA comes.",
			platform: kedaPlatform, spec: plainSpec + "autoscaling: {enabled: true, engine: hpa, minReplicas: 2, maxReplicas: 6}\n", observed: kedaRunning,
			hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"AutoscalingOff": {
			reason:   "Autoscaling off: the ScaledObject goes with it.",
			platform: kedaPlatform, spec: plainSpec + "replicas: 2\n", observed: kedaRunning,
			cond: cond{false, "AutoscalingDisabled"},
		},
		"PrometheusNotConfigured": {
			reason:   "A Prometheus metric without the platform's Prometheus address: no ScaledObject, and the condition names the setting.",
			platform: kedaNoPrometheus, spec: kedaSpec, observed: running,
			cond: cond{false, reasonKEDANotConfigured}, message: "autoscaling.keda.prometheusAddress",
		},
		"PrometheusNotConfiguredKeepsScaledObject": {
			reason:   "A running ScaledObject is kept while the platform's address is missing: dropping it would leave the replicas where KEDA left them.",
			platform: kedaNoPrometheus, spec: kedaSpec, observed: kedaRunning,
			so: true, cond: cond{false, reasonKEDANotConfigured}, message: "ScaledObject resnet-so is kept as it is until then",
		},
		"KeptScaledObjectBounds": {
			reason:   "A kept ScaledObject's HPA still scales within its old bounds (2..6), so the function keeps the observed count within those, not the spec's new minimum of 5, which that HPA would undo.",
			platform: kedaNoPrometheus, spec: plainSpec + "autoscaling: {enabled: true, engine: keda, minReplicas: 5, maxReplicas: 6, metric: queueTime}\n", observed: kedaRunning,
			so: true, cond: cond{false, reasonKEDANotConfigured}, message: "ScaledObject resnet-so is kept as it is until then", replicas: 2,
		},
		"NotScraped": {
			reason:   "A Prometheus metric without the ServiceMonitor: the query would find no series, which KEDA reads as 0, so no ScaledObject.",
			platform: kedaPlatform, spec: cpuReq + "autoscaling: {enabled: true, maxReplicas: 6, metric: queueTime}\n", observed: running,
			cond: cond{false, reasonMetricsNotScraped}, message: "set spec.observability.enabled and spec.observability.metrics.enableServiceMonitor",
		},
		"CPUNeedsNoPrometheus": {
			reason:   "cpu through KEDA reads the metrics API, not Prometheus.",
			platform: kedaNoPrometheus, spec: cpuReq + "autoscaling: {enabled: true, maxReplicas: 6}\n", observed: running,
			so: true, cond: cond{true, reasonScaledObjectCompose}, message: "aiming at 80% of the CPU request",
		},
		"CPUWithoutRequest": {
			reason:   "cpu through KEDA needs a CPU request as with the HPA.",
			platform: kedaPlatform, spec: "autoscaling: {enabled: true, maxReplicas: 6}\n", observed: running,
			cond: cond{false, "CPURequestMissing"}, message: "set spec.resources.requests.cpu",
		},
		"CPURequestDroppedUnderKEDA": {
			reason:   "A running cpu ScaledObject and the spec drops the CPU request: KEDA would refuse every update of the ScaledObject, so it and the Deployment are kept as they are.",
			platform: kedaPlatform, spec: smOn + "autoscaling: {enabled: true, maxReplicas: 6}\n",
			observed: func(t *testing.T) map[string]string {
				return createdOn(t, kedaPlatform(t), plainSpec+"autoscaling: {enabled: true, maxReplicas: 6}\n", deployAvailable)
			},
			so: true, cond: cond{false, "CPURequestMissing"}, message: "ScaledObject resnet-so is kept as it is until then, and the Deployment too",
			holdsCPU: true,
		},
		"CPURequestDroppedWithMetricChange": {
			reason:   "The same when the metric changes too but the new ScaledObject cannot be composed (no ServiceMonitor): the kept one still scales on cpu, so the Deployment keeps its request.",
			platform: kedaPlatform, spec: "autoscaling: {enabled: true, maxReplicas: 6, metric: queueTime}\n",
			observed: func(t *testing.T) map[string]string {
				return createdOn(t, kedaPlatform(t), plainSpec+"autoscaling: {enabled: true, maxReplicas: 6}\n", deployAvailable)
			},
			so: true, cond: cond{false, reasonMetricsNotScraped}, message: "ScaledObject resnet-so is kept as it is until then, and the Deployment too",
			holdsCPU: true,
		},
		"CPURequestDroppedNewScaledObject": {
			reason:   "A new ScaledObject on queueTime replaces the cpu one: nothing holds the Deployment, which drops its request.",
			platform: kedaPlatform, spec: smOn + "autoscaling: {enabled: true, maxReplicas: 6, metric: queueTime}\n",
			observed: func(t *testing.T) map[string]string {
				return createdOn(t, kedaPlatform(t), plainSpec+"autoscaling: {enabled: true, maxReplicas: 6}\n", deployAvailable)
			},
			so: true, cond: cond{true, reasonScaledObjectCompose},
		},
		"P95WithoutSummaries": {
			reason:   "p95Latency reads Triton's summaries: without them, no ScaledObject, and the condition names the field.",
			platform: kedaPlatform, spec: cpuReq + smOn + "autoscaling: {enabled: true, maxReplicas: 6, metric: p95Latency}\n", observed: running,
			cond: cond{false, reasonLatencySummariesOff}, message: "set spec.observability.metrics.latencySummaries: true",
		},
		"P95": {
			reason:   "…with them, the ScaledObject.",
			platform: kedaPlatform, spec: cpuReq + smAndP95 + "autoscaling: {enabled: true, maxReplicas: 6, metric: p95Latency}\n", observed: running,
			so: true, cond: cond{true, reasonScaledObjectCompose}, message: "aiming at a p95 request latency of 500000 µs",
		},
		"P95NeedsKEDA": {
			reason:   "p95Latency on the hpa engine: no HPA could read it.",
			platform: platform, spec: cpuReq + smAndP95 + "autoscaling: {enabled: true, maxReplicas: 6, metric: p95Latency}\n", observed: running,
			cond: cond{false, reasonMetricNeedsKEDA}, message: "metric p95Latency is read by KEDA from Prometheus",
		},
		"PendingNeedsKEDA": {
			reason:   "pendingRequests on the hpa engine: no HPA could read it; the condition says to choose keda.",
			platform: platform, spec: plainSpec + "autoscaling: {enabled: true, maxReplicas: 6, metric: pendingRequests}\n", observed: running,
			cond: cond{false, reasonMetricNeedsKEDA}, message: "set spec.autoscaling.engine: keda",
		},
		"PendingNeedsKEDAKeepsHPA": {
			reason:   "…and a running HPA is kept until then.",
			platform: platform, spec: plainSpec + "autoscaling: {enabled: true, maxReplicas: 6, metric: pendingRequests}\n", observed: hpaRunning,
			hpa: true, cond: cond{false, reasonMetricNeedsKEDA}, message: "HorizontalPodAutoscaler resnet-hpa is kept as it is until then",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := map[string][]string{reqApplication: {readyApp}, reqMetricsAPI: {metricsAPISvc}, reqServiceMonitor: {smCRD}}
			if !tc.noCRD {
				req[reqScaledObject] = []string{kedaCRD}
			}
			var observed map[string]string
			if tc.observed != nil {
				observed = tc.observed(t)
			}
			r := scene{xr: serverXR(tc.spec, snapshot), observed: observed, required: req}.run(t, int64s, tc.platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			if _, ok := r.Desired[resHPA]; ok != tc.hpa {
				t.Errorf("%s\nHPA composed: want %v, got %v", tc.reason, tc.hpa, ok)
			}
			if _, ok := r.Desired[resScaledObject]; ok != tc.so {
				t.Errorf("%s\nScaledObject composed: want %v, got %v", tc.reason, tc.so, ok)
			}
			if got := condsOf(r)[ConditionAutoscaling]; got != tc.cond {
				t.Errorf("%s\nAutoscaling: want %+v, got %+v (%s)", tc.reason, tc.cond, got, message(r, ConditionAutoscaling))
			}
			if m := message(r, ConditionAutoscaling); !strings.Contains(m, tc.message) {
				t.Errorf("%s\nAutoscaling message: want it to contain %q, got %q", tc.reason, tc.message, m)
			}
			if tc.replicas != 0 {
				if got := decodeStrict[appsv1.Deployment](t, r, resDeployment).Spec.Replicas; got == nil || *got != tc.replicas {
					t.Errorf("%s\nDeployment replicas: want %d, got %v", tc.reason, tc.replicas, ptr.Deref(got, -1))
				}
			}
			if !strings.Contains(tc.spec, "cpu: '1'") && observed != nil {
				d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
				_, hasCPU := d.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]
				if hasCPU != tc.holdsCPU {
					t.Errorf("%s\nDeployment keeps the CPU request the spec dropped: want %v, got %v", tc.reason, tc.holdsCPU, hasCPU)
				}
			}
		})
	}
}

func TestScaledObject(t *testing.T) {
	authPlatform := func(t *testing.T) compose.Platform {
		t.Helper()
		return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Autoscaling: &v1beta1.AutoscalingDefaults{
			Engine: ptr.To(compose.EngineKEDA), KEDA: &v1beta1.KEDADefaults{
				PrometheusAddress: ptr.To(prometheusAddress), ClusterTriggerAuthentication: ptr.To("kalypso-prometheus"),
				AuthModes: ptr.To("bearer"), TenantHeader: ptr.To("X-Scope-OrgID"),
			},
		}}})
	}
	const sel = `{namespace="vision-dev",service="resnet-svc"}`
	advanced := func(s int32) *keda.Advanced {
		return &keda.Advanced{HorizontalPodAutoscalerConfig: &keda.HorizontalPodAutoscalerConfig{Name: "resnet-kda", Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(s)},
		}}}
	}
	target := keda.ScaleTarget{APIVersion: "apps/v1", Kind: "Deployment", Name: "resnet-deploy"}
	queueTrigger := func(threshold, window string) []keda.Trigger {
		return []keda.Trigger{{Type: "prometheus", Name: "queueTime", MetricType: autoscalingv2.ValueMetricType, Metadata: map[string]string{
			"serverAddress": prometheusAddress, "threshold": threshold,
			"query": "max(sum by (model) (rate(nv_inference_queue_duration_us" + sel + "[" + window + "])) / (sum by (model) (rate(nv_inference_request_success" + sel + "[" + window + "])) > 0)) or vector(0)",
		}}}
	}
	cases := map[string]struct {
		reason   string
		platform func(*testing.T) compose.Platform
		spec     string
		want     keda.ScaledObjectSpec
	}{
		"QueueTime": {
			reason:   "Queue time per request in µs, as a Value (not divided by the replicas); the rate window spans four 15 s scrapes, at least 2m; minReplicaCount is always set (KEDA's default 0 would scale to zero); KEDA's HPA is named to fit 63 characters.",
			platform: kedaPlatform,
			spec:     smOn + "autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}\n",
			want: keda.ScaledObjectSpec{
				ScaleTargetRef: target, MinReplicaCount: ptr.To[int32](1), MaxReplicaCount: ptr.To[int32](4), Advanced: advanced(600),
				Triggers: queueTrigger("50000", "120s"),
			},
		},
		"QueueTimeSlowScrapes": {
			reason:   "With a 1m scrape interval the window is 4m.",
			platform: kedaPlatform,
			spec:     "observability: {enabled: true, metrics: {enableServiceMonitor: true, interval: 1m}}\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 4, metric: queueTime, target: 20000, scaleDownStabilizationSeconds: 120}\n",
			want: keda.ScaledObjectSpec{
				ScaleTargetRef: target, MinReplicaCount: ptr.To[int32](2), MaxReplicaCount: ptr.To[int32](4), Advanced: advanced(120),
				Triggers: queueTrigger("20000", "240s"),
			},
		},
		"QueueTimeDailyScrapes": {
			reason:   "Prometheus durations in days are read too.",
			platform: kedaPlatform,
			spec:     "observability: {enabled: true, metrics: {enableServiceMonitor: true, interval: 1d}}\nautoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}\n",
			want: keda.ScaledObjectSpec{
				ScaleTargetRef: target, MinReplicaCount: ptr.To[int32](1), MaxReplicaCount: ptr.To[int32](4), Advanced: advanced(600),
				Triggers: queueTrigger("50000", "345600s"),
			},
		},
		"PendingRequests": {
			reason:   "Pending requests as an AverageValue: the HPA aims for the target per replica. Authentication and the tenant header come from the platform.",
			platform: authPlatform,
			spec:     smOn + "autoscaling: {enabled: true, maxReplicas: 8, metric: pendingRequests}\n",
			want: keda.ScaledObjectSpec{
				ScaleTargetRef: target, MinReplicaCount: ptr.To[int32](1), MaxReplicaCount: ptr.To[int32](8), Advanced: advanced(600),
				Triggers: []keda.Trigger{{
					Type: "prometheus", Name: "pendingRequests", MetricType: autoscalingv2.AverageValueMetricType,
					Metadata: map[string]string{
						"serverAddress": prometheusAddress, "threshold": "10", "authModes": "bearer", "customHeaders": "X-Scope-OrgID=vision",
						"query": "sum(nv_inference_pending_request_count" + sel + ") or vector(0)",
					},
					AuthenticationRef: &keda.AuthenticationRef{Kind: "ClusterTriggerAuthentication", Name: "kalypso-prometheus"},
				}},
			},
		},
		"P95Latency": {
			reason:   "The worst p95 among the server's pods and models (quantiles do not aggregate), as a Value.",
			platform: kedaPlatform,
			spec:     smAndP95 + "autoscaling: {enabled: true, maxReplicas: 4, metric: p95Latency, target: 200000}\n",
			want: keda.ScaledObjectSpec{
				ScaleTargetRef: target, MinReplicaCount: ptr.To[int32](1), MaxReplicaCount: ptr.To[int32](4), Advanced: advanced(600),
				Triggers: []keda.Trigger{{Type: "prometheus", Name: "p95Latency", MetricType: autoscalingv2.ValueMetricType, Metadata: map[string]string{
					"serverAddress": prometheusAddress, "threshold": "200000",
					"query": `max(nv_inference_request_summary_us{namespace="vision-dev",service="resnet-svc",quantile="0.95"}) or vector(0)`,
				}}},
			},
		},
		"CPU": {
			reason:   "cpu: KEDA's cpu scaler, utilisation of the request.",
			platform: kedaPlatform,
			spec:     cpuReq + "autoscaling: {enabled: true, maxReplicas: 3, target: 70}\n",
			want: keda.ScaledObjectSpec{
				ScaleTargetRef: target, MinReplicaCount: ptr.To[int32](1), MaxReplicaCount: ptr.To[int32](3), Advanced: advanced(600),
				Triggers: []keda.Trigger{{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": "70"}}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// Running on the hpa engine, its HPA gone: the ScaledObject comes.
			observed := without(created(t, tc.spec, deployAvailable), string(resHPA))
			r := scene{xr: serverXR(tc.spec, ""), observed: observed, required: map[string][]string{reqApplication: {readyApp}, reqScaledObject: {kedaCRD}, reqServiceMonitor: {smCRD}}}.run(t, int64s, tc.platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			got := decodeStrict[keda.ScaledObject](t, r, resScaledObject)
			want := &keda.ScaledObject{
				TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
				ObjectMeta: metav1.ObjectMeta{Name: "resnet-so", Namespace: "vision-dev", Labels: serverLabels},
				Spec:       tc.want,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\nScaledObject: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// hpaReplicas is what the HorizontalPodAutoscaler controller asks for from
// the single series KEDA serves it as an external metric, before min/max
// bounds (k8s.io/kubernetes v1.35.4
// pkg/controller/podautoscaler/replica_calculator.go): a Value target
// scales the ready pods by value/target (GetExternalMetricReplicas,
// getUsageRatioReplicaCount), an AverageValue target asks for
// value/target replicas whatever runs now (GetExternalPerPodMetricReplicas).
// Both keep the current count within the default 10% tolerance.
func hpaReplicas(metricType autoscalingv2.MetricTargetType, value, target float64, current int32) int32 {
	switch metricType {
	case autoscalingv2.ValueMetricType:
		ratio := value / target
		if math.Abs(ratio-1) <= 0.1 {
			return current
		}
		return int32(math.Ceil(ratio * float64(current)))
	default:
		if math.Abs(value/(target*float64(current))-1) <= 0.1 {
			return current
		}
		return int32(math.Ceil(value / target))
	}
}

// TestKEDAMetricTypes shows why queue time is a Value and pending requests
// an AverageValue, for 1 and 3 ready pods.
func TestKEDAMetricTypes(t *testing.T) {
	p := kedaPlatform(t)
	s := series{namespace: "vision-dev", service: "resnet-svc"}
	typeOf := func(metric string) autoscalingv2.MetricTargetType {
		return kedaTrigger(&v1alpha1.AutoscalingSpec{Enabled: true, Metric: metric}, p, s, "vision", "30s").MetricType
	}
	cases := map[string]struct {
		reason        string
		metric        string
		value, target float64
		pods          int32
		want          int32
		other         int32 // what the other target type would ask for
	}{
		"QueueTimeOnePod": {
			reason: "Queue time 100 ms per request against 50 ms on one pod: two pods, whichever the type.",
			metric: "queueTime", value: 100000, target: 50000, pods: 1, want: 2, other: 2,
		},
		"QueueTimeThreePods": {
			reason: "The same queue time on three pods: six. AverageValue would ask for two, a scale-down of a server whose requests wait twice too long.",
			metric: "queueTime", value: 100000, target: 50000, pods: 3, want: 6, other: 2,
		},
		"PendingOnePod": {
			reason: "60 requests waiting in all, 10 per replica wanted, one pod: six pods, whichever the type.",
			metric: "pendingRequests", value: 60, target: 10, pods: 1, want: 6, other: 6,
		},
		"P95ThreePods": {
			reason: "A p95 of 400 ms against 200 ms on three pods: six, as for queue time. AverageValue would ask for two.",
			metric: "p95Latency", value: 400000, target: 200000, pods: 3, want: 6, other: 2,
		},
		"PendingThreePods": {
			reason: "The same 60 on three pods: still six. Value would ask for eighteen, counting the load the pods already share once per pod.",
			metric: "pendingRequests", value: 60, target: 10, pods: 3, want: 6, other: 18,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			typ := typeOf(tc.metric)
			other := autoscalingv2.ValueMetricType
			if typ == autoscalingv2.ValueMetricType {
				other = autoscalingv2.AverageValueMetricType
			}
			if got := hpaReplicas(typ, tc.value, tc.target, tc.pods); got != tc.want {
				t.Errorf("%s\n%s (%s): want %d replicas, got %d", tc.reason, tc.metric, typ, tc.want, got)
			}
			if got := hpaReplicas(other, tc.value, tc.target, tc.pods); got != tc.other {
				t.Errorf("%s\n%s as %s: want %d replicas, got %d", tc.reason, tc.metric, other, tc.other, got)
			}
		})
	}
}

func TestKEDASchemas(t *testing.T) {
	const on = "resources: {requests: {cpu: '1'}}\nautoscaling: {enabled: true, engine: keda, maxReplicas: 4}\n"
	cases := map[string]struct {
		reason   string
		spec     string
		observed func(*testing.T) map[string]string
		want     bool
	}{
		"HPA":      {reason: "The hpa engine checks nothing.", spec: "resources: {requests: {cpu: '1'}}\nautoscaling: {enabled: true, engine: hpa, maxReplicas: 4}\n"},
		"Off":      {reason: "No autoscaling: nothing to check.", spec: "autoscaling: {enabled: false, engine: keda}\n"},
		"KEDA":     {reason: "keda and no ScaledObject yet: KEDA's CRD is checked.", spec: on, want: true},
		"Composed": {reason: "A ScaledObject is observed: its kind is served.", spec: on, observed: func(t *testing.T) map[string]string { return createdOn(t, kedaPlatform(t), on, deployAvailable) }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var observed map[string]string
			if tc.observed != nil {
				observed = tc.observed(t)
			}
			c, err := scene{xr: serverXR(tc.spec, ""), observed: observed}.composer(t, int64s)
			if err != nil {
				t.Fatal(err)
			}
			s, ok := c.Schemas(kedaPlatform(t))[reqScaledObject]
			if ok != tc.want {
				t.Fatalf("%s\nKEDA schema asked: want %v, got %v", tc.reason, tc.want, ok)
			}
			if ok && (s.GetApiVersion() != "keda.sh/v1alpha1" || s.GetKind() != "ScaledObject") {
				t.Errorf("schema selector: %v", s)
			}
		})
	}
}
