package tritonserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

func TestShmSize(t *testing.T) {
	const mi = 1 << 20
	cases := map[string]struct {
		reason string
		pb     *v1alpha1.PythonBackendSpec
		want   string
	}{
		"NoPython":       {reason: "Without the python backend /dev/shm still gets the floor, above the runtime's 64 MiB.", want: "256Mi"},
		"PythonDefaults": {reason: "16 regions of 1 MiB fit under the floor.", pb: &v1alpha1.PythonBackendSpec{}, want: "256Mi"},
		"AtFloor":        {reason: "16 × 16 MiB is exactly the floor.", pb: &v1alpha1.PythonBackendSpec{ShmDefaultByteSize: ptr.To[int64](16 * mi)}, want: "256Mi"},
		"AboveFloor":     {reason: "16 × 32 MiB needs 512 MiB.", pb: &v1alpha1.PythonBackendSpec{ShmDefaultByteSize: ptr.To[int64](32 * mi)}, want: "512Mi"},
		"WithGrowth":     {reason: "Each region may grow one step: 16 × (10 + 10) MiB.", pb: &v1alpha1.PythonBackendSpec{ShmDefaultByteSize: ptr.To[int64](10 * mi), ShmGrowthByteSize: ptr.To[int64](10 * mi)}, want: "320Mi"},
		"RoundedUpToMi": {
			reason: "Sizes that are not whole MiB round up: 16 × 20,000,000 B = 305.2 MiB → 306Mi.",
			pb:     &v1alpha1.PythonBackendSpec{ShmDefaultByteSize: ptr.To[int64](20_000_000)}, want: "306Mi",
		},
		"Large": {reason: "The largest sizes the XRD allows do not overflow.", pb: &v1alpha1.PythonBackendSpec{ShmDefaultByteSize: ptr.To[int64](64 << 30), ShmGrowthByteSize: ptr.To[int64](64 << 30)}, want: "2Ti"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := shmSize(tc.pb)
			if got.String() != tc.want {
				t.Errorf("%s\nshmSize: want %s, got %s", tc.reason, tc.want, got.String())
			}
			if got.Value()%mi != 0 || got.Value() < shmFloor {
				t.Errorf("%s\nshmSize %d must be whole MiB and at least the floor", tc.reason, got.Value())
			}
		})
	}
}

func list(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = kresource.MustParse(kv[i+1])
	}
	return l
}

func TestGPUResources(t *testing.T) {
	cases := map[string]struct {
		reason  string
		spec    string
		gpu     corev1.ResourceName
		want    corev1.ResourceRequirements
		wantErr string
	}{
		"NoGPUs": {
			reason: "No gpus: the resources as given.",
			spec:   "resources: {requests: {cpu: '1'}}\n",
			want:   corev1.ResourceRequirements{Requests: list("cpu", "1")},
		},
		"Nothing": {reason: "Nothing set, nothing requested.", want: corev1.ResourceRequirements{}},
		"GPUsZero": {
			reason: "gpus: 0 adds nothing; GPUs in resources stay.",
			spec:   "gpus: 0\nresources: {limits: {nvidia.com/gpu: '1'}}\n",
			want:   corev1.ResourceRequirements{Limits: list("nvidia.com/gpu", "1")},
		},
		"Shortcut": {
			reason: "gpus goes into requests and limits (extended resources must match).",
			spec:   "gpus: 2\n",
			want:   corev1.ResourceRequirements{Requests: list("nvidia.com/gpu", "2"), Limits: list("nvidia.com/gpu", "2")},
		},
		"Merged": {
			reason: "…next to cpu and memory.",
			spec:   "gpus: 1\nresources: {requests: {cpu: '4', memory: 16Gi}, limits: {memory: 32Gi}}\n",
			want:   corev1.ResourceRequirements{Requests: list("cpu", "4", "memory", "16Gi", "nvidia.com/gpu", "1"), Limits: list("memory", "32Gi", "nvidia.com/gpu", "1")},
		},
		"Agreeing": {
			reason: "The same count in both places is fine.",
			spec:   "gpus: 2\nresources: {limits: {nvidia.com/gpu: '2'}}\n",
			want:   corev1.ResourceRequirements{Requests: list("nvidia.com/gpu", "2"), Limits: list("nvidia.com/gpu", "2")},
		},
		"MIG": {
			reason: "The platform's GPU resource name is used (MIG slices).",
			spec:   "gpus: 1\n",
			gpu:    "nvidia.com/mig-1g.10gb",
			want:   corev1.ResourceRequirements{Requests: list("nvidia.com/mig-1g.10gb", "1"), Limits: list("nvidia.com/mig-1g.10gb", "1")},
		},
		"LimitsDisagree": {
			reason:  "Different counts are refused naming both fields.",
			spec:    "gpus: 2\nresources: {limits: {nvidia.com/gpu: '1'}}\n",
			wantErr: "spec.gpus (2) and spec.resources.limits[nvidia.com/gpu] (1) disagree: set one of them",
		},
		"RequestsDisagree": {
			reason:  "Different counts are refused naming both fields.",
			spec:    "gpus: 1\nresources: {requests: {nvidia.com/gpu: '4'}}\n",
			wantErr: "spec.gpus (1) and spec.resources.requests[nvidia.com/gpu] (4) disagree",
		},
		"BothDisagree": {
			reason:  "With both sides wrong the message is deterministic: limits first.",
			spec:    "gpus: 1\nresources: {requests: {nvidia.com/gpu: '4'}, limits: {nvidia.com/gpu: '4'}}\n",
			wantErr: "spec.gpus (1) and spec.resources.limits[nvidia.com/gpu] (4) disagree",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			gpu := tc.gpu
			if gpu == "" {
				gpu = "nvidia.com/gpu"
			}
			spec := specOf(t, tc.spec)
			before := jsonOf(t, spec.Resources)
			// Map iteration order varies: repeat so that a result depending
			// on it would show.
			for range 20 {
				got, err := gpuResources(&spec, gpu)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("%s\nwant error containing %q, got %v", tc.reason, tc.wantErr, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s\nunexpected error: %v", tc.reason, err)
				}
				if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b kresource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
					t.Fatalf("%s\nresources: -want, +got:\n%s", tc.reason, diff)
				}
			}
			if after := jsonOf(t, spec.Resources); after != before {
				t.Errorf("%s\nthe spec's resources must not be modified: %s became %s", tc.reason, before, after)
			}
		})
	}
}

