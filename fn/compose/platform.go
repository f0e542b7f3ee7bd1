package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Platform is the resolved platform defaults: built-in values, overridden by
// the Input, overridden by the EnvironmentConfig. Object specs override it.
type Platform struct {
	TritonImage           string
	TritonTag             string
	ImagePullSecrets      []string
	StartupTimeoutSeconds int32
	DrainSeconds          int32
	PreStopSleepSeconds   int32
	ModelCacheSizeLimit   resource.Quantity
	ModelCacheRequest     resource.Quantity

	// GPUClasses is the resolved catalogue, with the implicit class.
	GPUClasses      map[string]GPUClass
	DefaultGPUClass string
	// explicitDefaultClass: the catalogue has a class named "default".
	explicitDefaultClass bool
	GPUPriorityClassName string

	RunAsUser              int64
	FSGroup                int64
	RestrictedAPISecret    string
	RestrictedAPISecretKey string
	RestrictedAPIHeader    string

	TracesEndpoint       string
	LokiEndpoint         string
	ProfilingEndpoint    string
	ServiceMonitorLabels map[string]string

	PodSecurityLevel  string
	NetworkIsolation  bool
	AllowedNamespaces []string
	DefaultLimits     corev1.ResourceList
	DefaultRequests   corev1.ResourceList

	GatewayParentRefs []v1beta1.ParentRef
	GatewayHostname   string
	GatewayScheme     string
	GatewayMeshRoutes bool

	ReadPods bool

	AutoscalingEngine                string
	KEDAPrometheusAddress            string
	KEDAClusterTriggerAuthentication string
	KEDAAuthModes                    string
	KEDATenantHeader                 string

	AlertsEnabled   bool
	AlertRuleLabels map[string]string
	// AlertmanagerConfigLabels select the projects' AlertmanagerConfigs.
	AlertmanagerConfigLabels map[string]string
	SLO                      SLODefaults

	DashboardsEnabled         bool
	DashboardNamespace        string
	DashboardLabels           map[string]string
	DashboardFolderAnnotation string

	ShowbackEnabled bool
	CostLabelKeys   []string
}

// UntrackedGPUQuota is the hard GPU quota of an environment whose project
// sets none while showback tracks use: large enough never to limit.
const UntrackedGPUQuota = 1000000

// SLODefaults are the objectives of servers that set none.
type SLODefaults struct {
	QueueTimeMicroseconds int32
	// FailurePercent is a decimal percentage, as in the spec ("0.5").
	FailurePercent     string
	GPUMemoryPercent   int32
	UnavailableMinutes int32
	RestartsPerHour    int32
}

// builtinDefaults are the bottom layer. A fresh value each call: layering
// decodes into it.
func builtinDefaults() v1beta1.Defaults {
	return v1beta1.Defaults{
		Triton: &v1beta1.TritonDefaults{
			Image:                 ptr.To("nvcr.io/nvidia/tritonserver"),
			Tag:                   ptr.To("24.12-py3"),
			StartupTimeoutSeconds: ptr.To[int32](600),
			// Triton's own --exit-timeout-secs default (src/command_line_parser.h).
			DrainSeconds: ptr.To[int32](30),
			// Long enough for kube-proxy and ingress controllers to see the
			// endpoint go (they watch EndpointSlices) in a busy cluster.
			PreStopSleepSeconds: ptr.To[int32](5),
			ModelCacheSizeLimit: ptr.To(resource.MustParse("20Gi")),
			ModelCacheRequest:   ptr.To(resource.MustParse("10Gi")),
		},
		GPU: &v1beta1.GPUDefaults{
			ResourceName: ptr.To("nvidia.com/gpu"),
			Tolerations: []corev1.Toleration{{
				Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
			}},
		},
		Security: &v1beta1.SecurityDefaults{
			RunAsUser: ptr.To[int64](1000),
			FSGroup:   ptr.To[int64](1000),
			RestrictedAPI: &v1beta1.RestrictedAPIDefaults{
				SecretName: ptr.To("kalypso-triton-api-key"),
				SecretKey:  ptr.To("api-key"),
				HeaderKey:  ptr.To("triton-api-key"),
			},
		},
		Observability: &v1beta1.ObservabilityDefaults{
			TracesEndpoint:       ptr.To("http://kalypso-otel-collector.otel-system.svc.cluster.local:4318"),
			ServiceMonitorLabels: map[string]string{"release": "prometheus"},
		},
		Tenancy: &v1beta1.TenancyDefaults{
			PodSecurityLevel:  ptr.To("restricted"),
			NetworkIsolation:  ptr.To(true),
			AllowedNamespaces: []string{"monitoring"},
			DefaultLimits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("4Gi"),
			},
			DefaultRequests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("256Mi"),
				// Servers request ephemeral storage for their models; a quota
				// on requests.ephemeral-storage then refuses every pod
				// without a request, unless the LimitRange gives one.
				corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
			},
		},
		Gateway:     &v1beta1.GatewayDefaults{Scheme: ptr.To("https")},
		Autoscaling: &v1beta1.AutoscalingDefaults{Engine: ptr.To(EngineHPA), KEDA: &v1beta1.KEDADefaults{}},
		Alerts: &v1beta1.AlertsDefaults{
			Enabled:                  ptr.To(false),
			RuleLabels:               map[string]string{"release": "prometheus"},
			AlertmanagerConfigLabels: map[string]string{"release": "prometheus"},
			// 100 ms of queueing: a request waits longer than a typical
			// GPU batch takes to run.
			QueueTimeMicroseconds: ptr.To[int32](100000),
			FailurePercent:        ptr.To("1"),
			GPUMemoryPercent:      ptr.To[int32](90),
			// The default model loading budget (triton.startupTimeoutSeconds):
			// Triton serves no metrics while it loads.
			UnavailableMinutes: ptr.To[int32](10),
			RestartsPerHour:    ptr.To[int32](3),
		},
		Dashboards: &v1beta1.DashboardDefaults{
			Enabled:          ptr.To(false),
			Namespace:        ptr.To("monitoring"),
			Labels:           map[string]string{"grafana_dashboard": "1"},
			FolderAnnotation: ptr.To("grafana_folder"),
		},
	}
}

