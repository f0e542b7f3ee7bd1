package tritonserver

import (
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
)

// Autoscaling defaults.
const (
	defaultCPUTarget = 80
	// defaultQueueTargetUs is the Triton queue time per request (µs) the
	// autoscaler aims for.
	defaultQueueTargetUs = 50000
	// defaultScaleDownWindow keeps replicas through short dips: a GPU
	// server takes minutes to come back (image pull, model load).
	defaultScaleDownWindow = 600
	// QueueTimeMetric is the per-pod custom metric a metrics adapter
	// (e.g. prometheus-adapter) must serve for metric: queueTime; the
	// README gives the adapter rule deriving it from Triton's counters.
	QueueTimeMetric = "kalypso_triton_queue_us_per_request"
)

func meta(name, namespace string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
}

func service(name, namespace string, labels, selector map[string]string, p ports, metrics bool) *corev1.Service {
	port := func(n string, v int32) corev1.ServicePort {
		return corev1.ServicePort{Name: n, Port: v, TargetPort: intstr.FromString(n), Protocol: corev1.ProtocolTCP}
	}
	ps := []corev1.ServicePort{port("http", p.http), port("grpc", p.grpc)}
	if metrics {
		ps = append(ps, port("metrics", p.metrics))
	}
	return &corev1.Service{
		ObjectMeta: meta(name, namespace, labels),
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector, Ports: ps},
	}
}

func serviceMonitor(name, namespace string, labels, selector map[string]string, interval string) *monitoringv1.ServiceMonitor {
	return &monitoringv1.ServiceMonitor{
		ObjectMeta: meta(name, namespace, labels),
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector:  metav1.LabelSelector{MatchLabels: selector},
			Endpoints: []monitoringv1.Endpoint{{Port: "metrics", Interval: monitoringv1.Duration(interval)}},
		},
	}
}

func podDisruptionBudget(name, namespace string, labels, selector map[string]string, d *v1alpha1.DisruptionSpec) *policyv1.PodDisruptionBudget {
	maxUnavailable := int32(1)
	if d != nil && d.MaxUnavailable != nil {
		maxUnavailable = *d.MaxUnavailable
	}
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: meta(name, namespace, labels),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(maxUnavailable)),
			Selector:       &metav1.LabelSelector{MatchLabels: selector},
		},
	}
}

func horizontalPodAutoscaler(name, namespace, deploymentName string, labels map[string]string, a *v1alpha1.AutoscalingSpec) *autoscalingv2.HorizontalPodAutoscaler {
	var metric autoscalingv2.MetricSpec
	if metricOf(a) == metricQueueTime {
		metric = autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: QueueTimeMetric},
			Target: autoscalingv2.MetricTarget{
				Type:         autoscalingv2.AverageValueMetricType,
				AverageValue: resource.NewQuantity(int64(ptr.Deref(a.Target, defaultQueueTargetUs)), resource.DecimalSI),
			},
		}}
	} else {
		metric = autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{
				Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(ptr.Deref(a.Target, defaultCPUTarget)),
			},
		}}
	}
	m := meta(name, namespace, labels)
	// KEDA's webhook refuses a ScaledObject for a Deployment that another
	// HPA targets, unless that HPA says it may (KEDA v2.20.1
	// apis/keda/v1alpha1/scaledobject_webhook.go verifyHpas). Crossplane
	// deletes this HPA and applies the ScaledObject in one reconcile when a
	// server switches to keda, and the HPA may still be terminating then.
	m.Annotations = map[string]string{kedaHPAOwnershipAnnotation: "false"}
	minReplicas, maxReplicas := replicaBounds(a)
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: m,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: deploymentName},
			MinReplicas:    ptr.To(minReplicas),
			MaxReplicas:    maxReplicas,
			Metrics:        []autoscalingv2.MetricSpec{metric},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr.To(ptr.Deref(a.ScaleDownStabilizationSeconds, defaultScaleDownWindow)),
				},
			},
		},
	}
}