func TestScheduling(t *testing.T) {
	class := compose.GPUClass{
		Name: "default", Resource: "nvidia.com/gpu",
		NodeSelector:     map[string]string{"nvidia.com/gpu.present": "true"},
		Tolerations:      []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		RuntimeClassName: "nvidia",
	}
	p := compose.Platform{GPUPriorityClassName: "gpu-serving"}
	gpuDefaults := corev1.PodSpec{NodeSelector: class.NodeSelector, Tolerations: class.Tolerations, RuntimeClassName: ptr.To("nvidia"), PriorityClassName: "gpu-serving"}
	own := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml", Effect: corev1.TaintEffectNoSchedule}}
	affinity := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 1}}}}
	spread := []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway}}
	cases := map[string]struct {
		reason string
		s      *v1alpha1.SchedulingSpec
		gpu    bool
		want   corev1.PodSpec
	}{
		"CPUPod": {
			reason: "A CPU server gets none of the GPU defaults: it must not wait for (or occupy) a GPU node.",
			want:   corev1.PodSpec{},
		},
		"GPUPod": {
			reason: "A GPU server gets the platform's GPU node selector, tolerations, runtime class and priority.",
			gpu:    true, want: gpuDefaults,
		},
		"NodeSelectorWins": {
			reason: "The server's node selector replaces the platform's; the other defaults stay.",
			gpu:    true, s: &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": "a100"}},
			want: corev1.PodSpec{NodeSelector: map[string]string{"pool": "a100"}, Tolerations: class.Tolerations, RuntimeClassName: ptr.To("nvidia"), PriorityClassName: "gpu-serving"},
		},
		"TolerationsWin": {
			reason: "Tolerations replace (lists replace, they do not merge).",
			gpu:    true, s: &v1alpha1.SchedulingSpec{Tolerations: own},
			want: corev1.PodSpec{NodeSelector: class.NodeSelector, Tolerations: own, RuntimeClassName: ptr.To("nvidia"), PriorityClassName: "gpu-serving"},
		},
		"EmptyTolerationsClear": {
			reason: "An empty list clears the platform's tolerations.",
			gpu:    true, s: &v1alpha1.SchedulingSpec{Tolerations: []corev1.Toleration{}},
			want: corev1.PodSpec{NodeSelector: class.NodeSelector, Tolerations: []corev1.Toleration{}, RuntimeClassName: ptr.To("nvidia"), PriorityClassName: "gpu-serving"},
		},
		"RuntimeClassWins": {
			reason: "The server's runtime class replaces the platform's.",
			gpu:    true, s: &v1alpha1.SchedulingSpec{RuntimeClassName: ptr.To("nvidia-cdi")},
			want: corev1.PodSpec{NodeSelector: class.NodeSelector, Tolerations: class.Tolerations, RuntimeClassName: ptr.To("nvidia-cdi"), PriorityClassName: "gpu-serving"},
		},
		"EmptyRuntimeClassClears": {
			reason: "An empty runtimeClassName clears it (the GPU operator's default runtime does the job).",
			gpu:    true, s: &v1alpha1.SchedulingSpec{RuntimeClassName: ptr.To("")},
			want: corev1.PodSpec{NodeSelector: class.NodeSelector, Tolerations: class.Tolerations, PriorityClassName: "gpu-serving"},
		},
		"EmptyPriorityClassClears": {
			reason: "An empty priorityClassName clears it.",
			gpu:    true, s: &v1alpha1.SchedulingSpec{PriorityClassName: ptr.To("")},
			want: corev1.PodSpec{NodeSelector: class.NodeSelector, Tolerations: class.Tolerations, RuntimeClassName: ptr.To("nvidia")},
		},
		"AffinityAndSpread": {
			reason: "Affinity and spread constraints are the server's own.",
			gpu:    true, s: &v1alpha1.SchedulingSpec{Affinity: affinity, TopologySpreadConstraints: spread},
			want: corev1.PodSpec{NodeSelector: class.NodeSelector, Tolerations: class.Tolerations, RuntimeClassName: ptr.To("nvidia"), PriorityClassName: "gpu-serving",
				Affinity: affinity, TopologySpreadConstraints: spread},
		},
		"CPUPodOwnSettings": {
			reason: "A CPU server's own scheduling applies without any GPU default.",
			s:      &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": "cpu"}, PriorityClassName: ptr.To("batch")},
			want:   corev1.PodSpec{NodeSelector: map[string]string{"pool": "cpu"}, PriorityClassName: "batch"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got corev1.PodSpec
			g := gpuRequest{class: class}
			if tc.gpu {
				g.devices = 1
			}
			scheduling(&got, p, tc.s, g)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\npod scheduling: -want, +got:\n%s", tc.reason, diff)
			}
			if tc.gpu && got.NodeSelector != nil {
				// The platform's map must not be shared with a pod spec.
				got.NodeSelector["mutated"] = "yes"
				if _, ok := class.NodeSelector["mutated"]; ok {
					delete(class.NodeSelector, "mutated")
					if tc.s == nil || tc.s.NodeSelector == nil {
						t.Errorf("%s\nthe platform's node selector is shared with the pod spec", tc.reason)
					}
				}
			}
		})
	}
}