// ResolvePlatform layers the Input and the EnvironmentConfig (nil when it
// does not exist) over the built-in defaults. Unset fields keep the layer
// below; maps merge key by key; lists replace. The EnvironmentConfig's data
// is decoded strictly: an unknown key is an error naming it.
func ResolvePlatform(in *v1beta1.Input, envConfig *unstructured.Unstructured) (Platform, error) {
	d := builtinDefaults()
	layer, err := json.Marshal(in.Spec)
	if err != nil {
		return Platform{}, err
	}
	if err := json.Unmarshal(layer, &d); err != nil {
		return Platform{}, fmt.Errorf("function input spec: %w", err)
	}
	if envConfig != nil {
		data, _, err := unstructured.NestedFieldNoCopy(envConfig.Object, "data")
		if err != nil {
			return Platform{}, fmt.Errorf("EnvironmentConfig %s: data: %w", envConfig.GetName(), err)
		}
		if data != nil {
			b, err := json.Marshal(withoutNulls(data))
			if err != nil {
				return Platform{}, fmt.Errorf("EnvironmentConfig %s: data: %w", envConfig.GetName(), err)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d); err != nil {
				return Platform{}, fmt.Errorf("EnvironmentConfig %s: data must mirror the function Input's spec: %w", envConfig.GetName(), err)
			}
		}
	}
	return flatten(d)
}

// withoutNulls drops the null entries of a decoded JSON object, at any
// depth: in the EnvironmentConfig a null means unset, so the layer below
// stays (encoding/json would set the field to nil instead).
func withoutNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			if e != nil {
				out[k] = withoutNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = withoutNulls(e)
		}
		return out
	}
	return v
}

