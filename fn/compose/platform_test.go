package compose

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// platformCase is a case of TestResolvePlatform: the layers, and either a
// check of the resolved platform or the error it gives.
type platformCase struct {
	reason    string
	in        *v1beta1.Input
	ec        *unstructured.Unstructured
	check     func(t *testing.T, p Platform)
	wantError string
}

func TestResolvePlatform(t *testing.T) {
	envConfig := func(data map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.crossplane.io/v1beta1", "kind": "EnvironmentConfig",
			"metadata": map[string]any{"name": "kalypso-defaults"}, "data": data,
		}}
	}
	input := &v1beta1.Input{Spec: v1beta1.Defaults{
		Triton:        &v1beta1.TritonDefaults{Tag: ptr.To("25.01-py3")},
		Observability: &v1beta1.ObservabilityDefaults{ServiceMonitorLabels: map[string]string{"team": "ml"}},
		Tenancy:       &v1beta1.TenancyDefaults{AllowedNamespaces: []string{"observability"}},
	}}
	cases := map[string]platformCase{
		"BuiltIn": {
			reason: "Every default has a built-in value.",
			in:     &v1beta1.Input{},
			check: func(t *testing.T, p Platform) {
				t.Helper()
				if p.TritonImage != "nvcr.io/nvidia/tritonserver" || p.TritonTag != "24.12-py3" || p.DefaultGPU().Resource != "nvidia.com/gpu" ||
					p.RunAsUser != 1000 || p.PodSecurityLevel != "restricted" || !p.NetworkIsolation || p.StartupTimeoutSeconds != 600 {
					t.Errorf("unexpected built-in defaults: %+v", p)
				}
			},
		},
		"EnvironmentConfigNulls": {
			reason: "A null in the EnvironmentConfig (kubectl edit leaves them) means unset: the layer below stays, nothing panics.",
			in:     &v1beta1.Input{},
			ec: envConfig(map[string]any{
				"triton":      map[string]any{"image": nil, "tag": "25.01-py3"},
				"autoscaling": map[string]any{"engine": nil, "keda": nil},
				"security":    nil,
			}),
			check: func(t *testing.T, p Platform) {
				t.Helper()
				if p.TritonImage != "nvcr.io/nvidia/tritonserver" || p.TritonTag != "25.01-py3" || p.AutoscalingEngine != EngineHPA || p.RunAsUser != 1000 {
					t.Errorf("nulls must keep the layer below: %+v", p)
				}
			},
		},
		"KEDADefaults": {
			reason: "The KEDA settings layer like the others.",
			in:     &v1beta1.Input{},
			ec: envConfig(map[string]any{"autoscaling": map[string]any{"engine": "keda", "keda": map[string]any{
				"prometheusAddress": "http://prom:9090", "clusterTriggerAuthentication": "kalypso-prometheus", "authModes": "bearer", "tenantHeader": "X-Scope-OrgID",
			}}}),
			check: func(t *testing.T, p Platform) {
				t.Helper()
				if p.AutoscalingEngine != EngineKEDA || p.KEDAPrometheusAddress != "http://prom:9090" || p.KEDAClusterTriggerAuthentication != "kalypso-prometheus" ||
					p.KEDAAuthModes != "bearer" || p.KEDATenantHeader != "X-Scope-OrgID" {
					t.Errorf("KEDA defaults: %+v", p)
				}
			},
		},
		"AuthModesWithoutAuthentication": {
			reason:    "authModes say what a ClusterTriggerAuthentication provides; alone they would be dropped.",
			in:        &v1beta1.Input{},
			ec:        envConfig(map[string]any{"autoscaling": map[string]any{"keda": map[string]any{"authModes": "bearer"}}}),
			wantError: "defaults: autoscaling.keda.authModes is set without autoscaling.keda.clusterTriggerAuthentication",
		},
		"AuthModesUnknown": {
			reason:    "KEDA's Prometheus scaler knows six modes.",
			in:        &v1beta1.Input{},
			ec:        envConfig(map[string]any{"autoscaling": map[string]any{"keda": map[string]any{"authModes": "bearer,token", "clusterTriggerAuthentication": "a"}}}),
			wantError: `defaults: autoscaling.keda.authModes "bearer,token": "token" is not one of apiKey, basic, bearer, custom, oauth, tls`,
		},
		"AuthModesExclusive": {
			reason:    "bearer, basic and oauth exclude each other in KEDA.",
			in:        &v1beta1.Input{},
			ec:        envConfig(map[string]any{"autoscaling": map[string]any{"keda": map[string]any{"authModes": "bearer,basic", "clusterTriggerAuthentication": "a"}}}),
			wantError: `defaults: autoscaling.keda.authModes "bearer,basic": KEDA takes at most one of basic, bearer, oauth`,
		},
		"InputLayers": {
			reason: "Input fields override; unset ones keep the built-in value; maps merge key by key; lists replace.",
			in:     input,
			check: func(t *testing.T, p Platform) {
				t.Helper()
				if p.TritonTag != "25.01-py3" || p.TritonImage != "nvcr.io/nvidia/tritonserver" {
					t.Errorf("image: got %s:%s", p.TritonImage, p.TritonTag)
				}
				if diff := cmp.Diff(map[string]string{"release": "prometheus", "team": "ml"}, p.ServiceMonitorLabels); diff != "" {
					t.Errorf("labels merge: -want, +got:\n%s", diff)
				}
				if diff := cmp.Diff([]string{"observability"}, p.AllowedNamespaces); diff != "" {
					t.Errorf("lists replace: -want, +got:\n%s", diff)
				}
			},
		},
		"EnvironmentConfigOverInput": {
			reason: "The EnvironmentConfig wins over the Input, field by field.",
			in:     input,
			ec:     envConfig(map[string]any{"triton": map[string]any{"tag": "25.02-py3"}, "gpu": map[string]any{"resourceName": "nvidia.com/mig-1g.10gb", "tolerations": []any{}}}),
			check: func(t *testing.T, p Platform) {
				t.Helper()
				if p.TritonTag != "25.02-py3" || p.DefaultGPU().Resource != "nvidia.com/mig-1g.10gb" {
					t.Errorf("got tag %s, gpu %s", p.TritonTag, p.DefaultGPU().Resource)
				}
				if diff := cmp.Diff([]corev1.Toleration{}, p.DefaultGPU().Tolerations); diff != "" {
					t.Errorf("an empty list clears the built-in tolerations: -want, +got:\n%s", diff)
				}
			},
		},
		"EnvironmentConfigWithoutData": {
			reason: "An EnvironmentConfig with no data changes nothing.",
			in:     &v1beta1.Input{},
			ec:     &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "kalypso-defaults"}}},
			check: func(t *testing.T, p Platform) {
				t.Helper()
				if p.TritonTag != "24.12-py3" {
					t.Errorf("got tag %s", p.TritonTag)
				}
			},
		},
		"UnknownKey":  {reason: "Unknown keys are named.", in: &v1beta1.Input{}, ec: envConfig(map[string]any{"trition": map[string]any{}}), wantError: `unknown field "trition"`},
		"WrongType":   {reason: "Wrong types are refused.", in: &v1beta1.Input{}, ec: envConfig(map[string]any{"security": map[string]any{"runAsUser": "root"}}), wantError: "EnvironmentConfig kalypso-defaults"},
		"RootRefused": {reason: "Defaults cannot make pods run as root.", in: &v1beta1.Input{}, ec: envConfig(map[string]any{"security": map[string]any{"runAsUser": 0}}), wantError: "security.runAsUser must be a non-root uid"},
		"EmptyImage":  {reason: "An empty image is refused.", in: &v1beta1.Input{Spec: v1beta1.Defaults{Triton: &v1beta1.TritonDefaults{Image: ptr.To("")}}}, wantError: "triton.image and triton.tag must not be empty"},
		"ModelCacheLimitBelowRequest": {
			reason: "A model cache size limit below its request would evict every server before its models fit.",
			in:     &v1beta1.Input{}, ec: envConfig(map[string]any{"triton": map[string]any{"modelCacheSizeLimit": "5Gi"}}),
			wantError: "triton.modelCacheSizeLimit 5Gi is below triton.modelCacheRequest 10Gi",
		},
		"NegativeDrain": {
			reason:    "A negative drain time is refused.",
			in:        &v1beta1.Input{Spec: v1beta1.Defaults{Triton: &v1beta1.TritonDefaults{DrainSeconds: ptr.To[int32](-1)}}},
			wantError: "triton.drainSeconds (-1) and triton.preStopSleepSeconds (5) must not be negative",
		},
		"ShutdownAndDisk": {
			reason: "Drain, preStop sleep and model cache have built-in values the EnvironmentConfig overrides; the ephemeral-storage default request is built in.",
			in:     &v1beta1.Input{},
			ec:     envConfig(map[string]any{"triton": map[string]any{"drainSeconds": 90, "modelCacheSizeLimit": "100Gi"}}),
			check: func(t *testing.T, p Platform) {
				t.Helper()
				if p.DrainSeconds != 90 || p.PreStopSleepSeconds != 5 || p.ModelCacheSizeLimit.String() != "100Gi" || p.ModelCacheRequest.String() != "10Gi" {
					t.Errorf("got drain %d, sleep %d, cache %s/%s", p.DrainSeconds, p.PreStopSleepSeconds, p.ModelCacheSizeLimit.String(), p.ModelCacheRequest.String())
				}
				if q := p.DefaultRequests[corev1.ResourceEphemeralStorage]; q.String() != "1Gi" {
					t.Errorf("default ephemeral-storage request: got %q", q.String())
				}
			},
		},
		"GatewayNoName": {reason: "A parentRef needs a name.", in: &v1beta1.Input{Spec: v1beta1.Defaults{Gateway: &v1beta1.GatewayDefaults{ParentRefs: []v1beta1.ParentRef{{Namespace: "gw"}}}}}, wantError: "gateway.parentRefs[0].name"},
	}
	maps.Copy(cases, gpuCatalogueCases())
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := ResolvePlatform(tc.in, tc.ec)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("%s\nwant error containing %q, got %v", tc.reason, tc.wantError, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\n%v", tc.reason, err)
			}
			tc.check(t, p)
		})
	}
}

// TestExampleEnvironmentConfig: the platform's example EnvironmentConfig
// decodes strictly and turns on what its comments say.
func TestExampleEnvironmentConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "platform", "environmentconfig.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &u.Object); err != nil {
		t.Fatal(err)
	}
	p, err := ResolvePlatform(&v1beta1.Input{}, u)
	if err != nil {
		t.Fatalf("examples/platform/environmentconfig.yaml: %v", err)
	}
	if !p.AlertsEnabled || !p.DashboardsEnabled || !p.ShowbackEnabled || !slices.Equal(p.CostLabelKeys, []string{"cost-center"}) {
		t.Errorf("want alerts, dashboards and showback on with cost-center, got %v %v %v %v", p.AlertsEnabled, p.DashboardsEnabled, p.ShowbackEnabled, p.CostLabelKeys)
	}
}

func TestCostLabelKeysCollide(t *testing.T) {
	_, err := ResolvePlatform(&v1beta1.Input{Spec: v1beta1.Defaults{Showback: &v1beta1.ShowbackDefaults{CostLabelKeys: []string{"cost-center", "cost_center"}}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `"cost_center" and "cost-center" are both label_cost_center in kube-state-metrics`) {
		t.Errorf("want an error naming both keys, got %v", err)
	}
}
