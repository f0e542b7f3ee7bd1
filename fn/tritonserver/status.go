package tritonserver

import (
	"fmt"
	"sort"
	"strings"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Pod annotations read by Grafana's collectors (k8s-monitoring chart).
const (
	// Triton is C++ without a pprof endpoint, so CPU profiles come from
	// Alloy's eBPF profiler, which selects pods by this annotation.
	annotationEBPFProfiling = "profiles.grafana.com/cpu.ebpf.enabled"
	// Node agents (Alloy DaemonSet) ship pod logs from /var/log/pods; these
	// name the job and opt the pod in.
	annotationLogsJob     = "k8s.grafana.com/logs.job"
	annotationLogsEnabled = "logs.grafana.com/pods.enabled"
	// service.name for profiles and logs, the same as the traces'.
	annotationServiceName = "resource.opentelemetry.io/service.name"
)

func (c *Composer) profiling() (cpu, memory bool) {
	o := c.observability()
	if o == nil || o.Profiling == nil || !o.Profiling.Enabled {
		return false, false
	}
	if pt := o.Profiling.Profiles; pt != nil {
		return ptr.Deref(pt.CPU, true), ptr.Deref(pt.Memory, true)
	}
	return true, true
}

func (c *Composer) logging() bool {
	o := c.observability()
	return o != nil && (o.Logging == nil || ptr.Deref(o.Logging.Enabled, true))
}

// podAnnotations opt the pods in to profile and log collection.
func (c *Composer) podAnnotations(p compose.Platform) map[string]string {
	a := map[string]string{}
	if cpu, _ := c.profiling(); cpu {
		a[annotationEBPFProfiling] = "true"
	}
	if c.logging() && p.LokiEndpoint != "" {
		a[annotationLogsEnabled] = "true"
		a[annotationLogsJob] = c.id.Namespace + "/" + c.serviceName()
	}
	if len(a) == 0 {
		return nil
	}
	a[annotationServiceName] = c.serviceName()
	return a
}

// availability is the server's phase with its most telling reason.
type availability struct{ phase, reason, message string }

func (c *Composer) availability(ready bool, pods []resource.Required) availability {
	if c.deploy == nil {
		return availability{PhasePending, "Creating", "the Deployment is being created"}
	}
	want, avail := deploymentCounts(c.deploy)
	podReason, podMessage := diagnosePods(pods)
	if podReason == "" {
		// No pod read (the platform does not read pods, or none tells
		// more): say where to look.
		podMessage = fmt.Sprintf("kubectl get pods -n %s -l %s=%s shows the pods", c.id.Namespace, compose.LabelTritonServer, c.id.Name)
	}
	failure, failureMsg := deploymentFailure(c.deploy.Object)
	switch {
	case ready && avail >= want:
		return availability{PhaseRunning, "AllReplicasAvailable", fmt.Sprintf("%d/%d replicas available: Triton serves every model", want, want)}
	case ready:
		// Scaling up (see serves): it serves meanwhile; say why replicas
		// are missing when the Deployment or a pod tells.
		why := "the others are not available yet; " + podMessage
		switch {
		case failure != "":
			why = failureMsg
		case podReason != "":
			why = podMessage
		}
		return availability{PhaseRunning, "ReplicasUnavailable", fmt.Sprintf("%d/%d replicas available: Triton serves every model on them; %s", avail, want, why)}
	case failure != "":
		return availability{PhaseFailed, failure, joinNonEmpty(failureMsg, podMessage)}
	}
	if podReason != "" {
		return availability{PhasePending, podReason, podMessage}
	}
	return availability{PhasePending, "Progressing", fmt.Sprintf("%d/%d replicas available: waiting for the rollout (model loading may take minutes); %s", min(avail, want), want, podMessage)}
}

// deploymentCounts: the replicas a Deployment asks for (its own spec: an
// autoscaler may have set it) and those available.
func deploymentCounts(deploy *composed.Unstructured) (want, available int64) {
	want = 1
	if r, found := compose.Int(deploy.Object, "spec", "replicas"); found {
		want = r
	}
	available, _ = compose.Int(deploy.Object, "status", "availableReplicas")
	return want, available
}

// deploymentFailure reads a Deployment that gave up: its progress deadline
// passed, its ReplicaSet cannot create pods (e.g. a quota refusal), or it
// cannot create the ReplicaSet of a new template.
func deploymentFailure(deploy map[string]any) (reason, message string) {
	if c := compose.FindCondition(deploy, "ReplicaFailure"); c != nil && c["status"] == "True" {
		msg, _ := c["message"].(string)
		return "ReplicaFailure", "the Deployment cannot create pods: " + msg
	}
	if c := compose.FindCondition(deploy, "Progressing"); c != nil && c["status"] == "False" {
		msg, _ := c["message"].(string)
		switch c["reason"] {
		case progressTimedOut:
			return progressTimedOut, msg
		case progressRSCreateFailed:
			return progressRSCreateFailed, "the Deployment cannot create the ReplicaSet of its new template: " + msg
		}
	}
	return "", ""
}

// podProblem is one pod's reason, ranked by how much it tells.
type podProblem struct {
	rank                 int
	pod, reason, message string
}

// diagnosePods returns the most telling reason among the server's pods.
func diagnosePods(pods []resource.Required) (reason, message string) {
	var found []podProblem
	for _, p := range pods {
		if pp, ok := podDiagnosis(p.Resource); ok {
			found = append(found, pp)
		}
	}
	if len(found) == 0 {
		return "", ""
	}
	// Most telling first, then by pod name: the answer must not depend on
	// the order the pods were listed in.
	sort.Slice(found, func(i, j int) bool {
		if found[i].rank != found[j].rank {
			return found[i].rank < found[j].rank
		}
		return found[i].pod < found[j].pod
	})
	return found[0].reason, found[0].message
}

func podDiagnosis(pod *unstructured.Unstructured) (podProblem, bool) {
	name := pod.GetName()
	statuses, _, _ := unstructured.NestedSlice(pod.Object, "status", "containerStatuses")
	for _, s := range statuses {
		cs, _ := s.(map[string]any)
		waiting, _, _ := unstructured.NestedMap(cs, "state", "waiting")
		wr, _ := waiting["reason"].(string)
		wm, _ := waiting["message"].(string)
		switch wr {
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName":
			return podProblem{0, name, "ImagePullFailed", fmt.Sprintf("pod %s cannot pull its image (%s): %s", name, wr, wm)}, true
		case "CrashLoopBackOff":
			last, _, _ := unstructured.NestedMap(cs, "lastState", "terminated")
			code, _ := compose.Int(last, "exitCode")
			lr, _ := last["reason"].(string)
			lm, _ := last["message"].(string)
			return podProblem{1, name, "CrashLoopBackOff", fmt.Sprintf("pod %s is crash looping: last exit code %d (%s) %s", name, code, lr, strings.TrimSpace(lm))}, true
		case "CreateContainerConfigError", "CreateContainerError":
			return podProblem{2, name, wr, fmt.Sprintf("pod %s cannot start its container: %s", name, wm)}, true
		}
	}
	if c := compose.FindCondition(pod.Object, "PodScheduled"); c != nil && c["status"] == "False" {
		msg, _ := c["message"].(string)
		return podProblem{3, name, "Unschedulable", fmt.Sprintf("pod %s cannot be scheduled: %s", name, msg)}, true
	}
	return podProblem{}, false
}

// parseQuantity reads a quota's hard or used value; one that does not
// parse counts as zero.
func parseQuantity(s string) kresource.Quantity {
	q, err := kresource.ParseQuantity(s)
	if err != nil {
		return kresource.Quantity{}
	}
	return q
}

func (c *Composer) metricsCondition(required map[string][]resource.Required) compose.Condition {
	cond := compose.Condition{Type: ConditionMetricsScraping}
	switch {
	case !c.metricsEnabled():
		cond.Reason, cond.Message = "MetricsDisabled", "observability.metrics.enabled is false: Triton serves no metrics"
	case !c.wantsServiceMonitor():
		cond.Reason, cond.Message = "ServiceMonitorDisabled", "metrics are served on the Service's metrics port; set observability.enabled and observability.metrics.enableServiceMonitor to compose a ServiceMonitor"
	case !c.serviceMonitorComposed() && !c.checksServiceMonitorKind():
		cond.Reason, cond.Message = reasonWaitingForDeployment, "the ServiceMonitor is composed once the Deployment exists (its CRD is checked then)"
	case !c.serviceMonitorComposed() && len(required[reqServiceMonitor]) == 0:
		cond.Reason, cond.Message = reasonServiceMonitorCRDMissing, compose.CRDMissing(serviceMonitorCRD, ", so no ServiceMonitor is composed and nothing scrapes the server: install the Prometheus Operator, or scrape the Service's metrics port another way")
	default:
		cond.Status, cond.Reason, cond.Message = true, "ServiceMonitorComposed", fmt.Sprintf("ServiceMonitor %s scrapes the metrics port every %s", c.name("monitor"), c.metricsInterval())
	}
	return cond
}

func (c *Composer) tracingCondition(endpoint, problem string) compose.Condition {
	cond := compose.Condition{Type: ConditionTracing}
	o := c.observability()
	switch {
	case o == nil || o.Tracing == nil || !o.Tracing.Enabled:
		cond.Reason, cond.Message = "TracingDisabled", "observability.tracing is off"
	case problem != "":
		cond.Reason, cond.Message = "TracingMisconfigured", problem+"; Triton runs without tracing until it is fixed"
	default:
		u, _ := tracesURL(endpoint)
		n, _ := samplingRate(o.Tracing.SamplingRate)
		cond.Status, cond.Reason, cond.Message = true, "TracingEnabled", fmt.Sprintf("OpenTelemetry traces of 1 request in %d go over OTLP/HTTP to %s", n, u)
	}
	return cond
}

func (c *Composer) profilingCondition() compose.Condition {
	cond := compose.Condition{Type: ConditionProfiling}
	cpu, memory := c.profiling()
	noMemory := "memory profiles need a pprof endpoint, which Triton (C++) does not have, so none are collected"
	switch {
	case cpu:
		cond.Status, cond.Reason = true, "EBPFProfiling"
		cond.Message = "CPU profiles are collected by Grafana Alloy's eBPF profiler (pod annotation " + annotationEBPFProfiling + ")"
		if memory {
			cond.Message += "; " + noMemory
		}
	case memory:
		cond.Reason, cond.Message = "ProfilingUnavailable", noMemory
	default:
		cond.Reason, cond.Message = "ProfilingDisabled", "observability.profiling is off"
	}
	return cond
}

// Reasons of a running server waiting for an API to be served.
const (
	// reasonMetricsAPIUnavailable: queue-time autoscaling waits for the
	// custom metrics API.
	reasonMetricsAPIUnavailable = "CustomMetricsAPIUnavailable"
	// reasonServiceMonitorCRDMissing: a ServiceMonitor waits for its CRD.
	reasonServiceMonitorCRDMissing = "ServiceMonitorCRDMissing"
)

// cpuRequestMissing: CPU autoscaling on a container without a CPU
// request. The autoscaler measures utilisation as a share of the request
// (pkg/controller/podautoscaler/replica_calculator.go,
// GetResourceReplicas); without one the namespace's LimitRange default
// (100m) becomes the request, Triton's use is many times it, and the
// autoscaler scales straight to maxReplicas. Kubernetes takes a missing
// request from the limit (pkg/apis/core/v1/defaults.go), so a limit will do.
func (c *Composer) cpuRequestMissing(res corev1.ResourceRequirements) bool {
	a := c.spec.Autoscaling
	if a == nil || !a.Enabled || metricOf(a) != metricCPU {
		return false
	}
	return !hasCPURequest(res)
}

// hasCPURequest: the container requests CPU, or limits it, which
// Kubernetes makes the request.
func hasCPURequest(res corev1.ResourceRequirements) bool {
	for _, l := range []corev1.ResourceList{res.Requests, res.Limits} {
		if q, ok := l[corev1.ResourceCPU]; ok && !q.IsZero() {
			return true
		}
	}
	return false
}

// reasonWaitingForDeployment: an object that needs the Deployment to exist
// follows it.
const reasonWaitingForDeployment = "WaitingForDeployment"

// cpuRequestMessage explains CPURequestMissing.
const cpuRequestMessage = "autoscaling on cpu needs a CPU request: the autoscaler measures utilisation as a share of it, and without one it scales straight to maxReplicas; set spec.resources.requests.cpu"

// composesHPA: autoscaling is on, the hpa engine runs it, and it can work.
// A server whose autoscaler cannot work (no CPU request, a metric only
// KEDA reads, KEDA chosen but not usable) gets no HorizontalPodAutoscaler,
// but one that runs keeps the one it has: dropping it would leave the
// Deployment at whatever replicas the autoscaler last chose.
func (c *Composer) composesHPA(p compose.Platform, required map[string][]resource.Required, res corev1.ResourceRequirements) bool {
	a := c.spec.Autoscaling
	if a == nil || !a.Enabled {
		return false
	}
	_, observed := c.observed[resHPA]
	keep := c.deploy != nil && observed
	switch {
	case c.usesKEDA(p):
		return keep && c.kedaProblem(p, required, res) != nil
	case kedaOnly(metricOf(a)) || c.cpuRequestMissing(res):
		return keep
	}
	return true
}

func (c *Composer) autoscalingCondition(p compose.Platform, required map[string][]resource.Required, res corev1.ResourceRequirements) compose.Condition {
	cond := compose.Condition{Type: ConditionAutoscaling}
	a := c.spec.Autoscaling
	switch {
	case a == nil || !a.Enabled:
		cond.Reason, cond.Message = "AutoscalingDisabled", fmt.Sprintf("the Deployment runs spec.replicas (%d) replicas", ptr.Deref(c.spec.Replicas, 1))
	case c.usesKEDA(p):
		return c.kedaCondition(p, c.kedaProblem(p, required, res), required, res)
	case kedaOnly(metricOf(a)):
		cond.Reason = reasonMetricNeedsKEDA
		cond.Message = "metric " + metricOf(a) + " is read by KEDA from Prometheus: set spec.autoscaling.engine: keda"
		if c.composesHPA(p, required, res) {
			cond.Message += fmt.Sprintf("; HorizontalPodAutoscaler %s is kept as it is until then", c.name("hpa"))
		}
	case c.cpuRequestMissing(res):
		cond.Reason = "CPURequestMissing"
		cond.Message = cpuRequestMessage
		if c.composesHPA(p, required, res) {
			cond.Message += fmt.Sprintf("; HorizontalPodAutoscaler %s is kept as it is until then", c.name("hpa"))
		} else {
			cond.Message += "; no HorizontalPodAutoscaler is composed until then"
		}
	case metricOf(a) == metricQueueTime && len(required[reqMetricsAPI]) == 0:
		cond.Reason, cond.Message = reasonMetricsAPIUnavailable, "the custom metrics API ("+customMetricsAPI+") is not served, so the autoscaler cannot read "+QueueTimeMetric+": install a metrics adapter such as prometheus-adapter with the rule in the README"
	case metricOf(a) == metricQueueTime && !apiServiceAvailable(required[reqMetricsAPI][0].Resource):
		cond.Reason = reasonMetricsAPIUnavailable
		cond.Message = "APIService " + customMetricsAPI + " is not Available (" + apiServiceProblem(required[reqMetricsAPI][0].Resource) + "), so the autoscaler cannot read " + QueueTimeMetric + ": fix the metrics adapter behind it"
	default:
		cond.Status, cond.Reason = true, "HorizontalPodAutoscalerComposed"
		minReplicas, maxReplicas := replicaBounds(a)
		cond.Message = fmt.Sprintf("HorizontalPodAutoscaler %s scales between %d and %d replicas", c.name("hpa"), minReplicas, maxReplicas)
	}
	return cond
}

func (c *Composer) shutdownCondition(s shutdown, problem *compose.Condition) compose.Condition {
	if problem != nil {
		cond := *problem
		if c.deploy != nil {
			cond.Message += "; the Deployment is kept as it is until this is fixed"
		}
		return cond
	}
	first := fmt.Sprintf("a stopping pod keeps serving for %d s while its endpoints go, then Triton", s.preStop)
	if s.preStop <= 0 {
		first = "a stopping pod gets SIGTERM at once (no preStop sleep: requests still routed to it are refused), and Triton"
	}
	return compose.Condition{Type: ConditionShutdown, Status: true, Reason: "DrainConfigured", Message: fmt.Sprintf(
		"%s drains in-flight requests for up to %d s; the grace period is %d s, and a GPU pod keeps its GPUs for all of it",
		first, s.drain, s.gracePeriod())}
}

// apiServiceAvailable: the aggregator marks an APIService Available once
// its backend answers discovery (kube-aggregator
// pkg/controllers/status/remote/remote_available_controller.go).
func apiServiceAvailable(u *unstructured.Unstructured) bool {
	return compose.ConditionStatus(u.Object, "Available") == "True"
}

func apiServiceProblem(u *unstructured.Unstructured) string {
	c := compose.FindCondition(u.Object, "Available")
	if c == nil {
		return "no Available condition yet"
	}
	reason, _ := c["reason"].(string)
	msg, _ := c["message"].(string)
	return joinNonEmpty(reason, msg)
}