// composeDeployment composes a server for a Ready application and returns
// its Deployment.
func composeDeployment(t *testing.T, spec, app string, p compose.Platform) *appsv1.Deployment {
	t.Helper()
	return composeDeploymentOf(t, serverXR(spec, ""), app, p)
}

func composeDeploymentOf(t *testing.T, xr, app string, p compose.Platform) *appsv1.Deployment {
	t.Helper()
	r := scene{xr: xr, required: map[string][]string{reqApplication: {app}}}.run(t, int64s, p)
	if r.Fatal != nil {
		t.Fatalf("Fatal: %v", r.Fatal)
	}
	return decodeStrict[appsv1.Deployment](t, r, resDeployment)
}

func TestDeploymentSecurity(t *testing.T) {
	wantContainerSC := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
	}
	podSC := func(uid, gid int64) *corev1.PodSecurityContext {
		return &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(uid), RunAsGroup: ptr.To(gid), FSGroup: ptr.To(gid),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	shm := kresource.MustParse("256Mi")
	cache := kresource.MustParse("20Gi")
	// The root file system is read-only: everything Triton writes goes to
	// emptyDirs (/tmp, the cloud download folder, a memory-backed /dev/shm,
	// the home folder).
	wantVolumes := []corev1.Volume{
		{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &shm}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "model-cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &cache}}},
		{Name: "home", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	wantMounts := []corev1.VolumeMount{
		{Name: "dshm", MountPath: "/dev/shm"},
		{Name: "tmp", MountPath: "/tmp"},
		{Name: "model-cache", MountPath: "/var/lib/triton/model-cache"},
		{Name: "home", MountPath: "/var/lib/triton/home"},
	}
	custom, err := compose.ResolvePlatform(&v1beta1.Input{Spec: v1beta1.Defaults{Security: &v1beta1.SecurityDefaults{RunAsUser: ptr.To[int64](2000), FSGroup: ptr.To[int64](3000)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyless := appWith("secretName: models-creds, region: eu-west-1", "serviceAccountName: models-reader")

	cases := map[string]struct {
		reason    string
		spec      string
		app       string
		platform  compose.Platform
		uid, gid  int64
		sa        string
		automount bool
	}{
		"Default": {
			reason: "Non-root uid 1000 from the platform, no service account token.",
			app:    readyApp, platform: platform(t), uid: 1000, gid: 1000,
		},
		"PlatformUID": {
			reason: "The platform's uid and fsGroup.",
			app:    readyApp, platform: custom, uid: 2000, gid: 3000,
		},
		"ServerServiceAccount": {
			reason: "A service account of the server's own gets its token mounted (keyless storage needs it).",
			spec:   "serviceAccountName: resnet-runner\n", app: readyApp, platform: platform(t), uid: 1000, gid: 1000, sa: "resnet-runner", automount: true,
		},
		"ApplicationServiceAccount": {
			reason: "The application's keyless service account is inherited.",
			app:    keyless, platform: platform(t), uid: 1000, gid: 1000, sa: "models-reader", automount: true,
		},
		"ServerServiceAccountWins": {
			reason: "The server's own service account wins over the application's.",
			spec:   "serviceAccountName: resnet-runner\n", app: keyless, platform: platform(t), uid: 1000, gid: 1000, sa: "resnet-runner", automount: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := composeDeployment(t, tc.spec, tc.app, tc.platform)
			pod := d.Spec.Template.Spec
			c := tritonContainer(t, d)
			if diff := cmp.Diff(podSC(tc.uid, tc.gid), pod.SecurityContext); diff != "" {
				t.Errorf("%s\npod security context: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(wantContainerSC, c.SecurityContext); diff != "" {
				t.Errorf("%s\ncontainer security context: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(wantVolumes, pod.Volumes, cmpQuantity); diff != "" {
				t.Errorf("%s\nvolumes: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(wantMounts, c.VolumeMounts); diff != "" {
				t.Errorf("%s\nmounts: -want, +got:\n%s", tc.reason, diff)
			}
			if pod.ServiceAccountName != tc.sa || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken != tc.automount {
				t.Errorf("%s\nservice account: want %q (token %v), got %q (token %v)", tc.reason, tc.sa, tc.automount, pod.ServiceAccountName, pod.AutomountServiceAccountToken)
			}
		})
	}
}

// cmpQuantity compares quantities by value.
var cmpQuantity = cmp.Comparer(func(a, b kresource.Quantity) bool { return a.Cmp(b) == 0 })

func TestStrategy(t *testing.T) {
	rolling := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: ptr.To(intstr.FromInt32(0)), MaxUnavailable: ptr.To(intstr.FromInt32(1)),
	}}
	cases := map[string]struct {
		reason string
		r      *v1alpha1.RolloutSpec
		want   appsv1.DeploymentStrategy
	}{
		"Default":  {reason: "Rolling, without surging: an update never needs a spare GPU.", want: rolling},
		"Rolling":  {reason: "RollingUpdate said explicitly.", r: &v1alpha1.RolloutSpec{Strategy: "RollingUpdate"}, want: rolling},
		"Empty":    {reason: "An empty strategy (render, undefaulted) is rolling.", r: &v1alpha1.RolloutSpec{}, want: rolling},
		"Recreate": {reason: "Recreate stops every pod first; no rollingUpdate block (the API server refuses one).", r: &v1alpha1.RolloutSpec{Strategy: "Recreate"}, want: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, strategy(tc.r)); diff != "" {
				t.Errorf("%s\nstrategy: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestProbes(t *testing.T) {
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}}, PeriodSeconds: period, FailureThreshold: failures}
	}
	slow, err := compose.ResolvePlatform(&v1beta1.Input{Spec: v1beta1.Defaults{Triton: &v1beta1.TritonDefaults{StartupTimeoutSeconds: ptr.To[int32](1200)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason   string
		spec     string
		platform compose.Platform
		failures int32 // startup probe failureThreshold (period 10 s)
		deadline int32 // progressDeadlineSeconds
	}{
		"PlatformDefault":  {reason: "600 s to load models: 60 startup probes; the rollout deadline 300 s beyond.", platform: platform(t), failures: 60, deadline: 900},
		"PlatformOverride": {reason: "The platform's startup budget.", platform: slow, failures: 120, deadline: 1500},
		"ServerTimeout":    {reason: "The server's startup budget wins.", spec: "startup: {timeoutSeconds: 900}\n", platform: slow, failures: 90, deadline: 1200},
		"RoundedUp":        {reason: "45 s needs 5 probes of 10 s (ceil), never fewer than the budget.", spec: "startup: {timeoutSeconds: 45}\n", platform: platform(t), failures: 5, deadline: 345},
		"Minimum":          {reason: "The smallest budget is one probe.", spec: "startup: {timeoutSeconds: 10}\n", platform: platform(t), failures: 1, deadline: 310},
		"Deadline":         {reason: "An explicit progress deadline is used as given.", spec: "startup: {timeoutSeconds: 900, progressDeadlineSeconds: 3600}\n", platform: platform(t), failures: 90, deadline: 3600},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := composeDeployment(t, tc.spec, readyApp, tc.platform)
			c := tritonContainer(t, d)
			if diff := cmp.Diff(probe("/v2/health/ready", 10, tc.failures), c.StartupProbe); diff != "" {
				t.Errorf("%s\nstartup probe: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(probe("/v2/health/ready", 5, 3), c.ReadinessProbe); diff != "" {
				t.Errorf("%s\nreadiness probe: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(probe("/v2/health/live", 10, 6), c.LivenessProbe); diff != "" {
				t.Errorf("%s\nliveness probe: -want, +got:\n%s", tc.reason, diff)
			}
			if d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds != tc.deadline {
				t.Errorf("%s\nprogressDeadlineSeconds: want %d, got %v", tc.reason, tc.deadline, d.Spec.ProgressDeadlineSeconds)
			}
		})
	}
}

// TestPodSecurityRestricted runs the composed pod through the Pod Security
// Admission library's own checks: environments default to the restricted
// level, where a pod that fails them is refused by the API server.
func TestPodSecurityRestricted(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	gpuPlatform := withDefaultClass(platform(t), func(c *compose.GPUClass) {
		c.RuntimeClassName = "nvidia"
		c.NodeSelector = map[string]string{"nvidia.com/gpu.present": "true"}
	})
	gcsApp := appWith("storage: {provider: s3, secretName: models-creds, region: eu-west-1}", "storage: {provider: gcs, secretName: gcs-sa}")
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

	cases := map[string]struct {
		reason   string
		xr       string
		app      string
		platform compose.Platform
		mutate   func(*corev1.PodSpec)
		allowed  bool
	}{
		"CPUServer": {
			reason: "A CPU server with python backend and every observability feature.",
			xr:     serverXR("tritonConfig: {backendType: python}\nobservability: {enabled: true, tracing: {enabled: true}, profiling: {enabled: true}}\n", ""),
			app:    readyApp, platform: platform(t), allowed: true,
		},
		"GPUServer": {
			reason: "A GPU server with its runtime class, node selector, tolerations and a mounted GCS secret.",
			xr:     withURI(serverXR("gpus: 2\nserviceAccountName: resnet-runner\n", ""), "gs://models/resnet"),
			app:    gcsApp, platform: gpuPlatform, allowed: true,
		},
		"ControlPrivilegeEscalation": {
			reason: "Control: the check really bites when the container may escalate.",
			xr:     serverXR("", ""), app: readyApp, platform: platform(t),
			mutate: func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true) },
		},
		"ControlCapabilities": {
			reason: "Control: the check bites without drop ALL.",
			xr:     serverXR("", ""), app: readyApp, platform: platform(t),
			mutate: func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.Capabilities = nil },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := composeDeploymentOf(t, tc.xr, tc.app, tc.platform)
			if tc.allowed && (len(d.Spec.Template.Spec.Volumes) == 0 || tc.platform.DefaultGPU().RuntimeClassName != "" && d.Spec.Template.Spec.RuntimeClassName == nil) {
				t.Fatalf("%s\nthe pod does not have what this case is about: %+v", tc.reason, d.Spec.Template.Spec)
			}
			meta := d.Spec.Template.ObjectMeta
			pod := d.Spec.Template.Spec
			if tc.mutate != nil {
				tc.mutate(&pod)
			}
			res := policy.AggregateCheckResults(evaluator.EvaluatePod(restricted, &meta, &pod))
			if res.Allowed != tc.allowed {
				t.Errorf("%s\nrestricted: want allowed=%v, got %v: %v", tc.reason, tc.allowed, res.Allowed, res.ForbiddenDetail())
			}
		})
	}
}

// TestShutdown: a stopping pod keeps serving through the preStop sleep
// while its endpoints go, then Triton drains for --exit-timeout-secs, all
// inside the grace period (v0.1.0 set neither: Kubernetes' 30 s grace
// period cut Triton's own 30 s drain short, and requests still routed to
// the pod were refused).
func TestShutdown(t *testing.T) {
	slow, err := compose.ResolvePlatform(&v1beta1.Input{Spec: v1beta1.Defaults{Triton: &v1beta1.TritonDefaults{DrainSeconds: ptr.To[int32](90), PreStopSleepSeconds: ptr.To[int32](15)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sleep := func(s int64) *corev1.Lifecycle {
		return &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: s}}}
	}
	cases := map[string]struct {
		reason    string
		spec      string
		platform  compose.Platform
		exit      string // the --exit-timeout-secs flag
		lifecycle *corev1.Lifecycle
		grace     int64
	}{
		"PlatformDefault": {
			reason:   "Built-in: 5 s preStop, Triton's own 30 s drain, grace 5 + 30 + 10.",
			platform: platform(t), exit: "--exit-timeout-secs=30", lifecycle: sleep(5), grace: 45,
		},
		"PlatformOverride": {
			reason:   "The platform's drain and preStop sleep.",
			platform: slow, exit: "--exit-timeout-secs=90", lifecycle: sleep(15), grace: 115,
		},
		"ServerOverride": {
			reason: "The server's own settings win.",
			spec:   "shutdown: {drainSeconds: 120, preStopSleepSeconds: 20}\n", platform: slow,
			exit: "--exit-timeout-secs=120", lifecycle: sleep(20), grace: 150,
		},
		"NoSleep": {
			reason: "preStopSleepSeconds 0: no preStop hook at all, SIGTERM at once.",
			spec:   "shutdown: {preStopSleepSeconds: 0}\n", platform: platform(t),
			exit: "--exit-timeout-secs=30", grace: 40,
		},
		"TwoParametersAgree": {
			reason: "The same exit-timeout-secs twice is one drain time, composed once.",
			spec:   "tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}, {name: exit-timeout-secs, value: '60'}]}\n", platform: platform(t),
			exit: "--exit-timeout-secs=60", lifecycle: sleep(5), grace: 75,
		},
		"ParameterMapped": {
			reason: "The yolo example's parameter exit-timeout-secs: 60 is the drain time, and the grace period covers it.",
			spec:   "tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}]}\n", platform: platform(t),
			exit: "--exit-timeout-secs=60", lifecycle: sleep(5), grace: 75,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := scene{xr: serverXR(tc.spec, ""), required: map[string][]string{reqApplication: {readyApp}}}.run(t, int64s, tc.platform)
			if r.Fatal != nil {
				t.Fatalf("Fatal: %v", r.Fatal)
			}
			if got, m := condsOf(r)[ConditionShutdown], message(r, ConditionShutdown); got != (cond{true, "DrainConfigured"}) || !strings.Contains(m, fmt.Sprintf("the grace period is %d s, and a GPU pod keeps its GPUs for all of it", tc.grace)) {
				t.Errorf("%s\nShutdown: want True DrainConfigured stating the grace period, got %+v %q", tc.reason, got, m)
			}
			d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
			c := tritonContainer(t, d)
			var exits []string
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--exit-timeout-secs") {
					exits = append(exits, a)
				}
			}
			if diff := cmp.Diff([]string{tc.exit}, exits); diff != "" {
				t.Errorf("%s\n--exit-timeout-secs: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.lifecycle, c.Lifecycle); diff != "" {
				t.Errorf("%s\nlifecycle: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(ptr.To(tc.grace), d.Spec.Template.Spec.TerminationGracePeriodSeconds); diff != "" {
				t.Errorf("%s\nterminationGracePeriodSeconds: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestShutdownParameterRefused: an exit-timeout-secs parameter that cannot
// be the drain time is a condition, not a Fatal: a new server waits, a
// running one keeps its Deployment as it is.
func TestShutdownParameterRefused(t *testing.T) {
	conflict := "shutdown: {drainSeconds: 90}\ntritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}]}\n"
	invalid := "tritonConfig: {parameters: [{name: exit-timeout-secs, value: 1m}]}\n"
	running := created(t, "", deployAvailable)
	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		reason2  string // the Shutdown condition's reason
		message  string
	}{
		"ConflictBeforeCreate": {
			reason: "A parameter that disagrees with drainSeconds: the server waits, naming both.",
			spec:   conflict, reason2: "ExitTimeoutParameterConflict",
			message: "spec.tritonConfig.parameters[0]: exit-timeout-secs 60 disagrees with spec.shutdown.drainSeconds 90, which composes --exit-timeout-secs: remove the parameter",
		},
		"InvalidBeforeCreate": {
			reason: "A value Triton would refuse at start-up: the server waits.",
			spec:   invalid, reason2: "ExitTimeoutParameterInvalid",
			message: `spec.tritonConfig.parameters[0]: exit-timeout-secs "1m" is not a whole number of seconds from 0 to 3600: remove the parameter and set spec.shutdown.drainSeconds`,
		},
		"TwoParametersDisagree": {
			reason: "Two exit-timeout-secs parameters with different values: neither is taken silently.",
			spec:   "tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}, {name: exit-timeout-secs, value: '90'}]}\n", reason2: "ExitTimeoutParameterConflict",
			message: "spec.tritonConfig.parameters[1]: exit-timeout-secs 90 disagrees with spec.tritonConfig.parameters[0] (60): remove both and set spec.shutdown.drainSeconds",
		},
		"ConflictAfterCreate": {
			reason: "A running server keeps its Deployment exactly as observed.",
			spec:   conflict, observed: running, reason2: "ExitTimeoutParameterConflict",
			message: "remove the parameter; the Deployment is kept as it is until this is fixed",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := scene{xr: serverXR(tc.spec, ""), observed: tc.observed, required: map[string][]string{reqApplication: {readyApp}}}.run(t, int64s, platform(t))
			if r.Fatal != nil {
				t.Fatalf("%s\nwant a condition, got Fatal: %v", tc.reason, r.Fatal)
			}
			if got := condsOf(r)[ConditionShutdown]; got != (cond{false, tc.reason2}) {
				t.Errorf("%s\nShutdown: want False %s, got %+v", tc.reason, tc.reason2, got)
			}
			if m := message(r, ConditionShutdown); !strings.Contains(m, tc.message) {
				t.Errorf("%s\nShutdown message: want it to contain %q, got %q", tc.reason, tc.message, m)
			}
			d, composed := r.Desired[resDeployment]
			if tc.observed == nil {
				if composed {
					t.Errorf("%s\na new server must wait, not compose a Deployment", tc.reason)
				}
				return
			}
			if !composed {
				t.Fatalf("%s\nthe running Deployment must be kept", tc.reason)
			}
			if diff := cmp.Diff(carried(t, tc.observed[string(resDeployment)]), composetest.Object(t, jsonOf(t, d.Resource.Object))); diff != "" {
				t.Errorf("%s\nthe Deployment must be kept as observed: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestModelCacheAndHome: the model download folder is bounded and its size
// requested (v0.1.0 bounded neither: a crash-looping server re-downloaded
// until the node's disk was full), and HOME is writable.
func TestModelCacheAndHome(t *testing.T) {
	big, err := compose.ResolvePlatform(&v1beta1.Input{Spec: v1beta1.Defaults{Triton: &v1beta1.TritonDefaults{
		ModelCacheSizeLimit: ptr.To(kresource.MustParse("100Gi")), ModelCacheRequest: ptr.To(kresource.MustParse("50Gi")),
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason     string
		spec       string
		platform   compose.Platform
		sizeLimit  string
		ephemeral  string // the container's ephemeral-storage request
		ephLimited bool   // the spec sets an ephemeral-storage limit
	}{
		"PlatformDefault": {
			reason:   "Built-in: a 20Gi folder, 10Gi for models + 1Gi scratch requested.",
			platform: platform(t), sizeLimit: "20Gi", ephemeral: "11Gi",
		},
		"PlatformOverride": {
			reason: "The platform's sizes.", platform: big, sizeLimit: "100Gi", ephemeral: "51Gi",
		},
		"ServerOverride": {
			reason: "The server's own sizes win.", spec: "modelCache: {sizeLimit: 8Gi, request: 4Gi}\n", platform: big,
			sizeLimit: "8Gi", ephemeral: "5Gi",
		},
		"EqualSizes": {
			reason: "A size limit equal to the request is fine.", spec: "modelCache: {sizeLimit: 10Gi}\n", platform: platform(t),
			sizeLimit: "10Gi", ephemeral: "11Gi",
		},
		"OwnRequest": {
			reason: "An ephemeral-storage request in spec.resources is used as given.", spec: "resources: {requests: {ephemeral-storage: 30Gi}}\n", platform: platform(t),
			sizeLimit: "20Gi", ephemeral: "30Gi",
		},
		"OwnLimit": {
			reason: "An ephemeral-storage limit alone: Kubernetes makes it the request, none is added.", spec: "resources: {limits: {ephemeral-storage: 40Gi}}\n", platform: platform(t),
			sizeLimit: "20Gi", ephLimited: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := composeDeployment(t, tc.spec, readyApp, tc.platform)
			c := tritonContainer(t, d)
			var limit *kresource.Quantity
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == "model-cache" && v.EmptyDir != nil {
					limit = v.EmptyDir.SizeLimit
				}
			}
			if limit == nil || limit.Cmp(kresource.MustParse(tc.sizeLimit)) != 0 {
				t.Errorf("%s\nmodel-cache sizeLimit: want %s, got %v", tc.reason, tc.sizeLimit, limit)
			}
			got, requested := c.Resources.Requests[corev1.ResourceEphemeralStorage]
			switch {
			case tc.ephLimited && requested:
				t.Errorf("%s\nno ephemeral-storage request may be added beside the spec's limit, got %s", tc.reason, got.String())
			case !tc.ephLimited && (!requested || got.Cmp(kresource.MustParse(tc.ephemeral)) != 0):
				t.Errorf("%s\nephemeral-storage request: want %s, got %s", tc.reason, tc.ephemeral, got.String())
			}
			if len(c.Env) == 0 || c.Env[0] != (corev1.EnvVar{Name: "HOME", Value: "/var/lib/triton/home"}) {
				t.Errorf("%s\nHOME must be the writable home folder: %v", tc.reason, c.Env)
			}
			home := false
			for _, m := range c.VolumeMounts {
				home = home || m.Name == "home" && m.MountPath == "/var/lib/triton/home" && !m.ReadOnly
			}
			if !home {
				t.Errorf("%s\nthe home folder must be a writable mount: %v", tc.reason, c.VolumeMounts)
			}
		})
	}
}

// TestModelCacheRefused: a size limit below the model cache's request is
// refused naming the field and where each value came from.
func TestModelCacheRefused(t *testing.T) {
	cases := map[string]struct{ reason, spec, want string }{
		"ServerLimitBelowPlatformRequest": {
			reason: "The server's limit is below the platform's request.",
			spec:   "modelCache: {sizeLimit: 5Gi}\n",
			want:   "spec.modelCache.sizeLimit: the model cache's size limit 5Gi (spec.modelCache.sizeLimit) is below its request 10Gi (the platform default triton.modelCacheRequest): the pod would be evicted before its models fit",
		},
		"ServerRequestAbovePlatformLimit": {
			reason: "The server's request is above the platform's limit.",
			spec:   "modelCache: {request: 30Gi}\n",
			want:   "spec.modelCache.request: the model cache's size limit 20Gi (the platform default triton.modelCacheSizeLimit) is below its request 30Gi (spec.modelCache.request)",
		},
		"ZeroRequest": {
			reason: "A zero request reserves nothing for the models.",
			spec:   "modelCache: {request: '0'}\n",
			want:   "spec.modelCache.request: 0 must be above zero",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := scene{xr: serverXR(tc.spec, ""), required: map[string][]string{reqApplication: {readyApp}}}.run(t, int64s, platform(t))
			if r.Fatal == nil || !strings.Contains(r.Fatal.Error(), tc.want) {
				t.Errorf("%s\nwant Fatal containing %q, got %v", tc.reason, tc.want, r.Fatal)
			}
		})
	}
}

// TestTerminationMessage: a failing Triton's last log lines become its
// termination message, which the pod's lastState carries and the
// ServerAvailable condition quotes.
func TestTerminationMessage(t *testing.T) {
	d := composeDeployment(t, "", readyApp, platform(t))
	if c := tritonContainer(t, d); c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("terminationMessagePolicy: want FallbackToLogsOnError, got %q", c.TerminationMessagePolicy)
	}
	pod := `{apiVersion: v1, kind: Pod, metadata: {name: resnet-deploy-7d9f-abcde, namespace: vision-dev, labels: {kalypso-serving.io/tritonserver: resnet}},
  status: {containerStatuses: [{name: tritonserver, state: {waiting: {reason: CrashLoopBackOff}},
    lastState: {terminated: {exitCode: 1, reason: Error, message: "E1205 failed to load 'resnet50' version 1: Invalid argument: model input dims mismatch\nerror: creating server: Internal - failed to load all models\n"}}}]}}`
	r := scene{xr: serverXR("", snapshot), observed: created(t, "", deployProgressing), required: map[string][]string{reqApplication: {readyApp}, reqPods: {pod}}}.run(t, int64s, readPodsPlatform(t))
	if r.Fatal != nil {
		t.Fatal(r.Fatal)
	}
	want := "pod resnet-deploy-7d9f-abcde is crash looping: last exit code 1 (Error) E1205 failed to load 'resnet50' version 1: Invalid argument: model input dims mismatch\nerror: creating server: Internal - failed to load all models"
	if got := condsOf(r)[ConditionServerAvailable]; got != (cond{false, "CrashLoopBackOff"}) || message(r, ConditionServerAvailable) != want {
		t.Errorf("ServerAvailable: want False CrashLoopBackOff %q, got %+v %q", want, got, message(r, ConditionServerAvailable))
	}
}