// flatten reads the layered defaults. Every pointer is set by the built-in
// layer; the layers above never clear one (the Input's fields are
// omitempty, the EnvironmentConfig's nulls are dropped).
func flatten(d v1beta1.Defaults) (Platform, error) {
	p := Platform{
		TritonImage:           *d.Triton.Image,
		TritonTag:             *d.Triton.Tag,
		ImagePullSecrets:      d.Triton.ImagePullSecrets,
		StartupTimeoutSeconds: *d.Triton.StartupTimeoutSeconds,
		DrainSeconds:          *d.Triton.DrainSeconds,
		PreStopSleepSeconds:   *d.Triton.PreStopSleepSeconds,
		ModelCacheSizeLimit:   *d.Triton.ModelCacheSizeLimit,
		ModelCacheRequest:     *d.Triton.ModelCacheRequest,

		GPUPriorityClassName: ptr.Deref(d.GPU.PriorityClassName, ""),

		RunAsUser:              *d.Security.RunAsUser,
		FSGroup:                *d.Security.FSGroup,
		RestrictedAPISecret:    *d.Security.RestrictedAPI.SecretName,
		RestrictedAPISecretKey: *d.Security.RestrictedAPI.SecretKey,
		RestrictedAPIHeader:    *d.Security.RestrictedAPI.HeaderKey,

		TracesEndpoint:       *d.Observability.TracesEndpoint,
		LokiEndpoint:         ptr.Deref(d.Observability.LokiEndpoint, ""),
		ProfilingEndpoint:    ptr.Deref(d.Observability.ProfilingEndpoint, ""),
		ServiceMonitorLabels: d.Observability.ServiceMonitorLabels,

		PodSecurityLevel:  *d.Tenancy.PodSecurityLevel,
		NetworkIsolation:  *d.Tenancy.NetworkIsolation,
		AllowedNamespaces: d.Tenancy.AllowedNamespaces,
		DefaultLimits:     d.Tenancy.DefaultLimits,
		DefaultRequests:   d.Tenancy.DefaultRequests,

		GatewayParentRefs: d.Gateway.ParentRefs,
		GatewayHostname:   ptr.Deref(d.Gateway.Hostname, ""),
		GatewayScheme:     *d.Gateway.Scheme,
		GatewayMeshRoutes: ptr.Deref(d.Gateway.MeshRoutes, false),

		ReadPods: d.Diagnostics != nil && ptr.Deref(d.Diagnostics.ReadPods, false),

		AutoscalingEngine:                *d.Autoscaling.Engine,
		KEDAPrometheusAddress:            ptr.Deref(d.Autoscaling.KEDA.PrometheusAddress, ""),
		KEDAClusterTriggerAuthentication: ptr.Deref(d.Autoscaling.KEDA.ClusterTriggerAuthentication, ""),
		KEDAAuthModes:                    ptr.Deref(d.Autoscaling.KEDA.AuthModes, ""),
		KEDATenantHeader:                 ptr.Deref(d.Autoscaling.KEDA.TenantHeader, ""),

		AlertsEnabled:            *d.Alerts.Enabled,
		AlertRuleLabels:          d.Alerts.RuleLabels,
		AlertmanagerConfigLabels: d.Alerts.AlertmanagerConfigLabels,
		SLO: SLODefaults{
			QueueTimeMicroseconds: *d.Alerts.QueueTimeMicroseconds,
			FailurePercent:        *d.Alerts.FailurePercent,
			GPUMemoryPercent:      *d.Alerts.GPUMemoryPercent,
			UnavailableMinutes:    *d.Alerts.UnavailableMinutes,
			RestartsPerHour:       *d.Alerts.RestartsPerHour,
		},

		DashboardsEnabled:         *d.Dashboards.Enabled,
		DashboardNamespace:        *d.Dashboards.Namespace,
		DashboardLabels:           d.Dashboards.Labels,
		DashboardFolderAnnotation: *d.Dashboards.FolderAnnotation,

		ShowbackEnabled: d.Showback != nil && ptr.Deref(d.Showback.Enabled, false),
	}
	if d.Showback != nil {
		p.CostLabelKeys = d.Showback.CostLabelKeys
	}
	p.GPUClasses, p.DefaultGPUClass, p.explicitDefaultClass = gpuClasses(d)
	return p, p.validate()
}

// The autoscaling engines.
const (
	EngineHPA  = "hpa"
	EngineKEDA = "keda"
)

// kedaAuthModes are the Prometheus scaler's authModes (KEDA v2.20.1
// pkg/scalers/authentication/authentication_types.go).
var kedaAuthModes = []string{"apiKey", "basic", "bearer", "custom", "oauth", "tls"}

// kedaExclusiveAuthModes exclude each other (the same file, exclusiveSet).
var kedaExclusiveAuthModes = []string{"basic", "bearer", "oauth"}

// PodSecurityLevels are the Pod Security Admission levels.
var PodSecurityLevels = []string{"privileged", "baseline", "restricted"}

func (p Platform) validate() error {
	switch {
	case !slices.Contains(PodSecurityLevels, p.PodSecurityLevel):
		return fmt.Errorf("defaults: tenancy.podSecurityLevel %q is not one of %s", p.PodSecurityLevel, strings.Join(PodSecurityLevels, ", "))
	case p.TritonImage == "" || p.TritonTag == "":
		return fmt.Errorf("defaults: triton.image and triton.tag must not be empty")
	case p.GatewayScheme != "http" && p.GatewayScheme != "https":
		return fmt.Errorf("defaults: gateway.scheme %q is not http or https", p.GatewayScheme)
	case p.DrainSeconds < 0 || p.PreStopSleepSeconds < 0:
		return fmt.Errorf("defaults: triton.drainSeconds (%d) and triton.preStopSleepSeconds (%d) must not be negative", p.DrainSeconds, p.PreStopSleepSeconds)
	case p.ModelCacheRequest.Sign() <= 0:
		return fmt.Errorf("defaults: triton.modelCacheRequest %s must be above zero", p.ModelCacheRequest.String())
	case p.ModelCacheSizeLimit.Cmp(p.ModelCacheRequest) < 0:
		return fmt.Errorf("defaults: triton.modelCacheSizeLimit %s is below triton.modelCacheRequest %s: a server would be evicted before its models fit", p.ModelCacheSizeLimit.String(), p.ModelCacheRequest.String())
	case p.RunAsUser <= 0:
		return fmt.Errorf("defaults: security.runAsUser must be a non-root uid (> 0), got %d", p.RunAsUser)
	case p.FSGroup <= 0:
		return fmt.Errorf("defaults: security.fsGroup must be a non-root gid (> 0), got %d", p.FSGroup)
	case p.AutoscalingEngine != EngineHPA && p.AutoscalingEngine != EngineKEDA:
		return fmt.Errorf("defaults: autoscaling.engine %q is not %s or %s", p.AutoscalingEngine, EngineHPA, EngineKEDA)
	case p.KEDAAuthModes != "" && p.KEDAClusterTriggerAuthentication == "":
		return fmt.Errorf("defaults: autoscaling.keda.authModes is set without autoscaling.keda.clusterTriggerAuthentication, which provides what they name")
	case strings.ContainsAny(p.KEDATenantHeader, "=,:\r\n "):
		return fmt.Errorf("defaults: autoscaling.keda.tenantHeader %q must be a bare header name (KEDA joins headers as name=value,name=value)", p.KEDATenantHeader)
	case strings.HasPrefix(p.GatewayHostname, "*"):
		return fmt.Errorf("defaults: gateway.hostname %q must be a host name, not a wildcard: servers are routed under it and get their own gRPC host names below it", p.GatewayHostname)
	}
	// kube-state-metrics names the labels showback joins on; two keys it
	// names alike would make it rename one.
	ksm := map[string]string{KSMLabel(LabelProject): LabelProject, KSMLabel(LabelEnvironment): LabelEnvironment, KSMLabel(LabelApplication): LabelApplication}
	for i, k := range p.CostLabelKeys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("defaults: showback.costLabelKeys[%d]: %q is not a label key: %s", i, k, strings.Join(errs, "; "))
		}
		if other, ok := ksm[KSMLabel(k)]; ok {
			return fmt.Errorf("defaults: showback.costLabelKeys[%d]: %q and %q are both %s in kube-state-metrics: keep one", i, k, other, KSMLabel(k))
		}
		ksm[KSMLabel(k)] = k
	}
	if err := p.validateGPUClasses(); err != nil {
		return err
	}
	if p.DashboardsEnabled && p.DashboardNamespace == "" {
		return fmt.Errorf("defaults: dashboards.namespace must name the namespace Grafana's dashboard sidecar searches")
	}
	if _, err := ParsePercent(p.SLO.FailurePercent); err != nil {
		return fmt.Errorf("defaults: alerts.failurePercent: %w", err)
	}
	// In a fixed order: the message must not depend on map iteration.
	for _, f := range []struct {
		name string
		v    int32
	}{
		{"alerts.queueTimeMicroseconds", p.SLO.QueueTimeMicroseconds}, {"alerts.gpuMemoryPercent", p.SLO.GPUMemoryPercent},
		{"alerts.unavailableMinutes", p.SLO.UnavailableMinutes}, {"alerts.restartsPerHour", p.SLO.RestartsPerHour},
	} {
		if f.v <= 0 {
			return fmt.Errorf("defaults: %s must be above zero, got %d", f.name, f.v)
		}
	}
	if p.SLO.GPUMemoryPercent > 100 {
		return fmt.Errorf("defaults: alerts.gpuMemoryPercent must be at most 100, got %d", p.SLO.GPUMemoryPercent)
	}
	exclusive := 0
	for mode := range strings.SplitSeq(p.KEDAAuthModes, ",") {
		mode = strings.TrimSpace(mode)
		if p.KEDAAuthModes != "" && !slices.Contains(kedaAuthModes, mode) {
			return fmt.Errorf("defaults: autoscaling.keda.authModes %q: %q is not one of %s", p.KEDAAuthModes, mode, strings.Join(kedaAuthModes, ", "))
		}
		if slices.Contains(kedaExclusiveAuthModes, mode) {
			exclusive++
		}
	}
	if exclusive > 1 {
		return fmt.Errorf("defaults: autoscaling.keda.authModes %q: KEDA takes at most one of %s", p.KEDAAuthModes, strings.Join(kedaExclusiveAuthModes, ", "))
	}
	for i, ref := range p.GatewayParentRefs {
		if ref.Name == "" {
			return fmt.Errorf("defaults: gateway.parentRefs[%d].name must not be empty", i)
		}
	}
	return nil
}

// ParsePercent reads a decimal percentage above 0 and at most 100 ("0.5").
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v > 100 {
		return 0, fmt.Errorf("%q is not a percentage above 0 and at most 100, such as 1 or 0.5", s)
	}
	return v, nil
}
