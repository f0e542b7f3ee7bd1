package tritonserver

import (
	"bytes"
	"encoding/json"
	"google.golang.org/protobuf/types/known/structpb"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	protectionv1beta1 "github.com/crossplane/crossplane/apis/v2/protection/v1beta1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// Scenario tests run with both forms of numbers a request's objects come
// with (composetest.Numbers); the others with int64s, as render sends them.
const int64s = composetest.Int64s

var encodings = []composetest.Numbers{int64s, composetest.Float64s}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// serverXR is the server resnet of application classifier in vision-dev,
// with extra spec lines and an optional status (both unindented YAML).
func serverXR(spec, status string) string {
	y := "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoTritonServer\nmetadata: {name: resnet, namespace: vision-dev, generation: 2}\n" +
		"spec:\n  applicationRef: classifier\n  storageUri: s3://models/resnet\n" + indent(spec, "  ")
	if status != "" {
		y += "status:\n" + indent(status, "  ")
	}
	return y
}

// withURI replaces the server's storage URI.
func withURI(xr, uri string) string {
	return strings.Replace(xr, "storageUri: s3://models/resnet", "storageUri: "+uri, 1)
}

const (
	readyApp = `apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoApplication
metadata: {name: classifier, namespace: vision-dev}
spec:
  projectRef: vision
  storage: {provider: s3, secretName: models-creds, region: eu-west-1}
status:
  environment: dev
  conditions: [{type: Ready, status: "True", reason: Available, lastTransitionTime: "2026-01-01T00:00:00Z"}]
`
	// snapshot is what a server records of readyApp (checked by
	// TestComposeApplication/FirstCreate).
	snapshot = `application: {name: classifier, project: vision, environment: dev, storage: {provider: s3, secretName: models-creds, region: eu-west-1}}`

	smCRD         = `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: servicemonitors.monitoring.coreos.com}, spec: {group: monitoring.coreos.com, names: {kind: ServiceMonitor, plural: servicemonitors}, scope: Namespaced, versions: [{name: v1, served: true, storage: true}]}}`
	kedaCRD       = `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: scaledobjects.keda.sh}, spec: {group: keda.sh, names: {kind: ScaledObject, plural: scaledobjects}, scope: Namespaced, versions: [{name: v1alpha1, served: true, storage: true}]}}`
	ruleCRD       = `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: prometheusrules.monitoring.coreos.com}, spec: {group: monitoring.coreos.com, names: {kind: PrometheusRule, plural: prometheusrules}, scope: Namespaced, versions: [{name: v1, served: true, storage: true}]}}`
	metricsAPISvc = `{apiVersion: apiregistration.k8s.io/v1, kind: APIService, metadata: {name: v1beta1.custom.metrics.k8s.io},
  status: {conditions: [{type: Available, status: "True", reason: Passed}]}}`
	// An adapter that is registered but does not answer.
	metricsAPIDown = `{apiVersion: apiregistration.k8s.io/v1, kind: APIService, metadata: {name: v1beta1.custom.metrics.k8s.io},
  status: {conditions: [{type: Available, status: "False", reason: ServiceNotFound, message: service monitoring/prometheus-adapter is not present}]}}`

	deployAvailable   = `{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}}`
	deployProgressing = `{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, unavailableReplicas: 1, conditions: [{type: Available, status: "False", reason: MinimumReplicasUnavailable}, {type: Progressing, status: "True", reason: ReplicaSetUpdated}]}}`
	serviceReady      = `{spec: {clusterIP: 10.96.0.10}}`
)

var (
	snapshotStatus = &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev",
		Storage: &v1alpha1.StorageSpec{Provider: "s3", SecretName: "models-creds", Region: "eu-west-1"}}
	serverLabels = compose.Owner{Project: "vision", Environment: "dev", Application: "classifier", TritonServer: "resnet"}.Labels("tritonserver", "resnet")
	selector     = map[string]string{compose.LabelTritonServer: "resnet"}
)

func appWith(old, replacement string) string { return strings.Replace(readyApp, old, replacement, 1) }

var notReadyApp = appWith(`status: "True", reason: Available`, `status: "False", reason: ProjectNotFound`)

func platform(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{})
}

// apiKeySecret is the platform's API key Secret as the API server returns
// it in vision-dev, for the platform p: the restricted APIs' key under
// p.RestrictedAPISecretKey.
func apiKeySecret(p compose.Platform) string {
	return "{apiVersion: v1, kind: Secret, metadata: {name: " + p.RestrictedAPISecret + ", namespace: vision-dev}, type: Opaque, data: {" +
		p.RestrictedAPISecretKey + ": " + apiKeyBase64 + "}}"
}

// The API key's marker value, in clear and as the Secret carries it: it
// must never appear in a composed object.
const (
	apiKeyValue  = "SECRET-MARKER-API-KEY"
	apiKeyBase64 = "U0VDUkVULU1BUktFUi1BUEktS0VZ"
)

// scene is one call: the observed composite, its observed composed
// objects and the required resources found (keys absent: not found). The
// platform's API key Secret is the exception: it exists unless the scene
// names reqAPIKey (nil or empty: missing), because every server that does
// not opt out needs it.
type scene struct {
	xr       string
	observed map[string]string
	required map[string][]string
}

func (s scene) composer(t *testing.T, enc composetest.Numbers) (*Composer, error) {
	t.Helper()
	return New(enc.Composite(t, s.xr), enc.Observed(t, s.observed))
}

// run composes the scene as RunFunction does: only the requirements the
// composer asked for are passed, each resolved (found or not).
func (s scene) run(t *testing.T, enc composetest.Numbers, p compose.Platform) compose.Result {
	t.Helper()
	c, err := s.composer(t, enc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	req := map[string][]string{}
	for k := range c.Requirements(p) {
		found, named := s.required[k]
		if k == reqAPIKey && !named {
			found = []string{apiKeySecret(p)}
		}
		req[k] = found
	}
	required := enc.Required(t, req)
	// A schema is served when the scene holds the kind's CRD.
	for k, sel := range compose.SchemasOf(c, p) {
		var pool []map[string]any
		for _, o := range s.required[k] {
			pool = append(pool, composetest.Object(t, o))
		}
		var served *structpb.Struct
		if schema, ok := composetest.ServedSchema(sel, pool); ok {
			if served, err = structpb.NewStruct(schema); err != nil {
				t.Fatal(err)
			}
		}
		required[k] = compose.Served(sel, served)
	}
	return c.Compose(p, required)
}

// observe turns a desired object into what the API server returns for it,
// with the YAML patch merged in (generation, status, clusterIP…).
func observe(t *testing.T, d *resource.DesiredComposed, patch string) string {
	t.Helper()
	j, err := json.Marshal(d.Resource.Object)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	if err := json.Unmarshal(j, &obj); err != nil {
		t.Fatal(err)
	}
	if patch != "" {
		p := map[string]any{}
		if err := yaml.Unmarshal([]byte(patch), &p); err != nil {
			t.Fatalf("bad patch: %v", err)
		}
		composetest.Merge(obj, p)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// created composes a server with extra spec lines for a Ready application
// and returns its objects as observed afterwards: the Deployment with the
// given patch, the Service with a cluster IP, the rest as they are.
//
// It reconciles until nothing new is composed: a ServiceMonitor follows the
// Deployment one call later (Schemas).
func created(t *testing.T, spec, deployPatch string) map[string]string {
	t.Helper()
	return createdOn(t, platform(t), spec, deployPatch)
}

// createdOn is created for the platform p, with KEDA installed.
func createdOn(t *testing.T, p compose.Platform, spec, deployPatch string) map[string]string {
	t.Helper()
	var out map[string]string
	for range 3 {
		r := scene{xr: serverXR(spec, ""), observed: out, required: map[string][]string{reqApplication: {readyApp}, reqServiceMonitor: {smCRD}, reqMetricsAPI: {metricsAPISvc}, reqScaledObject: {kedaCRD}, reqPrometheusRule: {ruleCRD}}}.run(t, int64s, p)
		if r.Fatal != nil {
			t.Fatalf("compose: %v", r.Fatal)
		}
		next := map[string]string{}
		for n, d := range r.Desired {
			switch n {
			case resDeployment:
				next[string(n)] = observe(t, d, deployPatch)
			case resService:
				next[string(n)] = observe(t, d, serviceReady)
			default:
				next[string(n)] = observe(t, d, "")
			}
		}
		if out != nil && len(next) == len(out) {
			return next
		}
		out = next
	}
	return out
}

// carried is an observed object as it must be carried forward: its content
// and identifying metadata, none of the API server's bookkeeping (status,
// generation, managedFields, uid…).
func carried(t *testing.T, observed string) map[string]any {
	t.Helper()
	obj := composetest.Object(t, observed)
	delete(obj, "status")
	m := obj["metadata"].(map[string]any)
	keep := map[string]any{}
	for _, k := range []string{"name", "namespace", "labels", "annotations"} {
		if v, ok := m[k]; ok {
			keep[k] = v
		}
	}
	obj["metadata"] = keep
	return obj
}

// cond is a condition's status and reason.
type cond struct {
	Status bool
	Reason string
}

func condsOf(r compose.Result) map[string]cond {
	out := map[string]cond{}
	for _, c := range r.Conditions {
		out[c.Type] = cond{c.Status, c.Reason}
	}
	return out
}

func message(r compose.Result, typ string) string {
	for _, c := range r.Conditions {
		if c.Type == typ {
			return c.Message
		}
	}
	return ""
}

// pendingConds are the conditions of a server that waits before its first
// create: every condition type is sent, and the problem replaces the
// condition of its own type (overrides).
func pendingConds(overrides map[string]cond) map[string]cond {
	out := map[string]cond{
		ConditionApplicationReady: {true, "ApplicationReady"},
		ConditionServerAvailable:  {false, "WaitingToCreate"},
		ConditionMetricsScraping:  {false, "NotCreated"},
		ConditionTracing:          {false, "NotCreated"},
		ConditionProfiling:        {false, "NotCreated"},
		ConditionAutoscaling:      {false, "NotCreated"},
		ConditionAPIRestricted:    {false, "NotCreated"},
		ConditionShutdown:         {false, "NotCreated"},
		ConditionAlerting:         {false, "NotCreated"},
		ConditionGPUClass:         {true, reasonNoGPUs},
	}
	maps.Copy(out, overrides)
	return out
}

// appPending are the conditions of a server waiting for its application.
func appPending(reason string) map[string]cond {
	return pendingConds(map[string]cond{ConditionApplicationReady: {false, reason}})
}

// composedConds are the conditions of a plain server that composes, with
// overrides.
func composedConds(overrides map[string]cond) map[string]cond {
	out := map[string]cond{
		ConditionApplicationReady: {true, "ApplicationReady"},
		ConditionServerAvailable:  {false, "Creating"},
		ConditionMetricsScraping:  {false, "ServiceMonitorDisabled"},
		ConditionTracing:          {false, "TracingDisabled"},
		ConditionProfiling:        {false, "ProfilingDisabled"},
		ConditionAutoscaling:      {false, "AutoscalingDisabled"},
		ConditionAPIRestricted:    {true, "APIKeyRequired"},
		ConditionShutdown:         {true, "DrainConfigured"},
		ConditionAlerting:         {false, reasonAlertsDisabled},
		ConditionGPUClass:         {true, reasonNoGPUs},
	}
	maps.Copy(out, overrides)
	return out
}

func readiness(r compose.Result) map[string]resource.Ready {
	out := map[string]resource.Ready{}
	for n, d := range r.Desired {
		out[string(n)] = d.Ready
	}
	return out
}

func all(ready resource.Ready, names ...resource.Name) map[string]resource.Ready {
	out := map[string]resource.Ready{}
	for _, n := range names {
		out[string(n)] = ready
	}
	return out
}

// decodeStrict converts a desired object into its typed form, rejecting
// unknown fields: what the function emits must be what the type defines.
func decodeStrict[T any](t *testing.T, r compose.Result, name resource.Name) *T {
	t.Helper()
	d, ok := r.Desired[name]
	if !ok {
		t.Fatalf("%s is not composed", name)
	}
	b, err := json.Marshal(d.Resource.Object)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s does not decode strictly into %T: %v\n%s", name, out, err, b)
	}
	return out
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tritonContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if len(d.Spec.Template.Spec.Containers) != 1 || d.Spec.Template.Spec.Containers[0].Name != containerName {
		t.Fatalf("want one container %s, got %+v", containerName, d.Spec.Template.Spec.Containers)
	}
	return d.Spec.Template.Spec.Containers[0]
}

func hasArg(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// want is what a scenario checks; zero fields are checked too (a pending
// server has no resources).
type want struct {
	resources   map[string]resource.Ready
	conditions  map[string]cond
	messages    map[string]string // condition type → substring of its message
	phase       string
	ready       bool
	ttl         time.Duration
	application *v1alpha1.ServerApplicationStatus
	check       func(t *testing.T, r compose.Result)
}

func (w want) verify(t *testing.T, reason string, r compose.Result) {
	t.Helper()
	if r.Fatal != nil {
		t.Fatalf("%s\nunexpected Fatal: %v", reason, r.Fatal)
	}
	if diff := cmp.Diff(w.resources, readiness(r)); diff != "" {
		t.Errorf("%s\ndesired resources: -want, +got:\n%s", reason, diff)
	}
	if diff := cmp.Diff(w.conditions, condsOf(r)); diff != "" {
		t.Errorf("%s\nconditions: -want, +got:\n%s", reason, diff)
	}
	for typ, sub := range w.messages {
		if m := message(r, typ); !strings.Contains(m, sub) {
			t.Errorf("%s\n%s message: want it to contain %q, got %q", reason, typ, sub, m)
		}
	}
	st := r.Status.(*v1alpha1.KalypsoTritonServerStatus)
	if st.Phase != w.phase {
		t.Errorf("%s\nphase: want %s, got %s (%s)", reason, w.phase, st.Phase, st.Message)
	}
	if st.ObservedGeneration != 2 {
		t.Errorf("%s\nobservedGeneration: want 2, got %d", reason, st.ObservedGeneration)
	}
	if diff := cmp.Diff(w.application, st.Application); diff != "" {
		t.Errorf("%s\nstatus.application: -want, +got:\n%s", reason, diff)
	}
	if r.Ready != w.ready {
		t.Errorf("%s\ncomposite ready: want %v, got %v", reason, w.ready, r.Ready)
	}
	if r.TTL != w.ttl {
		t.Errorf("%s\nTTL: want %v, got %v", reason, w.ttl, r.TTL)
	}
	if w.check != nil {
		w.check(t, r)
	}
}

func TestComposeApplication(t *testing.T) {
	base := created(t, "", deployAvailable)
	firstCreate := scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}}}.run(t, int64s, platform(t))
	gcs := withURI(serverXR("", snapshot), "gs://models/resnet")

	cases := map[string]struct {
		reason string
		scene  scene
		want   want
	}{
		"ApplicationMissingBeforeCreate": {
			reason: "Before the first create a missing application means waiting: nothing composed, asked again soon.",
			scene:  scene{xr: serverXR("", "")},
			want: want{
				resources: map[string]resource.Ready{}, conditions: appPending("ApplicationNotFound"), phase: PhasePending, ttl: compose.WaitTTL,
				messages: map[string]string{
					ConditionApplicationReady: "KalypsoApplication classifier does not exist in namespace vision-dev",
					ConditionServerAvailable:  "the Deployment is not created yet: KalypsoApplication classifier does not exist in namespace vision-dev",
					ConditionAPIRestricted:    "the server is not created yet",
				},
				check: func(t *testing.T, r compose.Result) {
					if st := r.Status.(*v1alpha1.KalypsoTritonServerStatus); st.Message != message(r, ConditionApplicationReady) {
						t.Errorf("status.message must repeat the problem: %q vs %q", st.Message, message(r, ConditionApplicationReady))
					}
				},
			},
		},
		"ApplicationNotReadyBeforeCreate": {
			reason: "An application that is not Ready is waited for too.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {notReadyApp}}},
			want: want{
				resources: map[string]resource.Ready{}, conditions: appPending("ApplicationNotReady"), phase: PhasePending, ttl: compose.WaitTTL,
				messages: map[string]string{ConditionApplicationReady: "KalypsoApplication classifier is not Ready yet"},
			},
		},
		"ApplicationWithoutConditions": {
			reason: "An application its function has not processed yet has no Ready condition: not Ready.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {strings.Split(readyApp, "status:")[0]}}},
			want:   want{resources: map[string]resource.Ready{}, conditions: appPending("ApplicationNotReady"), phase: PhasePending, ttl: compose.WaitTTL},
		},
		"FirstCreate": {
			reason: "A Ready application: the Deployment, Service and Usage are composed (none ready yet) and the application's settings recorded.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(nil), phase: PhasePending, ttl: compose.PollTTL, application: snapshotStatus,
				check: func(t *testing.T, r compose.Result) {
					wantStatus := &v1alpha1.KalypsoTritonServerStatus{
						Phase: PhasePending, DeploymentName: "resnet-deploy",
						ServiceEndpoint: "http://resnet-svc.vision-dev.svc:8000", GRPCEndpoint: "resnet-svc.vision-dev.svc:8001",
						Message: "the Deployment is being created", ObservedGeneration: 2, Application: snapshotStatus,
					}
					if diff := cmp.Diff(wantStatus, r.Status); diff != "" {
						t.Errorf("status: -want, +got:\n%s", diff)
					}
					d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
					if diff := cmp.Diff(serverLabels, d.Labels); diff != "" {
						t.Errorf("labels name the project and environment of the application: -want, +got:\n%s", diff)
					}
					if d.Name != "resnet-deploy" || d.Namespace != "vision-dev" {
						t.Errorf("deployment: got %s/%s", d.Namespace, d.Name)
					}
				},
			},
		},
		"Running": {
			reason: "Every object observed and the Deployment available: the server is Running and the composite ready.",
			scene:  scene{xr: serverXR("", snapshot), observed: base, required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources:  all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{ConditionServerAvailable: {true, "AllReplicasAvailable"}}),
				phase:      PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "1/1 replicas available"},
			},
		},
		"ApplicationGoneWithSnapshot": {
			reason: "The application vanishes after the Deployment exists: the Deployment is still built, from status.application, exactly as before.",
			scene:  scene{xr: serverXR("", snapshot), observed: base},
			want: want{
				resources: all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{
					ConditionApplicationReady: {false, "ApplicationNotFound"}, ConditionServerAvailable: {true, "AllReplicasAvailable"},
				}),
				messages: map[string]string{ConditionApplicationReady: "the server keeps running with the application's last known settings"},
				phase:    PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: func(t *testing.T, r compose.Result) {
					if diff := cmp.Diff(jsonOf(t, firstCreate.Desired[resDeployment].Resource.Object), jsonOf(t, r.Desired[resDeployment].Resource.Object)); diff != "" {
						t.Errorf("the Deployment must be the one built while the application was there (same env, labels): -want, +got:\n%s", diff)
					}
				},
			},
		},
		"ApplicationNotReadyWithSnapshot": {
			reason: "An application that turns not Ready after the create does not change the server either.",
			scene:  scene{xr: serverXR("", snapshot), observed: base, required: map[string][]string{reqApplication: {notReadyApp}}},
			want: want{
				resources: all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{
					ConditionApplicationReady: {false, "ApplicationNotReady"}, ConditionServerAvailable: {true, "AllReplicasAvailable"},
				}),
				messages: map[string]string{ConditionApplicationReady: "keeps running"},
				phase:    PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: func(t *testing.T, r compose.Result) {
					if diff := cmp.Diff(jsonOf(t, firstCreate.Desired[resDeployment].Resource.Object), jsonOf(t, r.Desired[resDeployment].Resource.Object)); diff != "" {
						t.Errorf("deployment: -want, +got:\n%s", diff)
					}
				},
			},
		},
		"ApplicationGoneWithoutSnapshot": {
			reason: "No application and nothing recorded (a server from before status.application): the observed Deployment is carried forward, never dropped.",
			scene:  scene{xr: serverXR("", ""), observed: base},
			want: want{
				resources: all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{
					ConditionApplicationReady: {false, "ApplicationNotFound"}, ConditionServerAvailable: {true, "AllReplicasAvailable"},
				}),
				messages: map[string]string{ConditionApplicationReady: "the Deployment is kept as it is until this is fixed"},
				phase:    PhaseRunning, ready: true, ttl: compose.WaitTTL,
				check: func(t *testing.T, r compose.Result) {
					if diff := cmp.Diff(jsonOf(t, carried(t, base[string(resDeployment)])), jsonOf(t, r.Desired[resDeployment].Resource.Object)); diff != "" {
						t.Errorf("deployment must be carried forward: -want, +got:\n%s", diff)
					}
				},
			},
		},
		"StorageMismatchBeforeCreate": {
			reason: "A gs:// repository with an S3 application cannot work: nothing is created, and the condition names both fields.",
			scene:  scene{xr: withURI(serverXR("", ""), "gs://models/resnet"), required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources: map[string]resource.Ready{}, conditions: appPending("StorageProviderMismatch"), phase: PhasePending, ttl: compose.WaitTTL,
				// The application is there: what it says is recorded, though
				// nothing is created from it.
				application: snapshotStatus,
				messages:    map[string]string{ConditionApplicationReady: `spec.storageUri "gs://models/resnet" is gcs storage but KalypsoApplication classifier has spec.storage.provider s3`},
			},
		},
		"StorageMismatchAfterCreate": {
			reason: "The same mismatch after the create keeps the running Deployment as it is (still on S3) and says why.",
			scene:  scene{xr: gcs, observed: base, required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources: all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{
					ConditionApplicationReady: {false, "StorageProviderMismatch"}, ConditionServerAvailable: {true, "AllReplicasAvailable"},
				}),
				messages: map[string]string{ConditionApplicationReady: `spec.storageUri "gs://models/resnet" is gcs storage but KalypsoApplication classifier has spec.storage.provider s3: make them agree; the Deployment is kept as it is`},
				phase:    PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: func(t *testing.T, r compose.Result) {
					d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
					if c := tritonContainer(t, d); !hasArg(c.Args, "--model-repository=s3://models/resnet") {
						t.Errorf("the carried Deployment must keep its S3 repository, got %v", c.Args)
					}
				},
			},
		},
		"GCSApplication": {
			reason: "gs:// with a gcs application works.",
			scene: scene{xr: withURI(serverXR("", ""), "gs://models/resnet"), required: map[string][]string{reqApplication: {
				appWith("storage: {provider: s3, secretName: models-creds, region: eu-west-1}", "storage: {provider: gcs, secretName: gcs-sa}"),
			}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(nil), phase: PhasePending, ttl: compose.PollTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev",
					Storage: &v1alpha1.StorageSpec{Provider: "gcs", SecretName: "gcs-sa"}},
				check: func(t *testing.T, r compose.Result) {
					d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
					c := tritonContainer(t, d)
					if !hasArg(c.Args, "--model-repository=gs://models/resnet") {
						t.Errorf("args: %v", c.Args)
					}
					if c.Env[2].Name != "GOOGLE_APPLICATION_CREDENTIALS" || len(c.VolumeMounts) != 5 || c.VolumeMounts[4].Name != "gcs-credentials" {
						t.Errorf("gcs credentials are not mounted: env %v, mounts %v", c.Env, c.VolumeMounts)
					}
				},
			},
		},
		"ProviderDefaultsToS3": {
			reason: "An application the API server has not defaulted (render) has no provider: S3.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {appWith("provider: s3, ", "")}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(nil), phase: PhasePending, ttl: compose.PollTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev",
					Storage: &v1alpha1.StorageSpec{SecretName: "models-creds", Region: "eu-west-1"}},
			},
		},
		"MinIOEndpoint": {
			reason: "The application's S3 endpoint goes into the model URI.",
			scene: scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {
				appWith("region: eu-west-1}", "endpoint: 'http://minio.minio.svc:9000'}"),
			}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(nil), phase: PhasePending, ttl: compose.PollTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev",
					Storage: &v1alpha1.StorageSpec{Provider: "s3", SecretName: "models-creds", Endpoint: "http://minio.minio.svc:9000"}},
				check: func(t *testing.T, r compose.Result) {
					if c := tritonContainer(t, decodeStrict[appsv1.Deployment](t, r, resDeployment)); !hasArg(c.Args, "--model-repository=s3://minio.minio.svc:9000/models/resnet") {
						t.Errorf("args: %v", c.Args)
					}
				},
			},
		},
		"StorageEndpointInvalidBeforeCreate": {
			reason: "An endpoint Triton cannot use is the application's problem: the server waits for it to be fixed.",
			scene: scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {
				appWith("region: eu-west-1}", "endpoint: 'minio:9000'}"),
			}}},
			want: want{
				resources: map[string]resource.Ready{}, conditions: appPending("StorageEndpointInvalid"), phase: PhasePending, ttl: compose.WaitTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev",
					Storage: &v1alpha1.StorageSpec{Provider: "s3", SecretName: "models-creds", Endpoint: "minio:9000"}},
				messages: map[string]string{ConditionApplicationReady: `the application's spec.storage.endpoint "minio:9000"`},
			},
		},
	}
	for name, tc := range cases {
		for _, enc := range encodings {
			t.Run(name+"/"+string(enc), func(t *testing.T) {
				tc.want.verify(t, tc.reason, tc.scene.run(t, enc, platform(t)))
			})
		}
	}
}

func TestComposePhases(t *testing.T) {
	progressing := created(t, "", deployProgressing)
	withDeploy := func(patch string) map[string]string {
		o := created(t, "", patch)
		return o
	}
	pod := func(status string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: resnet-deploy-7d9f-abcde, namespace: vision-dev, labels: {kalypso-serving.io/tritonserver: resnet}}\nstatus:\n" + indent(status, "  ")
	}
	waiting := func(reason, msg string) string {
		return pod("phase: Pending\nconditions: [{type: PodScheduled, status: 'True'}]\ncontainerStatuses:\n- name: tritonserver\n  ready: false\n  state: {waiting: {reason: " + reason + ", message: '" + msg + "'}}\n")
	}
	crashLoop := pod(`phase: Running
conditions: [{type: PodScheduled, status: 'True'}]
containerStatuses:
- name: tritonserver
  ready: false
  restartCount: 4
  state: {waiting: {reason: CrashLoopBackOff, message: 'back-off 1m20s restarting failed container'}}
  lastState: {terminated: {exitCode: 1, reason: Error, message: "error: creating server: Internal - failed to stat file s3://models/resnet\n"}}
`)
	unschedulable := pod("phase: Pending\nconditions: [{type: PodScheduled, status: 'False', reason: Unschedulable, message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.'}]\n")
	deadline := `{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 1, unavailableReplicas: 1, conditions: [{type: Available, status: "False"}, {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: 'ReplicaSet "resnet-deploy-7d9f" has timed out progressing.'}]}}`
	quotaRefused := `{metadata: {generation: 1}, status: {observedGeneration: 1, conditions: [{type: Available, status: "False"}, {type: Progressing, status: "True"}, {type: ReplicaFailure, status: "True", reason: FailedCreate, message: 'pods "resnet-deploy-7d9f-x" is forbidden: exceeded quota: vision-quota, requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=1, limited: requests.nvidia.com/gpu=1'}]}}`
	stale := `{metadata: {generation: 2}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True"}]}}`

	// Three replicas (a PodDisruptionBudget too), as a spec change or an
	// autoscaler leaves them: the Deployment's own spec says how many.
	threeReplicas := "replicas: 3\n"
	scaled := func(status string) map[string]string {
		return created(t, threeReplicas, `{metadata: {generation: 2}, status: `+status+`}`)
	}
	// A scale from 1 to 3 after a complete rollout: Kubernetes keeps the
	// Progressing reason NewReplicaSetAvailable (progress.go) and reads not
	// Available (1 < 3 - maxUnavailable 1; sync.go calculateStatus).
	scaleUp := `{observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "False", reason: MinimumReplicasUnavailable}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}%s]}`
	scalingUp := scaled(strings.Replace(scaleUp, "%s", "", 1))
	scaleUpRefused := scaled(strings.Replace(scaleUp, "%s", `, {type: ReplicaFailure, status: "True", reason: FailedCreate, message: 'pods "resnet-deploy-7d9f-x" is forbidden: exceeded quota: vision-quota'}`, 1))
	scaledDown := withDeploy(`{metadata: {generation: 2}, status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}}`)
	// A template change and a scale in one write: the controller scales the
	// old ReplicaSet first, the reason still that of the last rollout.
	templateAndScale := scaled(`{observedGeneration: 2, replicas: 3, updatedReplicas: 0, readyReplicas: 3, availableReplicas: 3, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}`)
	// Its one pod evicted (a node lost), before the ReplicaSet replaces it.
	allPodsGone := withDeploy(`{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 0, updatedReplicas: 0, availableReplicas: 0, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}}`)
	recreate := threeReplicas + "rollout: {strategy: Recreate}\n"
	// Recreate rolled back to a ReplicaSet it kept: NewReplicaSetAvailable
	// stays from the rollout before (sync.go getNewReplicaSet).
	recreateRolledBack := created(t, recreate, `{metadata: {generation: 2}, status: {observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "False", reason: MinimumReplicasUnavailable}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}}`)
	noDeadline := withDeploy(`{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}]}}`)
	paused := withDeploy(`{metadata: {generation: 2}, status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "Unknown", reason: DeploymentPaused}]}}`)
	rollingOut := scaled(`{observedGeneration: 2, replicas: 3, updatedReplicas: 1, readyReplicas: 2, availableReplicas: 2, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "True", reason: ReplicaSetUpdated}]}`)
	// The last step of a rollout without surge: the last old pod is
	// terminating (not counted in replicas) before the last new one exists.
	rolloutLastStep := scaled(`{observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, terminatingReplicas: 1, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "True", reason: ReplicaSetUpdated}]}`)
	firstStarting := withDeploy(`{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, unavailableReplicas: 1, conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable}, {type: Progressing, status: "True", reason: ReplicaSetUpdated}]}}`)
	wasAvailable := "conditions: [{type: ServerAvailable, status: 'True', reason: AllReplicasAvailable}]\n"
	rsCreateFailed := withDeploy(`{metadata: {generation: 2}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True"}, {type: Progressing, status: "False", reason: ReplicaSetCreateError, message: 'Failed to create new replica set "resnet-deploy-5c8d": admission webhook denied the request'}]}}`)

	notAvailable := func(reason string) map[string]cond {
		return composedConds(map[string]cond{ConditionServerAvailable: {false, reason}})
	}
	available := func(reason string) map[string]cond {
		return composedConds(map[string]cond{ConditionServerAvailable: {true, reason}})
	}
	resources := map[string]resource.Ready{string(resDeployment): resource.ReadyFalse, string(resService): resource.ReadyTrue, string(resUsage): resource.ReadyTrue}
	scaledResources := func(deploy resource.Ready) map[string]resource.Ready {
		return map[string]resource.Ready{string(resDeployment): deploy, string(resService): resource.ReadyTrue, string(resUsage): resource.ReadyTrue, string(resPDB): resource.ReadyTrue}
	}
	cases := map[string]struct {
		reason   string
		spec     string
		status   string // of the server, beside the application snapshot
		observed map[string]string
		pods     []string
		want     want
	}{
		"ScalingUp": {
			reason: "More replicas asked for (by the spec or an autoscaler) after a complete rollout: the server serves and stays Ready while they start, though Kubernetes reads the Deployment not Available.",
			spec:   threeReplicas, observed: scalingUp,
			want: want{resources: scaledResources(resource.ReadyTrue), conditions: available("ReplicasUnavailable"), phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "1/3 replicas available: Triton serves every model on them; the others are not available yet; kubectl get pods"}},
		},
		"ScaleUpUnschedulable": {
			reason: "A scale-up short of GPUs: still Ready, and the pods say why replicas are missing.",
			spec:   threeReplicas, observed: scalingUp, pods: []string{unschedulable},
			want: want{resources: scaledResources(resource.ReadyTrue), conditions: available("ReplicasUnavailable"), phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "1/3 replicas available: Triton serves every model on them; pod resnet-deploy-7d9f-abcde cannot be scheduled: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}},
		},
		"ScaleUpRefusedByQuota": {
			reason: "A scale-up the namespace's quota refuses: still Ready, with the refusal.",
			spec:   threeReplicas, observed: scaleUpRefused,
			want: want{resources: scaledResources(resource.ReadyTrue), conditions: available("ReplicasUnavailable"), phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: `1/3 replicas available: Triton serves every model on them; the Deployment cannot create pods: pods "resnet-deploy-7d9f-x" is forbidden: exceeded quota`}},
		},
		"ScaledDown": {
			reason:   "Pods being scaled down may still count as available: the message never shows more than asked for.",
			observed: scaledDown,
			want: want{resources: all(resource.ReadyTrue, resDeployment, resService, resUsage), conditions: available("AllReplicasAvailable"), phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "1/1 replicas available: Triton serves every model"}},
		},
		"TemplateAndScaleTogether": {
			reason: "A new template and a scale at once: no pod runs the new template yet, though the reason is still that of the last rollout.",
			spec:   threeReplicas, observed: templateAndScale,
			want: want{resources: scaledResources(resource.ReadyFalse), conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "3/3 replicas available: waiting for the rollout"}},
		},
		"AllPodsGone": {
			reason:   "The only pod evicted: nothing serves, whatever the reason of the last rollout.",
			observed: allPodsGone,
			want: want{resources: resources, conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "0/1 replicas available: waiting for the rollout"}},
		},
		"RecreateRolledBack": {
			reason: "Recreate keeps the last rollout's reason when it rolls back to a kept ReplicaSet: with Recreate every replica must be available.",
			spec:   recreate, observed: recreateRolledBack,
			want: want{resources: scaledResources(resource.ReadyFalse), conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "1/3 replicas available: waiting for the rollout"}},
		},
		"NoProgressDeadline": {
			reason:   "Without a Progressing condition (no progress deadline) every replica updated and available tells.",
			observed: noDeadline,
			want:     want{resources: all(resource.ReadyTrue, resDeployment, resService, resUsage), conditions: available("AllReplicasAvailable"), phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus},
		},
		"Paused": {
			reason:   "A paused Deployment (kubectl rollout pause) with every replica available serves.",
			observed: paused,
			want:     want{resources: all(resource.ReadyTrue, resDeployment, resService, resUsage), conditions: available("AllReplicasAvailable"), phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus},
		},
		"RollingOut": {
			reason: "A new pod template rolling out: the server does not yet serve its spec, however many old pods are available.",
			spec:   threeReplicas, observed: rollingOut,
			want: want{resources: scaledResources(resource.ReadyFalse), conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "2/3 replicas available: waiting for the rollout"}},
		},
		"RolloutLastStep": {
			reason: "Every counted pod is updated, but the last old pod is draining and the last new one does not exist yet: the rollout is not complete.",
			spec:   threeReplicas, observed: rolloutLastStep,
			want: want{resources: scaledResources(resource.ReadyFalse), conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "2/3 replicas available: waiting for the rollout"}},
		},
		"FirstReplicaStarting": {
			reason:   "One replica and one allowed unavailable: Kubernetes calls the Deployment Available with nothing running; the server is not.",
			observed: firstStarting,
			want: want{resources: resources, conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "0/1 replicas available: waiting for the rollout"}},
		},
		"StaleGenerationReplicaSetCreateError": {
			reason: "The controller cannot create the new template's ReplicaSet and so never observes the generation: not the last answer but Failed, with the refusal.",
			status: wasAvailable, observed: rsCreateFailed,
			want: want{resources: resources, conditions: notAvailable("ReplicaSetCreateError"), phase: PhaseFailed, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "the Deployment cannot create the ReplicaSet of its new template: Failed to create new replica set"}},
		},
		"StaleGenerationKeepsAvailable": {
			reason: "A Deployment whose controller has not seen its latest change (an autoscaler's scale, a spec change) keeps the server's last answer: no flap to not Ready for the moment it takes.",
			status: wasAvailable, observed: withDeploy(`{metadata: {generation: 2}, status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True"}]}}`),
			want: want{resources: all(resource.ReadyTrue, resDeployment, resService, resUsage), conditions: available("AllReplicasAvailable"), phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus},
		},
		"Progressing": {
			reason:   "Rolling out without a telling pod: Pending, Progressing.",
			observed: progressing,
			want: want{resources: resources, conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "0/1 replicas available: waiting for the rollout"}},
		},
		"StaleGeneration": {
			reason:   "The controller has not seen the current generation: not available yet, whatever the counts say.",
			observed: withDeploy(stale),
			want:     want{resources: resources, conditions: notAvailable("Progressing"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus},
		},
		"ImagePullFailed": {
			reason:   "A pod that cannot pull its image says so.",
			observed: progressing,
			pods:     []string{waiting("ImagePullBackOff", `Back-off pulling image "nvcr.io/nvidia/tritonserver:24.13-py3"`)},
			want: want{resources: resources, conditions: notAvailable("ImagePullFailed"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: `pod resnet-deploy-7d9f-abcde cannot pull its image (ImagePullBackOff): Back-off pulling image "nvcr.io/nvidia/tritonserver:24.13-py3"`}},
		},
		"CrashLoopBackOff": {
			reason:   "A crash-looping pod reports its last exit code and Triton's last words.",
			observed: progressing,
			pods:     []string{crashLoop},
			want: want{resources: resources, conditions: notAvailable("CrashLoopBackOff"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "pod resnet-deploy-7d9f-abcde is crash looping: last exit code 1 (Error) error: creating server: Internal - failed to stat file s3://models/resnet"}},
		},
		"Unschedulable": {
			reason:   "A pod no node takes reports the scheduler's message.",
			observed: progressing,
			pods:     []string{unschedulable},
			want: want{resources: resources, conditions: notAvailable("Unschedulable"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "pod resnet-deploy-7d9f-abcde cannot be scheduled: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}},
		},
		"CreateContainerConfigError": {
			reason:   "A missing storage secret shows as CreateContainerConfigError.",
			observed: progressing,
			pods:     []string{waiting("CreateContainerConfigError", `secret "models-creds" not found`)},
			want: want{resources: resources, conditions: notAvailable("CreateContainerConfigError"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: `pod resnet-deploy-7d9f-abcde cannot start its container: secret "models-creds" not found`}},
		},
		"MostTellingPodWins": {
			reason:   "Of several pods, an image problem says more than a scheduling one.",
			observed: progressing,
			pods:     []string{unschedulable, strings.Replace(waiting("ErrImagePull", "not found"), "abcde", "fghij", 1)},
			want: want{resources: resources, conditions: notAvailable("ImagePullFailed"), phase: PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: "pod resnet-deploy-7d9f-fghij cannot pull its image (ErrImagePull)"}},
		},
		"ProgressDeadlineExceeded": {
			reason:   "A Deployment past its progress deadline makes the server Failed with its message, not Pending forever.",
			observed: withDeploy(deadline),
			pods:     []string{crashLoop},
			want: want{resources: resources, conditions: notAvailable("ProgressDeadlineExceeded"), phase: PhaseFailed, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: `ReplicaSet "resnet-deploy-7d9f" has timed out progressing.; pod resnet-deploy-7d9f-abcde is crash looping`}},
		},
		"ReplicaFailure": {
			reason:   "A ReplicaSet that cannot create pods (quota refusal) makes the server Failed with the refusal.",
			observed: withDeploy(quotaRefused),
			want: want{resources: resources, conditions: notAvailable("ReplicaFailure"), phase: PhaseFailed, ttl: compose.WaitTTL, application: snapshotStatus,
				messages: map[string]string{ConditionServerAvailable: `the Deployment cannot create pods: pods "resnet-deploy-7d9f-x" is forbidden: exceeded quota: vision-quota`}},
		},
		"Running": {
			reason:   "Available: Running; a leftover pod problem (a replaced pod) does not matter.",
			observed: withDeploy(deployAvailable),
			pods:     []string{crashLoop},
			want: want{resources: all(resource.ReadyTrue, resDeployment, resService, resUsage), conditions: composedConds(map[string]cond{ConditionServerAvailable: {true, "AllReplicasAvailable"}}),
				phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus},
		},
	}
	for name, tc := range cases {
		for _, enc := range encodings {
			t.Run(name+"/"+string(enc), func(t *testing.T) {
				s := scene{xr: serverXR(tc.spec, snapshot+"\n"+tc.status), observed: tc.observed, required: map[string][]string{reqApplication: {readyApp}, reqPods: tc.pods}}
				r := s.run(t, enc, readPodsPlatform(t))
				tc.want.verify(t, tc.reason, r)
				if st := r.Status.(*v1alpha1.KalypsoTritonServerStatus); st.Message != message(r, ConditionServerAvailable) {
					t.Errorf("status.message must repeat the ServerAvailable message: %q vs %q", st.Message, message(r, ConditionServerAvailable))
				}
			})
		}
	}
}

func TestComposeMetrics(t *testing.T) {
	smOn := "observability: {enabled: true, logging: {enabled: false}, metrics: {enableServiceMonitor: true, interval: 30s}}\n"
	withSM := created(t, smOn, deployAvailable)
	cases := map[string]struct {
		reason   string
		spec     string
		status   string
		observed map[string]string
		crd      bool
		wantSM   bool
		want     cond
		check    func(t *testing.T, r compose.Result)
	}{
		"Composed": {
			reason: "Asked for, observability on and the CRD installed: a ServiceMonitor scrapes the metrics port.",
			spec:   smOn, crd: true, wantSM: true,
			want: cond{true, "ServiceMonitorComposed"},
			check: func(t *testing.T, r compose.Result) {
				sm := decodeStrict[monitoringv1.ServiceMonitor](t, r, resServiceMonitor)
				want := &monitoringv1.ServiceMonitor{
					TypeMeta:   metav1.TypeMeta{APIVersion: "monitoring.coreos.com/v1", Kind: "ServiceMonitor"},
					ObjectMeta: metav1.ObjectMeta{Name: "resnet-monitor", Namespace: "vision-dev", Labels: compose.Merge(serverLabels, map[string]string{"release": "prometheus"})},
					Spec: monitoringv1.ServiceMonitorSpec{
						Selector:  metav1.LabelSelector{MatchLabels: selector},
						Endpoints: []monitoringv1.Endpoint{{Port: "metrics", Interval: "30s"}},
					},
				}
				if diff := cmp.Diff(want, sm); diff != "" {
					t.Errorf("servicemonitor: -want, +got:\n%s", diff)
				}
			},
		},
		"FirstCreate": {
			reason: "A new server checks the CRD at its first call and composes the ServiceMonitor with its Deployment.",
			spec:   smOn, crd: true, observed: map[string]string{}, wantSM: true,
			want: cond{true, "ServiceMonitorComposed"},
		},
		"CreateAfterWaiting": {
			reason: "A server that waited to be created (and polled) does not check the CRD (core parses a large OpenAPI document per check): the ServiceMonitor follows its Deployment one call later.",
			spec:   smOn, status: "conditions: [{type: ServerAvailable, status: 'False', reason: WaitingToCreate}]", crd: true, observed: map[string]string{},
			want: cond{false, "WaitingForDeployment"},
		},
		"CRDMissing": {
			reason: "Without the Prometheus Operator's CRD nothing is composed and the condition says so; the server still works.",
			spec:   smOn,
			want:   cond{false, "ServiceMonitorCRDMissing"},
		},
		"NotAsked": {
			reason: "Metrics are served, but nobody asked for a ServiceMonitor.",
			spec:   "observability: {enabled: true, logging: {enabled: false}}\n", crd: true,
			want: cond{false, "ServiceMonitorDisabled"},
		},
		"ObservabilityOff": {
			reason: "enableServiceMonitor needs observability.enabled.",
			spec:   "observability: {metrics: {enableServiceMonitor: true}}\n", crd: true,
			want: cond{false, "ServiceMonitorDisabled"},
		},
		"MetricsDisabled": {
			reason: "No metrics, nothing to scrape: no ServiceMonitor, no metrics port on the Service.",
			spec:   "observability: {enabled: true, logging: {enabled: false}, metrics: {enabled: false, enableServiceMonitor: true}}\n", crd: true,
			want: cond{false, "MetricsDisabled"},
			check: func(t *testing.T, r compose.Result) {
				svc := decodeStrict[corev1.Service](t, r, resService)
				for _, p := range svc.Spec.Ports {
					if p.Name == "metrics" {
						t.Errorf("the Service must not expose a metrics port: %+v", svc.Spec.Ports)
					}
				}
				d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
				if c := tritonContainer(t, d); len(c.Ports) != 2 {
					t.Errorf("the container must not declare a metrics port: %+v", c.Ports)
				}
			},
		},
		"SwitchedOff": {
			reason:   "Turning it off drops the observed ServiceMonitor from the desired state, so Crossplane deletes it.",
			spec:     "observability: {enabled: true, logging: {enabled: false}, metrics: {interval: 30s}}\n",
			observed: withSM, crd: true,
			want: cond{false, "ServiceMonitorDisabled"},
		},
		"CRDRemoved": {
			reason:   "The CRD gone (the Prometheus Operator uninstalled), and with it the ServiceMonitor (the API server deletes a CRD's objects): none is composed again.",
			spec:     smOn,
			observed: without(withSM, string(resServiceMonitor)),
			want:     cond{false, "ServiceMonitorCRDMissing"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := map[string][]string{reqApplication: {readyApp}}
			if tc.crd {
				req[reqServiceMonitor] = []string{smCRD}
			}
			// A running server, its ServiceMonitor not composed yet,
			// unless the case says otherwise.
			observed := tc.observed
			if observed == nil {
				observed = without(created(t, tc.spec, deployAvailable), string(resServiceMonitor))
			}
			r := scene{xr: serverXR(tc.spec, tc.status), observed: observed, required: req}.run(t, int64s, platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			if _, got := r.Desired[resServiceMonitor]; got != tc.wantSM {
				t.Errorf("%s\nservicemonitor composed: want %v, got %v", tc.reason, tc.wantSM, got)
			}
			if got := condsOf(r)[ConditionMetricsScraping]; got != tc.want {
				t.Errorf("%s\nMetricsScraping: want %+v, got %+v (%s)", tc.reason, tc.want, got, message(r, ConditionMetricsScraping))
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestComposeDisruptionBudget(t *testing.T) {
	cases := map[string]struct {
		reason string
		spec   string
		want   *intstr.IntOrString // maxUnavailable; nil: no PDB
	}{
		"OneReplica":           {reason: "At one replica a PDB could only block node drains.", spec: "replicas: 1\n"},
		"ZeroReplicas":         {reason: "Nothing to protect.", spec: "replicas: 0\n"},
		"TwoReplicas":          {reason: "More than one replica: one may go at a time.", spec: "replicas: 2\n", want: ptr.To(intstr.FromInt32(1))},
		"Tuned":                {reason: "disruption.maxUnavailable tunes it.", spec: "replicas: 4\ndisruption: {maxUnavailable: 2}\n", want: ptr.To(intstr.FromInt32(2))},
		"AutoscaledToMany":     {reason: "Autoscaling up to several replicas gets one even at one replica now.", spec: "replicas: 1\nautoscaling: {enabled: true, minReplicas: 1, maxReplicas: 3}\n", want: ptr.To(intstr.FromInt32(1))},
		"AutoscaledToOne":      {reason: "Autoscaling capped at one replica: none.", spec: "replicas: 3\nautoscaling: {enabled: true, maxReplicas: 1}\n"},
		"AutoscalingDisabled":  {reason: "A disabled autoscaling block does not count.", spec: "replicas: 1\nautoscaling: {enabled: false, maxReplicas: 5}\n"},
		"DefaultReplicasIsOne": {reason: "Unset replicas (render, before defaulting) is one.", spec: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := scene{xr: serverXR(tc.spec, ""), required: map[string][]string{reqApplication: {readyApp}, reqMetricsAPI: {metricsAPISvc}}}.run(t, int64s, platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			if tc.want == nil {
				if _, ok := r.Desired[resPDB]; ok {
					t.Errorf("%s\nno PodDisruptionBudget expected", tc.reason)
				}
				return
			}
			got := decodeStrict[policyv1.PodDisruptionBudget](t, r, resPDB)
			want := &policyv1.PodDisruptionBudget{
				TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
				ObjectMeta: metav1.ObjectMeta{Name: "resnet-pdb", Namespace: "vision-dev", Labels: serverLabels},
				Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: tc.want, Selector: &metav1.LabelSelector{MatchLabels: selector}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\npdb: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestComposeAutoscaling(t *testing.T) {
	hpaSpec := "replicas: 1\nresources: {requests: {cpu: '1'}}\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6}\n"
	// The autoscaler owns spec.replicas through the scale subresource;
	// Crossplane's own entry does not count.
	coOwned := `{metadata: {managedFields: [
  {manager: apiextensions.crossplane.io/composed/0f3a, operation: Apply, apiVersion: apps/v1, fieldsType: FieldsV1, fieldsV1: {"f:spec": {"f:replicas": {}, "f:template": {}}}},
  {manager: kube-controller-manager, operation: Update, apiVersion: apps/v1, subresource: scale, fieldsType: FieldsV1, fieldsV1: {"f:spec": {"f:replicas": {}}}}]}}`
	crossplaneOnly := `{spec: {replicas: 4}, metadata: {managedFields: [
  {manager: apiextensions.crossplane.io/composed/0f3a, operation: Apply, apiVersion: apps/v1, fieldsType: FieldsV1, fieldsV1: {"f:spec": {"f:replicas": {}}}},
  {manager: kube-controller-manager, operation: Update, apiVersion: apps/v1, subresource: status, fieldsType: FieldsV1, fieldsV1: {"f:status": {"f:replicas": {}}}}]}}`

	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		metrics  bool
		// metricsAPI, when set, is the APIService found instead.
		metricsAPI string
		replicas   *int32 // the Deployment's; nil: field omitted
		hpa        bool
		cond       cond
	}{
		"Off": {
			reason: "Without autoscaling the Deployment runs spec.replicas.", spec: "replicas: 3\n",
			replicas: ptr.To[int32](3), cond: cond{false, "AutoscalingDisabled"},
		},
		"BeforeCreateMinWins": {
			reason: "Before the create the Deployment starts at max(replicas, minReplicas), so the HPA does not have to scale up at once.", spec: hpaSpec,
			replicas: ptr.To[int32](2), hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"BeforeCreateReplicasWin": {
			reason: "…and at replicas when that is higher.", spec: "replicas: 5\nresources: {requests: {cpu: '1'}}\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6}\n",
			replicas: ptr.To[int32](5), hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"AfterCreateNotCoOwned": {
			reason: "Autoscaling switched on for a running Deployment: the observed count is kept until the autoscaler co-owns the field (dropping it would reset the Deployment to one replica).",
			spec:   hpaSpec, observed: created(t, "replicas: 1\n", crossplaneOnly),
			replicas: ptr.To[int32](4), hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"AfterCreateBelowMinimum": {
			reason: "A minimum above the observed count: the function writes the minimum, the count the autoscaler scales to. Crossplane applies with force, so applying the observed count from a read that predates the autoscaler's own write would take the field back and scale down again.",
			spec:   "replicas: 1\nresources: {requests: {cpu: '1'}}\nautoscaling: {enabled: true, minReplicas: 5, maxReplicas: 6}\n", observed: created(t, "replicas: 1\n", crossplaneOnly),
			replicas: ptr.To[int32](5), hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"AfterCreateAboveMaximum": {
			reason: "…and a maximum below it: the maximum.",
			spec:   "replicas: 1\nresources: {requests: {cpu: '1'}}\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 3}\n", observed: created(t, "replicas: 1\n", crossplaneOnly),
			replicas: ptr.To[int32](3), hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"CoOwned": {
			reason: "Once the autoscaler's manager owns spec.replicas the field is left to it.",
			spec:   hpaSpec, observed: created(t, hpaSpec, coOwned),
			hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"SwitchedOffAfterCoOwned": {
			reason: "Autoscaling off again: spec.replicas is taken back.",
			spec:   "replicas: 3\n", observed: created(t, hpaSpec, coOwned),
			replicas: ptr.To[int32](3), cond: cond{false, "AutoscalingDisabled"},
		},
		"NewWithoutCPURequest": {
			reason:   "CPU autoscaling without a CPU request (the ranker example of v0.1.0) would scale straight to maxReplicas: a new server gets no HPA, only its Deployment at max(replicas, minReplicas).",
			spec:     "replicas: 1\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6}\n",
			replicas: ptr.To[int32](2), cond: cond{false, "CPURequestMissing"},
		},
		"RunningWithoutCPURequestKeepsHPA": {
			reason: "A running server whose HPA exists keeps its Deployment and HPA (the autoscaler's replicas stay), and is told what is missing.",
			spec:   "replicas: 1\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6}\n", observed: created(t, hpaSpec, coOwned),
			hpa: true, cond: cond{false, "CPURequestMissing"},
		},
		"RunningWithoutCPURequestNoHPA": {
			reason: "A running server that switches CPU autoscaling on without a CPU request is not given an HPA; its observed replicas stay.",
			spec:   "replicas: 1\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6}\n", observed: created(t, "replicas: 1\n", crossplaneOnly),
			replicas: ptr.To[int32](4), cond: cond{false, "CPURequestMissing"},
		},
		"CPULimitOnly": {
			reason:   "A CPU limit alone is a request too (Kubernetes defaults the request to the limit).",
			spec:     "replicas: 1\nresources: {limits: {cpu: '2'}}\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6}\n",
			replicas: ptr.To[int32](2), hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
		"QueueTimeWithoutAdapter": {
			reason:   "Queue-time scaling needs the custom metrics API: composed, but the condition says the autoscaler cannot read the metric.",
			spec:     "autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}\n",
			replicas: ptr.To[int32](1), hpa: true, cond: cond{false, "CustomMetricsAPIUnavailable"},
		},
		"QueueTimeAdapterDown": {
			reason: "The custom metrics API is registered but not Available: composed, and the condition quotes the APIService.",
			spec:   "autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}\n", metricsAPI: metricsAPIDown,
			replicas: ptr.To[int32](1), hpa: true, cond: cond{false, "CustomMetricsAPIUnavailable"},
		},
		"QueueTime": {
			reason: "With the custom metrics API served the queue-time autoscaler works.",
			spec:   "autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}\n", metrics: true,
			replicas: ptr.To[int32](1), hpa: true, cond: cond{true, "HorizontalPodAutoscalerComposed"},
		},
	}
	for name, tc := range cases {
		for _, enc := range encodings {
			t.Run(name+"/"+string(enc), func(t *testing.T) {
				req := map[string][]string{reqApplication: {readyApp}}
				if tc.metrics {
					req[reqMetricsAPI] = []string{metricsAPISvc}
				}
				if tc.metricsAPI != "" {
					req[reqMetricsAPI] = []string{tc.metricsAPI}
				}
				r := scene{xr: serverXR(tc.spec, snapshot), observed: tc.observed, required: req}.run(t, enc, platform(t))
				if r.Fatal != nil {
					t.Fatal(r.Fatal)
				}
				d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
				if diff := cmp.Diff(tc.replicas, d.Spec.Replicas); diff != "" {
					t.Errorf("%s\ndeployment replicas: -want, +got:\n%s", tc.reason, diff)
				}
				if _, ok := r.Desired[resDeployment].Resource.Object["spec"].(map[string]any)["replicas"]; ok != (tc.replicas != nil) {
					t.Errorf("%s\nspec.replicas present: want %v, got %v", tc.reason, tc.replicas != nil, ok)
				}
				if _, ok := r.Desired[resHPA]; ok != tc.hpa {
					t.Errorf("%s\nHPA composed: want %v, got %v", tc.reason, tc.hpa, ok)
				}
				if got := condsOf(r)[ConditionAutoscaling]; got != tc.cond {
					t.Errorf("%s\nAutoscaling: want %+v, got %+v (%s)", tc.reason, tc.cond, got, message(r, ConditionAutoscaling))
				}
				if tc.cond.Reason == "CPURequestMissing" {
					what := "no HorizontalPodAutoscaler is composed until then"
					if tc.hpa {
						what = "HorizontalPodAutoscaler resnet-hpa is kept as it is until then"
					}
					if m := message(r, ConditionAutoscaling); !strings.Contains(m, "set spec.resources.requests.cpu") || !strings.Contains(m, what) {
						t.Errorf("%s\nAutoscaling message: want the field to set and %q, got %q", tc.reason, what, m)
					}
				}
			})
		}
	}
}

func TestHorizontalPodAutoscaler(t *testing.T) {
	// The annotation lets KEDA's webhook admit a ScaledObject beside this HPA
	// while it terminates, at a switch to the keda engine.
	meta := metav1.ObjectMeta{Name: "resnet-hpa", Namespace: "vision-dev", Labels: serverLabels,
		Annotations: map[string]string{"validations.keda.sh/hpa-ownership": "false"}}
	typ := metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}
	target := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "resnet-deploy"}
	cases := map[string]struct {
		reason string
		spec   string
		want   autoscalingv2.HorizontalPodAutoscalerSpec
	}{
		"CPUDefaults": {
			reason: "CPU at 80%, minReplicas 1, a 10-minute scale-down window (GPU servers come back slowly).",
			spec:   "resources: {limits: {cpu: '2'}}\nautoscaling: {enabled: true, maxReplicas: 4}\n",
			want: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MinReplicas: ptr.To[int32](1), MaxReplicas: 4,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
				}}},
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](600)}},
			},
		},
		"QueueTime": {
			reason: "Queue time per request as a per-pod custom metric, 50ms by default.",
			spec:   "autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 8, metric: queueTime, scaleDownStabilizationSeconds: 120}\n",
			want: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MinReplicas: ptr.To[int32](2), MaxReplicas: 8,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: QueueTimeMetric},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(kresource.MustParse("50000"))},
				}}},
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](120)}},
			},
		},
		"CPUTarget": {
			reason: "A CPU target in percent.",
			spec:   "resources: {requests: {cpu: '1'}}\nautoscaling: {enabled: true, maxReplicas: 2, target: 60}\n",
			want: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MinReplicas: ptr.To[int32](1), MaxReplicas: 2,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](60)},
				}}},
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](600)}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := scene{xr: serverXR(tc.spec, ""), required: map[string][]string{reqApplication: {readyApp}, reqMetricsAPI: {metricsAPISvc}}}.run(t, int64s, platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			got := decodeStrict[autoscalingv2.HorizontalPodAutoscaler](t, r, resHPA)
			want := &autoscalingv2.HorizontalPodAutoscaler{TypeMeta: typ, ObjectMeta: meta, Spec: tc.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\nhpa: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestComposeQuota(t *testing.T) {
	quota := func(hard, used string) string {
		return "{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-quota, namespace: vision-dev}, spec: {hard: {requests.nvidia.com/gpu: '" + hard +
			"'}}, status: {hard: {requests.nvidia.com/gpu: '" + hard + "'}, used: {requests.nvidia.com/gpu: '" + used + "'}}}"
	}
	cpuQuota := "{apiVersion: v1, kind: ResourceQuota, metadata: {name: compute, namespace: vision-dev}, status: {hard: {limits.cpu: '4'}, used: {limits.cpu: '4'}}}"
	storageQuota := "{apiVersion: v1, kind: ResourceQuota, metadata: {name: storage, namespace: vision-dev}, status: {hard: {requests.ephemeral-storage: 30Gi}, used: {requests.ephemeral-storage: 15Gi}}}"
	shortfall := func(hard, used string, need int) string {
		return "ResourceQuota vision-quota allows " + hard + " requests.nvidia.com/gpu and " + used + " are in use: " + strconv.Itoa(need) +
			" more are needed (GPUs of class default per pod × replicas); lower them or raise the project's quota"
	}
	cases := map[string]struct {
		reason   string
		spec     string
		quotas   []string
		observed map[string]string
		asked    bool   // the quotas are required
		message  string // the ServerAvailable message of a server kept waiting; "": composed
		// waitReason is the ServerAvailable reason of a waiting server;
		// "": InsufficientGPUQuota.
		waitReason string
	}{
		"Shortfall": {
			reason: "2 GPUs × 2 replicas with 1 of 4 free: waiting, instead of creating pods that can never be admitted.",
			spec:   "gpus: 2\nreplicas: 2\n", quotas: []string{quota("4", "3")}, asked: true,
			message: shortfall("4", "3", 4),
		},
		"NothingUsed": {
			reason: "Unused counts default to zero.",
			spec:   "gpus: 2\n", quotas: []string{"{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-quota}, status: {hard: {requests.nvidia.com/gpu: '1'}}}"}, asked: true,
			message: shortfall("1", "0", 2),
		},
		"Enough": {
			reason: "Enough free GPUs: composed.",
			spec:   "gpus: 2\nreplicas: 2\n", quotas: []string{quota("8", "2")}, asked: true,
		},
		"Exactly": {
			reason: "Exactly as many free GPUs as needed: composed.",
			spec:   "gpus: 2\nreplicas: 2\n", quotas: []string{quota("8", "4")}, asked: true,
		},
		"OtherQuotasIgnored": {
			reason: "A quota that does not bound GPUs does not matter.",
			spec:   "gpus: 1\n", quotas: []string{cpuQuota}, asked: true,
		},
		"NoQuota": {
			reason: "No quota at all: composed.",
			spec:   "gpus: 1\n", asked: true,
		},
		"AfterCreate": {
			reason: "Quotas are looked at only before the first create: a running server is never withdrawn.",
			spec:   "gpus: 2\n", quotas: []string{quota("1", "1")}, observed: created(t, "gpus: 2\n", deployAvailable),
		},
		"CPUServer": {
			reason: "A server without GPUs still asks for the quotas (its ephemeral storage counts), and a GPU quota does not bound it.",
			spec:   "resources: {requests: {cpu: '1'}}\n", quotas: []string{quota("1", "1")}, asked: true,
		},
		"EphemeralStorageShortfall": {
			reason: "Every server requests ephemeral storage (10Gi model cache + 1Gi scratch): 2 × 11Gi with 15Gi free is a shortfall.",
			spec:   "replicas: 2\n", quotas: []string{storageQuota}, asked: true, waitReason: "InsufficientEphemeralStorageQuota",
			message: "ResourceQuota storage allows 30Gi requests.ephemeral-storage and 15Gi are in use: 22Gi more are needed (ephemeral storage per pod × replicas); lower spec.modelCache.request or the replicas or raise the project's quota",
		},
		"EphemeralStorageFits": {
			reason: "A smaller model cache fits: 2 × (4Gi + 1Gi) with 15Gi free.",
			spec:   "replicas: 2\nmodelCache: {request: 4Gi}\n", quotas: []string{storageQuota}, asked: true,
		},
		"EphemeralStorageOwnRequest": {
			reason: "An ephemeral-storage request of the spec's resources is what is counted.",
			spec:   "replicas: 2\nresources: {requests: {ephemeral-storage: 7Gi}}\n", quotas: []string{storageQuota}, asked: true,
		},
		"ResourcesLimitsOnly": {
			reason: "GPUs given only in spec.resources.limits are asked for and counted too (requests default to limits for extended resources).",
			spec:   "replicas: 2\nresources: {limits: {nvidia.com/gpu: '2'}}\n", quotas: []string{quota("3", "0")}, asked: true,
			message: shortfall("3", "0", 4),
		},
		"ResourcesRequests": {
			reason: "GPUs given in spec.resources.requests are counted.",
			spec:   "resources: {requests: {nvidia.com/gpu: '2'}, limits: {nvidia.com/gpu: '2'}}\n", quotas: []string{quota("4", "3")}, asked: true,
			message: shortfall("4", "3", 2),
		},
		"ResourcesEnough": {
			reason: "GPUs in spec.resources that fit the quota: composed.",
			spec:   "resources: {limits: {nvidia.com/gpu: '1'}}\n", quotas: []string{quota("4", "3")}, asked: true,
		},
		"GPUsZeroResourcesGPU": {
			reason: "gpus: 0 does not hide the GPUs of spec.resources.",
			spec:   "gpus: 0\nresources: {limits: {nvidia.com/gpu: '1'}}\n", quotas: []string{quota("1", "1")}, asked: true,
			message: shortfall("1", "1", 1),
		},
		"AutoscalingMinReplicas": {
			reason: "With autoscaling the Deployment starts at max(replicas, minReplicas): 3 replicas × 1 GPU with 2 free is a shortfall.",
			spec:   "gpus: 1\nreplicas: 1\nautoscaling: {enabled: true, minReplicas: 3, maxReplicas: 4}\n", quotas: []string{quota("4", "2")}, asked: true,
			message: shortfall("4", "2", 3),
		},
		"AutoscalingFits": {
			reason: "…and 2 replicas with 2 free fit.",
			spec:   "gpus: 1\nreplicas: 1\nautoscaling: {enabled: true, minReplicas: 2, maxReplicas: 4}\n", quotas: []string{quota("4", "2")}, asked: true,
		},
		"AutoscalingReplicasWin": {
			reason: "replicas above minReplicas are what the Deployment starts with.",
			spec:   "gpus: 1\nreplicas: 3\nautoscaling: {enabled: true, minReplicas: 1, maxReplicas: 4}\n", quotas: []string{quota("4", "2")}, asked: true,
			message: shortfall("4", "2", 3),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := scene{xr: serverXR(tc.spec, ""), observed: tc.observed, required: map[string][]string{reqApplication: {readyApp}, reqQuotas: tc.quotas}}
			c, err := s.composer(t, int64s)
			if err != nil {
				t.Fatal(err)
			}
			q, asked := c.Requirements(platform(t))[reqQuotas]
			if asked != tc.asked {
				t.Errorf("%s\nquotas required: want %v, got %v", tc.reason, tc.asked, asked)
			}
			if asked && (q.GetKind() != "ResourceQuota" || q.GetApiVersion() != "v1" || q.GetNamespace() != "vision-dev" || q.GetMatchLabels() == nil || len(q.GetMatchLabels().GetLabels()) != 0) {
				t.Errorf("%s\nquotas selector: want every ResourceQuota of vision-dev, got %v", tc.reason, q)
			}
			r := s.run(t, int64s, platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			if tc.message == "" {
				if _, ok := r.Desired[resDeployment]; !ok {
					t.Errorf("%s\nthe Deployment must be composed", tc.reason)
				}
				if got := condsOf(r)[ConditionServerAvailable]; strings.HasPrefix(got.Reason, "Insufficient") || got.Reason == "WaitingToCreate" {
					t.Errorf("%s\nServerAvailable: got %+v", tc.reason, got)
				}
				return
			}
			// The shortfall is the server's problem, not the application's:
			// it replaces ServerAvailable, and ApplicationReady stays True.
			waitReason, gpuClass := tc.waitReason, cond{true, reasonNoGPUs}
			if waitReason == "" {
				waitReason, gpuClass = "InsufficientGPUQuota", cond{true, reasonGPUClassSelected}
			}
			want{
				resources:  map[string]resource.Ready{},
				conditions: pendingConds(map[string]cond{ConditionServerAvailable: {false, waitReason}, ConditionGPUClass: gpuClass}),
				phase:      PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				check: func(t *testing.T, r compose.Result) {
					if m := message(r, ConditionServerAvailable); m != tc.message {
						t.Errorf("%s\nServerAvailable message: want %q, got %q", tc.reason, tc.message, m)
					}
					if m := message(r, ConditionApplicationReady); m != "KalypsoApplication classifier is Ready" {
						t.Errorf("%s\nApplicationReady message: got %q", tc.reason, m)
					}
					if st := r.Status.(*v1alpha1.KalypsoTritonServerStatus); st.Message != tc.message {
						t.Errorf("%s\nstatus.message: want %q, got %q", tc.reason, tc.message, st.Message)
					}
				},
			}.verify(t, tc.reason, r)
		})
	}
}

// restrictedFlags are the flags that restrict Triton's APIs to holders of
// the key sent in header; the key itself is expanded by Kubernetes from
// the container's TRITON_API_KEY.
func restrictedFlags(header string) []string {
	v := "model-repository,shared-memory,logging,trace:" + header + "=$(TRITON_API_KEY)"
	return []string{"--http-restricted-api=" + v, "--grpc-restricted-protocol=" + v}
}

// noKeyValue checks that the API key's value appears in no composed object.
func noKeyValue(t *testing.T, r compose.Result) {
	t.Helper()
	for n, d := range r.Desired {
		j := jsonOf(t, d.Resource.Object)
		if strings.Contains(j, apiKeyValue) || strings.Contains(j, apiKeyBase64) {
			t.Errorf("%s carries the API key's value: %s", n, j)
		}
	}
}

func TestComposeRestrictedAPI(t *testing.T) {
	base := created(t, "", deployAvailable)
	unrestricted := "security: {unrestrictedAPIs: true}\n"
	// s3Env is the storage wiring of readyApp.
	s3Env := []corev1.EnvVar{
		{Name: "HOME", Value: "/var/lib/triton/home"},
		{Name: "TRITON_AWS_MOUNT_DIRECTORY", Value: "/var/lib/triton/model-cache"},
		secretEnv("AWS_ACCESS_KEY_ID", "models-creds", "AWS_ACCESS_KEY_ID"),
		secretEnv("AWS_SECRET_ACCESS_KEY", "models-creds", "AWS_SECRET_ACCESS_KEY"),
		{Name: "AWS_SESSION_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "models-creds"}, Key: "AWS_SESSION_TOKEN", Optional: ptr.To(true),
		}}},
		{Name: "AWS_DEFAULT_REGION", Value: "eu-west-1"},
	}
	apiKeyEnv := corev1.EnvVar{Name: "TRITON_API_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "kalypso-triton-api-key"}, Key: "api-key",
	}}}
	container := func(t *testing.T, r compose.Result) corev1.Container {
		t.Helper()
		return tritonContainer(t, decodeStrict[appsv1.Deployment](t, r, resDeployment))
	}
	restrictedContainer := func(args []string, env []corev1.EnvVar) func(t *testing.T, r compose.Result) {
		return func(t *testing.T, r compose.Result) {
			c := container(t, r)
			if diff := cmp.Diff(args, c.Args); diff != "" {
				t.Errorf("args: -want, +got:\n%s", diff)
			}
			if diff := cmp.Diff(env, c.Env); diff != "" {
				t.Errorf("env: -want, +got:\n%s", diff)
			}
			noKeyValue(t, r)
		}
	}
	keyRequired := "Triton's model-repository,shared-memory,logging,trace APIs need the header triton-api-key (gRPC: triton-grpc-protocol-triton-api-key) with the value of Secret kalypso-triton-api-key key api-key"
	missing := "Secret kalypso-triton-api-key does not exist in namespace vision-dev: the platform provisions it (key api-key) so that Triton's model-repository and shared-memory APIs are restricted; the server is not started unrestricted. Set spec.security.unrestrictedAPIs: true to opt out"
	incomplete := "Secret kalypso-triton-api-key in namespace vision-dev has no (or an empty) key api-key: the server is not started unrestricted"
	kept := "; the Deployment is kept as it is until this is fixed"
	withoutKey := "{apiVersion: v1, kind: Secret, metadata: {name: kalypso-triton-api-key, namespace: vision-dev}, data: {other: " + apiKeyBase64 + "}}"
	emptySecret := "{apiVersion: v1, kind: Secret, metadata: {name: kalypso-triton-api-key, namespace: vision-dev}}"
	stringData := "{apiVersion: v1, kind: Secret, metadata: {name: kalypso-triton-api-key, namespace: vision-dev}, stringData: {api-key: " + apiKeyValue + "}}"
	// pendingOn checks a server kept waiting by problem: nothing composed,
	// the status message and ServerAvailable say why.
	pendingOn := func(problem string) func(t *testing.T, r compose.Result) {
		return func(t *testing.T, r compose.Result) {
			if m := message(r, ConditionAPIRestricted); m != problem {
				t.Errorf("APIRestricted message: want %q, got %q", problem, m)
			}
			if m := message(r, ConditionServerAvailable); m != "the Deployment is not created yet: "+problem {
				t.Errorf("ServerAvailable message: got %q", m)
			}
			if st := r.Status.(*v1alpha1.KalypsoTritonServerStatus); st.Message != problem {
				t.Errorf("status.message: want %q, got %q", problem, st.Message)
			}
		}
	}
	// keptAs checks that the observed Deployment is carried forward as it
	// is (with its restricted flags and key), not rebuilt from the spec.
	keptAs := func(problem string) func(t *testing.T, r compose.Result) {
		return func(t *testing.T, r compose.Result) {
			if diff := cmp.Diff(jsonOf(t, carried(t, base[string(resDeployment)])), jsonOf(t, r.Desired[resDeployment].Resource.Object)); diff != "" {
				t.Errorf("the Deployment must be kept as observed: -want, +got:\n%s", diff)
			}
			restrictedContainer(concat(argsMinimal, restrictedFlags("triton-api-key")), append(slices.Clone(s3Env), apiKeyEnv))(t, r)
			if m := message(r, ConditionAPIRestricted); m != problem+kept {
				t.Errorf("APIRestricted message: want %q, got %q", problem+kept, m)
			}
		}
	}

	cases := map[string]struct {
		reason   string
		scene    scene
		platform *compose.Platform
		want     want
	}{
		"SecretPresent": {
			reason: "The platform's Secret with its key: the restricted APIs need the key, given right after the port flags, and the container reads it from the Secret by reference.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(nil), phase: PhasePending, ttl: compose.PollTTL, application: snapshotStatus,
				messages: map[string]string{ConditionAPIRestricted: keyRequired},
				check: func(t *testing.T, r compose.Result) {
					restrictedContainer(concat(argsMinimal, restrictedFlags("triton-api-key")), append(slices.Clone(s3Env), apiKeyEnv))(t, r)
					if m := message(r, ConditionAPIRestricted); m != keyRequired {
						t.Errorf("APIRestricted message: want %q, got %q", keyRequired, m)
					}
				},
			},
		},
		"SecretPresentMetricsOff": {
			reason: "Without metrics the flags follow --allow-metrics=false, the last of the port flags.",
			scene:  scene{xr: serverXR("observability: {metrics: {enabled: false}}\n", ""), required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{ConditionMetricsScraping: {false, "MetricsDisabled"}}),
				phase:      PhasePending, ttl: compose.PollTTL, application: snapshotStatus,
				check: restrictedContainer(concat(argsHead, []string{"--strict-readiness=true", "--http-port=8000", "--grpc-port=8001", "--allow-metrics=false", "--exit-timeout-secs=30"},
					restrictedFlags("triton-api-key")), append(slices.Clone(s3Env), apiKeyEnv)),
			},
		},
		"StringData": {
			reason: "A Secret that carries the key in stringData (render, never the API server) counts too.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: {stringData}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(nil), phase: PhasePending, ttl: compose.PollTTL, application: snapshotStatus,
				check: restrictedContainer(concat(argsMinimal, restrictedFlags("triton-api-key")), append(slices.Clone(s3Env), apiKeyEnv)),
			},
		},
		"PlatformNames": {
			reason:   "The platform's own Secret, key and header are used.",
			scene:    scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}}},
			platform: ptr.To(teamPlatform(t)),
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(nil), phase: PhasePending, ttl: compose.PollTTL, application: snapshotStatus,
				messages: map[string]string{ConditionAPIRestricted: "need the header x-team-key (gRPC: triton-grpc-protocol-x-team-key) with the value of Secret team-triton-key key token"},
				check: restrictedContainer(concat(argsMinimal, restrictedFlags("x-team-key")), append(slices.Clone(s3Env), corev1.EnvVar{Name: "TRITON_API_KEY", ValueFrom: &corev1.EnvVarSource{
					SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "team-triton-key"}, Key: "token"},
				}})),
			},
		},
		"SecretMissingBeforeCreate": {
			reason: "No Secret before the first create: nothing is composed (never an unrestricted Triton), the condition says why, the application is fine.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: nil}},
			want: want{
				resources:  map[string]resource.Ready{},
				conditions: pendingConds(map[string]cond{ConditionAPIRestricted: {false, "APIKeySecretMissing"}}),
				phase:      PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				check: pendingOn(missing),
			},
		},
		"KeyMissingBeforeCreate": {
			reason: "A Secret without the key is as good as none.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: {withoutKey}}},
			want: want{
				resources:  map[string]resource.Ready{},
				conditions: pendingConds(map[string]cond{ConditionAPIRestricted: {false, "APIKeySecretIncomplete"}}),
				phase:      PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				check: pendingOn(incomplete),
			},
		},
		"EmptySecretBeforeCreate": {
			reason: "A Secret without any data neither.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: {emptySecret}}},
			want: want{
				resources:  map[string]resource.Ready{},
				conditions: pendingConds(map[string]cond{ConditionAPIRestricted: {false, "APIKeySecretIncomplete"}}),
				phase:      PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				check: pendingOn(incomplete),
			},
		},
		"SecretMissingBeforeCreateWithGPUShortfall": {
			reason: "The missing Secret is reported before the quotas are looked at.",
			scene: scene{xr: serverXR("gpus: 2\n", ""), required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: nil,
				reqQuotas: {"{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-quota}, status: {hard: {requests.nvidia.com/gpu: '1'}}}"}}},
			want: want{
				resources:  map[string]resource.Ready{},
				conditions: pendingConds(map[string]cond{ConditionAPIRestricted: {false, "APIKeySecretMissing"}, ConditionGPUClass: {true, reasonGPUClassSelected}}),
				phase:      PhasePending, ttl: compose.WaitTTL, application: snapshotStatus,
				check: pendingOn(missing),
			},
		},
		"ApplicationAndSecretMissingBeforeCreate": {
			reason: "The application's problem comes first; APIRestricted is only not created yet.",
			scene:  scene{xr: serverXR("", ""), required: map[string][]string{reqAPIKey: nil}},
			want: want{
				resources: map[string]resource.Ready{}, conditions: appPending("ApplicationNotFound"),
				phase: PhasePending, ttl: compose.WaitTTL,
				messages: map[string]string{ConditionApplicationReady: "KalypsoApplication classifier does not exist in namespace vision-dev", ConditionAPIRestricted: "the server is not created yet"},
			},
		},
		"SecretMissingAfterCreate": {
			reason: "The Secret gone after the create: the running Deployment is kept as it is (a spec change waits), and the condition says so.",
			scene: scene{xr: serverXR("tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}]}\n", snapshot), observed: base,
				required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: nil}},
			want: want{
				resources: all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{
					ConditionServerAvailable: {true, "AllReplicasAvailable"}, ConditionAPIRestricted: {false, "APIKeySecretMissing"},
				}),
				phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: keptAs(missing),
			},
		},
		"KeyMissingAfterCreate": {
			reason: "The key gone from the Secret after the create: the same.",
			scene: scene{xr: serverXR("tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}]}\n", snapshot), observed: base,
				required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: {withoutKey}}},
			want: want{
				resources: all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{
					ConditionServerAvailable: {true, "AllReplicasAvailable"}, ConditionAPIRestricted: {false, "APIKeySecretIncomplete"},
				}),
				phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: keptAs(incomplete),
			},
		},
		"OptedOut": {
			reason: "spec.security.unrestrictedAPIs: no Secret needed, no flags, no key in the environment, and the condition says the APIs are open.",
			scene:  scene{xr: serverXR(unrestricted, ""), required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources:  all(resource.ReadyFalse, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{ConditionAPIRestricted: {false, "UnrestrictedBySpec"}}),
				phase:      PhasePending, ttl: compose.PollTTL, application: snapshotStatus,
				messages: map[string]string{ConditionAPIRestricted: "spec.security.unrestrictedAPIs is true: any client that reaches the server may load models and map shared memory"},
				check:    restrictedContainer(argsMinimal, s3Env),
			},
		},
		"OptedOutAfterCreate": {
			reason: "Opting out after the create rebuilds the Deployment without the flags and the key, whatever the Secret.",
			scene:  scene{xr: serverXR(unrestricted, snapshot), observed: base, required: map[string][]string{reqApplication: {readyApp}}},
			want: want{
				resources:  all(resource.ReadyTrue, resDeployment, resService, resUsage),
				conditions: composedConds(map[string]cond{ConditionServerAvailable: {true, "AllReplicasAvailable"}, ConditionAPIRestricted: {false, "UnrestrictedBySpec"}}),
				phase:      PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus,
				check: restrictedContainer(argsMinimal, s3Env),
			},
		},
	}
	for name, tc := range cases {
		for _, enc := range encodings {
			t.Run(name+"/"+string(enc), func(t *testing.T) {
				p := platform(t)
				if tc.platform != nil {
					p = *tc.platform
				}
				tc.want.verify(t, tc.reason, tc.scene.run(t, enc, p))
			})
		}
	}
}

func TestComposeFatal(t *testing.T) {
	base := created(t, "", deployAvailable)
	noApp := map[string][]string{}
	noKey := map[string][]string{reqApplication: {readyApp}, reqAPIKey: nil}
	collision := "tritonConfig: {parameters: [{name: grpc-port, value: '9001'}]}\n"
	cases := map[string]struct {
		reason   string
		xr       string
		observed map[string]string
		required map[string][]string // nil: a Ready application
		want     string
	}{
		"BadStorageURI":     {reason: "An unsupported URI is refused naming the field.", xr: withURI(serverXR("", ""), "http://minio/models"), want: `spec.storageUri: "http://minio/models"`},
		"SamePorts":         {reason: "Ports must differ.", xr: serverXR("networking: {httpPort: 9000, grpcPort: 9000}\n", ""), want: "spec.networking: httpPort 9000, grpcPort 9000"},
		"LoadModelsNoMode":  {reason: "validate runs in Compose.", xr: serverXR("modelControl: {loadModels: [a]}\n", ""), want: "spec.modelControl.loadModels needs spec.modelControl.mode: explicit"},
		"WildcardAndModels": {reason: "validate runs in Compose.", xr: serverXR("modelControl: {mode: explicit, loadModels: ['*', a]}\n", ""), want: `spec.modelControl.loadModels: "*"`},
		"PollSeconds":       {reason: "validate runs in Compose.", xr: serverXR("modelControl: {mode: none, repositoryPollSeconds: 10}\n", ""), want: "spec.modelControl.repositoryPollSeconds needs"},
		"ShmTooSmall":       {reason: "validate runs in Compose.", xr: serverXR("tritonConfig: {pythonBackend: {shmDefaultByteSize: 1024}}\n", ""), want: "spec.tritonConfig.pythonBackend.shmDefaultByteSize: 1024"},
		"GPUDisagreement": {
			reason: "gpus and resources disagreeing is refused naming both fields.",
			xr:     serverXR("gpus: 2\nresources: {limits: {nvidia.com/gpu: '1'}}\n", ""),
			want:   "spec.gpus (2) and spec.resources.limits[nvidia.com/gpu] (1) disagree",
		},
		"ParameterCollision": {
			reason: "A parameter that sets a managed flag is refused naming the parameter.",
			xr:     serverXR(collision, ""),
			want:   "spec.tritonConfig.parameters[0]: --grpc-port is set by the server spec already",
		},
		"AlwaysManagedParameter": {
			reason: "allow-http is always managed: the Service expects HTTP to be served.",
			xr:     serverXR("tritonConfig: {parameters: [{name: allow-http, value: 'false'}]}\n", ""),
			want:   "spec.tritonConfig.parameters[0]: --allow-http is managed: the Service and ServiceMonitor expect",
		},
		"BadLogLevel": {
			reason: "Invalid logging is refused.",
			xr:     serverXR("observability: {enabled: true, logging: {level: TRACE}}\n", ""),
			want:   `spec.observability.logging.level: "TRACE"`,
		},
		"ParameterCollisionApplicationMissing": {
			reason:   "The flags are built before any wait: a spec mistake shows at once, even while the application is missing.",
			xr:       serverXR(collision, ""),
			required: noApp,
			want:     "spec.tritonConfig.parameters[0]: --grpc-port is set by the server spec already",
		},
		"ParameterCollisionApplicationNotReady": {
			reason:   "…or not Ready.",
			xr:       serverXR(collision, ""),
			required: map[string][]string{reqApplication: {notReadyApp}},
			want:     "spec.tritonConfig.parameters[0]: --grpc-port is set by the server spec already",
		},
		"BadLogLevelApplicationMissing": {
			reason:   "A bad logging level while the application is missing.",
			xr:       serverXR("observability: {enabled: true, logging: {level: TRACE}}\n", ""),
			required: noApp,
			want:     `spec.observability.logging.level: "TRACE"`,
		},
		"PythonExtraArgApplicationMissing": {
			reason:   "A bad python extraArgs name while the application is missing.",
			xr:       serverXR("tritonConfig: {pythonBackend: {extraArgs: {'a=b': '1'}}}\n", ""),
			required: noApp,
			want:     "spec.tritonConfig.pythonBackend.extraArgs[a=b]: a python backend setting name cannot contain '=', ',' or spaces",
		},
		"ParameterCollisionAPIKeyMissing": {
			reason:   "…and while the API key Secret is missing.",
			xr:       serverXR(collision, ""),
			required: noKey,
			want:     "spec.tritonConfig.parameters[0]: --grpc-port is set by the server spec already",
		},
		"ParameterCollisionStorageMismatch": {
			reason: "…and while the storage does not match the application.",
			xr:     withURI(serverXR(collision, ""), "gs://models/resnet"),
			want:   "spec.tritonConfig.parameters[0]: --grpc-port is set by the server spec already",
		},
		"ParameterCollisionAfterCreateApplicationMissing": {
			reason:   "After the create, with the application gone and nothing recorded, the Deployment would be kept as it is: the spec mistake is still refused.",
			xr:       serverXR(collision, ""),
			observed: base,
			required: noApp,
			want:     "spec.tritonConfig.parameters[0]: --grpc-port is set by the server spec already",
		},
	}
	for name, tc := range cases {
		for _, enc := range encodings {
			t.Run(name+"/"+string(enc), func(t *testing.T) {
				req := tc.required
				if req == nil {
					req = map[string][]string{reqApplication: {readyApp}}
				}
				r := scene{xr: tc.xr, observed: tc.observed, required: req}.run(t, enc, platform(t))
				if r.Fatal == nil || !strings.Contains(r.Fatal.Error(), tc.want) {
					t.Fatalf("%s\nwant Fatal containing %q, got %v", tc.reason, tc.want, r.Fatal)
				}
				if len(r.Desired) != 0 || r.Status != nil || len(r.Conditions) != 0 {
					t.Errorf("%s\na Fatal carries nothing else: desired %d, status %v, conditions %v", tc.reason, len(r.Desired), r.Status, r.Conditions)
				}
			})
		}
	}
}

// TestComposeKeepCorrupt: an observed object that is kept as it is must
// decode into its type; a corrupt one is refused with an error rather than
// sent back to the API server. (Unknown fields are let through: a newer API
// server may know fields these types lack.)
func TestComposeKeepCorrupt(t *testing.T) {
	corruptReplicas := created(t, "", "{spec: {replicas: x}, "+strings.TrimPrefix(deployAvailable, "{"))
	cases := map[string]struct {
		reason   string
		xr       string
		observed map[string]string
		required map[string][]string
		want     string // substring of the Fatal; "": composed
	}{
		"APIKeyMissing": {
			reason: "The API key Secret is gone: the Deployment would be kept, but spec.replicas: \"x\" is no Deployment.",
			xr:     serverXR("", snapshot), observed: corruptReplicas,
			required: map[string][]string{reqApplication: {readyApp}, reqAPIKey: nil},
			want:     "cannot keep the observed deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
		},
		"ApplicationGoneWithoutSnapshot": {
			reason: "The application gone and nothing recorded: the same refusal.",
			xr:     serverXR("", ""), observed: corruptReplicas,
			want: "cannot keep the observed deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
		},
		"StorageMismatch": {
			reason: "The storage mismatching the application after the create: the same refusal.",
			xr:     withURI(serverXR("", snapshot), "gs://models/resnet"), observed: corruptReplicas,
			required: map[string][]string{reqApplication: {readyApp}},
			want:     "cannot keep the observed deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
		},
		"RebuiltWhenNothingBlocks": {
			reason: "Control: with nothing blocking, the Deployment is rebuilt from the spec and the corrupt observed one does not matter.",
			xr:     serverXR("", snapshot), observed: corruptReplicas,
			required: map[string][]string{reqApplication: {readyApp}},
		},
	}
	for name, tc := range cases {
		for _, enc := range encodings {
			t.Run(name+"/"+string(enc), func(t *testing.T) {
				r := scene{xr: tc.xr, observed: tc.observed, required: tc.required}.run(t, enc, platform(t))
				if tc.want == "" {
					if r.Fatal != nil {
						t.Fatalf("%s\nunexpected Fatal: %v", tc.reason, r.Fatal)
					}
					d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
					if diff := cmp.Diff(ptr.To[int32](1), d.Spec.Replicas); diff != "" {
						t.Errorf("%s\nreplicas: -want, +got:\n%s", tc.reason, diff)
					}
					return
				}
				if r.Fatal == nil || !strings.Contains(r.Fatal.Error(), tc.want) {
					t.Fatalf("%s\nwant Fatal containing %q, got %v", tc.reason, tc.want, r.Fatal)
				}
				if len(r.Desired) != 0 {
					t.Errorf("%s\na Fatal composes nothing, got %d objects", tc.reason, len(r.Desired))
				}
			})
		}
	}
	t.Run("ClaimUsage", func(t *testing.T) {
		// The claim flavour keeps its observed ClusterUsage while the
		// application's composite is unknown: a corrupt one is refused too.
		claimApp := appWith("spec:\n", "spec:\n  resourceRef: {apiVersion: serving.kalypso.io/v1alpha1, kind: XKalypsoApplication, name: classifier-abc12}\n")
		first := scene{xr: claimXR, required: map[string][]string{reqApplication: {claimApp}}}.run(t, int64s, platform(t))
		if first.Fatal != nil {
			t.Fatal(first.Fatal)
		}
		obs := map[string]string{}
		for n, d := range first.Desired {
			obs[string(n)] = observe(t, d, "")
		}
		obs[string(resDeployment)] = observe(t, first.Desired[resDeployment], deployAvailable)
		obs[string(resUsage)] = observe(t, first.Desired[resUsage], "{spec: {replayDeletion: maybe}}")
		r := scene{xr: claimXR + "status:\n  " + snapshot + "\n", observed: obs}.run(t, int64s, platform(t))
		want := "cannot keep the observed usage: json: cannot unmarshal string into Go struct field ClusterUsageSpec.spec.replayDeletion of type bool"
		if r.Fatal == nil || !strings.Contains(r.Fatal.Error(), want) {
			t.Fatalf("want Fatal containing %q, got %v", want, r.Fatal)
		}
	})
}

func TestNew(t *testing.T) {
	long := "a" + strings.Repeat("b", 58) // 59 characters
	cases := map[string]struct {
		reason  string
		xr      string
		wantErr string
	}{
		"MaxLength":      {reason: "59 characters leave <name>-svc at 63.", xr: strings.Replace(serverXR("", ""), "name: resnet,", "name: "+long+",", 1)},
		"TooLong":        {reason: "60 characters would make <name>-svc too long for a Service.", xr: strings.Replace(serverXR("", ""), "name: resnet,", "name: "+long+"c,", 1), wantErr: `metadata.name: "` + long + `c"`},
		"LeadingDigit":   {reason: "A Service name must start with a letter.", xr: strings.Replace(serverXR("", ""), "name: resnet,", "name: 1resnet,", 1), wantErr: `metadata.name: "1resnet" must start with a letter`},
		"UpperCase":      {reason: "DNS labels are lower case.", xr: strings.Replace(serverXR("", ""), "name: resnet,", "name: ResNet,", 1), wantErr: `metadata.name: "ResNet"`},
		"NoNamespace":    {reason: "A namespaced kind without a namespace (and no claim) cannot be composed.", xr: strings.Replace(serverXR("", ""), " namespace: vision-dev,", "", 1), wantErr: "must be namespaced"},
		"MalformedSpec":  {reason: "A spec of the wrong shape is refused naming the field.", xr: serverXR("replicas: many\n", ""), wantErr: "spec.replicas: cannot use a JSON string"},
		"BadStatusIsNil": {reason: "A status that does not decode is ignored, not an error.", xr: serverXR("", "application: [oops]\n")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := scene{xr: tc.xr}.composer(t, int64s)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("%s\nunexpected error: %v", tc.reason, err)
				}
				if c.last != nil {
					t.Errorf("%s\nno snapshot expected, got %+v", tc.reason, c.last)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%s\nwant error containing %q, got %v", tc.reason, tc.wantErr, err)
			}
		})
	}
}

// teamPlatform names its own API key Secret, key and header.
func teamPlatform(t *testing.T) compose.Platform {
	t.Helper()
	p, err := compose.ResolvePlatform(&v1beta1.Input{Spec: v1beta1.Defaults{Security: &v1beta1.SecurityDefaults{RestrictedAPI: &v1beta1.RestrictedAPIDefaults{
		SecretName: ptr.To("team-triton-key"), SecretKey: ptr.To("token"), HeaderKey: ptr.To("x-team-key"),
	}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readPodsPlatform reads the pods of a server that is not available.
func readPodsPlatform(t *testing.T) compose.Platform {
	return composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Diagnostics: &v1beta1.DiagnosticsDefaults{ReadPods: ptr.To(true)}}})
}

func TestRequirements(t *testing.T) {
	unrestricted := "security: {unrestrictedAPIs: true}\n"
	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		platform *compose.Platform
		want     []string
		secret   string // the API key Secret asked for
	}{
		"Minimal":        {reason: "The application, the platform's API key Secret, and the quotas before the first create.", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas}},
		"ServiceMonitor": {reason: "A ServiceMonitor is checked through its schema, not its CRD.", spec: "observability: {enabled: true, metrics: {enableServiceMonitor: true}}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas}},
		"GPUBeforeCreate": {
			reason: "Quotas before the first create: GPUs and the ephemeral storage every server requests are checked against them.", spec: "gpus: 1\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"GPUAfterCreate": {
			reason: "…not once the Deployment exists.", spec: "gpus: 1\n", observed: created(t, "gpus: 1\n", deployAvailable), want: []string{reqApplication, reqAppProtection, reqAPIKey},
		},
		"GPUInResourcesLimits": {
			reason: "GPUs given only in spec.resources.limits make a GPU server too.", spec: "resources: {limits: {nvidia.com/gpu: '1'}}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"GPUInResourcesRequests": {
			reason: "…and in spec.resources.requests.", spec: "resources: {requests: {nvidia.com/gpu: '1'}}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"GPUsZeroResourcesGPU": {
			reason: "gpus: 0 does not hide the GPUs of spec.resources.", spec: "gpus: 0\nresources: {limits: {nvidia.com/gpu: '2'}}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"GPUResourceZero": {
			reason: "A zero GPU count in spec.resources is no GPU.", spec: "resources: {limits: {nvidia.com/gpu: '0'}}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"CPUResources": {
			reason: "CPU and memory only: the quotas still bound its ephemeral storage.", spec: "resources: {requests: {cpu: '1', memory: 1Gi}}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"MIGResources": {
			reason: "The platform's GPU resource name is what counts (MIG slices).", spec: "resources: {limits: {nvidia.com/mig-1g.10gb: '1'}}\n",
			platform: ptr.To(func() compose.Platform {
				return withDefaultClass(platform(t), func(c *compose.GPUClass) { c.Resource = "nvidia.com/mig-1g.10gb" })
			}()),
			want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"QueueTime":    {reason: "The custom metrics API for queue-time scaling.", spec: "autoscaling: {enabled: true, maxReplicas: 2, metric: queueTime}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas, reqMetricsAPI}},
		"CPUScaling":   {reason: "CPU scaling needs no adapter.", spec: "autoscaling: {enabled: true, maxReplicas: 2}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas}},
		"NotAvailable": {reason: "No pods by default, even while the Deployment is not available: core would cache every Pod of the cluster.", observed: created(t, "", deployProgressing), want: []string{reqApplication, reqAppProtection, reqAPIKey}},
		"NotAvailableReadPods": {
			reason: "The pods, while the Deployment is not available, for the reason, when the platform reads pods.", observed: created(t, "", deployProgressing),
			platform: ptr.To(readPodsPlatform(t)), want: []string{reqApplication, reqAppProtection, reqAPIKey, reqPods},
		},
		"AvailableReadPods": {
			reason: "No pods once available, even when the platform reads pods.", observed: created(t, "", deployAvailable),
			platform: ptr.To(readPodsPlatform(t)), want: []string{reqApplication, reqAppProtection, reqAPIKey},
		},
		"Available":    {reason: "No pods once available.", observed: created(t, "", deployAvailable), want: []string{reqApplication, reqAppProtection, reqAPIKey}},
		"Unrestricted": {reason: "A server that opts out of the restricted APIs does not need the key.", spec: unrestricted, want: []string{reqApplication, reqAppProtection, reqQuotas}},
		"UnrestrictedFalse": {
			reason: "unrestrictedAPIs: false is the default: the key is needed.", spec: "security: {unrestrictedAPIs: false}\n", want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas},
		},
		"UnrestrictedAfterCreate": {
			reason: "…before and after the create alike.", spec: unrestricted, observed: created(t, unrestricted, deployAvailable), want: []string{reqApplication, reqAppProtection},
		},
		"PlatformSecret": {
			reason: "The Secret's name is the platform's.", platform: ptr.To(teamPlatform(t)),
			want: []string{reqApplication, reqAppProtection, reqAPIKey, reqQuotas}, secret: "team-triton-key",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := scene{xr: serverXR(tc.spec, ""), observed: tc.observed}.composer(t, int64s)
			if err != nil {
				t.Fatal(err)
			}
			p := platform(t)
			if tc.platform != nil {
				p = *tc.platform
			}
			got := c.Requirements(p)
			var keys []string
			for k := range got {
				keys = append(keys, k)
			}
			if diff := cmp.Diff(tc.want, keys, cmpSortStrings); diff != "" {
				t.Errorf("%s\nrequirements: -want, +got:\n%s", tc.reason, diff)
			}
			app := got[reqApplication]
			if app.GetKind() != "KalypsoApplication" || app.GetApiVersion() != "serving.kalypso.io/v1alpha1" || app.GetNamespace() != "vision-dev" || app.GetMatchName() != "classifier" {
				t.Errorf("application selector: %v", app)
			}
			if u := got[reqAppProtection]; u.GetKind() != "Usage" || u.GetApiVersion() != "protection.crossplane.io/v1beta1" || u.GetNamespace() != "vision-dev" || u.GetMatchName() != "classifier-has-servers" {
				t.Errorf("application protection selector: want Usage classifier-has-servers in vision-dev, got %v", u)
			}
			if p, ok := got[reqPods]; ok {
				if diff := cmp.Diff(selector, p.GetMatchLabels().GetLabels()); diff != "" || p.GetNamespace() != "vision-dev" || p.GetKind() != "Pod" {
					t.Errorf("pods selector: %v", p)
				}
			}
			if s, ok := got[reqAPIKey]; ok {
				secret := tc.secret
				if secret == "" {
					secret = "kalypso-triton-api-key"
				}
				if s.GetKind() != "Secret" || s.GetApiVersion() != "v1" || s.GetNamespace() != "vision-dev" || s.GetMatchName() != secret {
					t.Errorf("API key selector: want Secret %s in vision-dev, got %v", secret, s)
				}
			}
		})
	}
}

var cmpSortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// The claim flavour: a cluster-scoped XKalypsoTritonServer named
// <claim>-<suffix> for the claim resnet in vision-dev.
const claimXR = `apiVersion: serving.kalypso.io/v1alpha1
kind: XKalypsoTritonServer
metadata:
  name: resnet-x7k2p
  generation: 2
  labels: {crossplane.io/claim-name: resnet, crossplane.io/claim-namespace: vision-dev}
spec:
  applicationRef: classifier
  storageUri: s3://models/resnet
  replicas: 2
  claimRef: {apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, name: resnet, namespace: vision-dev}
`

func TestComposeClaim(t *testing.T) {
	claimApp := appWith("spec:\n", "spec:\n  resourceRef: {apiVersion: serving.kalypso.io/v1alpha1, kind: XKalypsoApplication, name: classifier-abc12}\n")
	t.Run("Composed", func(t *testing.T) {
		r := scene{xr: claimXR, required: map[string][]string{reqApplication: {claimApp}}}.run(t, int64s, platform(t))
		if r.Fatal != nil {
			t.Fatal(r.Fatal)
		}
		if diff := cmp.Diff(all(resource.ReadyFalse, resDeployment, resService, resPDB, resUsage), readiness(r)); diff != "" {
			t.Errorf("resources: -want, +got:\n%s", diff)
		}
		// Objects are named after the claim, in the claim's namespace,
		// not after the XR's generated name.
		d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
		s := decodeStrict[corev1.Service](t, r, resService)
		p := decodeStrict[policyv1.PodDisruptionBudget](t, r, resPDB)
		for _, m := range []metav1.ObjectMeta{d.ObjectMeta, s.ObjectMeta, p.ObjectMeta} {
			if !strings.HasPrefix(m.Name, "resnet-") || strings.Contains(m.Name, "x7k2p") || m.Namespace != "vision-dev" {
				t.Errorf("%s/%s: want an object named after the claim in vision-dev", m.Namespace, m.Name)
			}
		}
		if diff := cmp.Diff(serverLabels, d.Labels); diff != "" {
			t.Errorf("labels: -want, +got:\n%s", diff)
		}
		// Both composites are cluster scoped: a ClusterUsage between them.
		u := decodeStrict[protectionv1beta1.ClusterUsage](t, r, resUsage)
		want := &protectionv1beta1.ClusterUsage{
			TypeMeta:   metav1.TypeMeta{APIVersion: "protection.crossplane.io/v1beta1", Kind: "ClusterUsage"},
			ObjectMeta: metav1.ObjectMeta{Name: "resnet-uses-application-vision-dev", Labels: serverLabels},
			Spec: protectionv1beta1.ClusterUsageSpec{
				Of:             protectionv1beta1.Resource{APIVersion: "serving.kalypso.io/v1alpha1", Kind: "XKalypsoApplication", ResourceRef: &protectionv1beta1.ResourceRef{Name: "classifier-abc12"}},
				Reason:         ptr.To("KalypsoTritonServer vision-dev/resnet serves this application: delete the server first, then delete the application again"),
				ReplayDeletion: ptr.To(false),
			},
		}
		if diff := cmp.Diff(want, u); diff != "" {
			t.Errorf("cluster usage: -want, +got:\n%s", diff)
		}
		st := r.Status.(*v1alpha1.KalypsoTritonServerStatus)
		if st.ServiceEndpoint != "http://resnet-svc.vision-dev.svc:8000" || st.DeploymentName != "resnet-deploy" {
			t.Errorf("status endpoints: %+v", st)
		}
	})
	t.Run("ApplicationWithoutXRYet", func(t *testing.T) {
		// A claim whose composite is not bound yet has no resourceRef: no
		// usage can name it yet; nothing else waits for it.
		noRef := appWith("spec:\n", "spec:\n  resourceRef: {}\n")
		r := scene{xr: claimXR, required: map[string][]string{reqApplication: {noRef}}}.run(t, int64s, platform(t))
		if r.Fatal != nil {
			t.Fatal(r.Fatal)
		}
		if _, ok := r.Desired[resUsage]; ok {
			t.Errorf("no usage can be composed without the application's XR name")
		}
		if _, ok := r.Desired[resDeployment]; !ok {
			t.Errorf("the Deployment is composed all the same")
		}
	})
	t.Run("UsageCarriedForward", func(t *testing.T) {
		// Once composed, the ClusterUsage is kept while the application is
		// missing: dropping it would let the application be deleted.
		obs := map[string]string{}
		first := scene{xr: claimXR, required: map[string][]string{reqApplication: {claimApp}}}.run(t, int64s, platform(t))
		for n, d := range first.Desired {
			obs[string(n)] = observe(t, d, "")
		}
		obs[string(resDeployment)] = observe(t, first.Desired[resDeployment], deployAvailable)
		r := scene{xr: claimXR + "status:\n  " + snapshot + "\n", observed: obs}.run(t, int64s, platform(t))
		if r.Fatal != nil {
			t.Fatal(r.Fatal)
		}
		if diff := cmp.Diff(jsonOf(t, first.Desired[resUsage].Resource.Object), jsonOf(t, r.Desired[resUsage].Resource.Object)); diff != "" {
			t.Errorf("cluster usage: -want, +got:\n%s", diff)
		}
	})
	t.Run("PreviousReleaseUsageCarriedForward", func(t *testing.T) {
		// A ClusterUsage v0.1.0 composed names the server in spec.by and
		// replays deletes: carried forward while the application is
		// missing, it loses both, or a foreground delete of the server
		// would wait on it forever.
		obs := map[string]string{}
		first := scene{xr: claimXR, required: map[string][]string{reqApplication: {claimApp}}}.run(t, int64s, platform(t))
		for n, d := range first.Desired {
			obs[string(n)] = observe(t, d, "")
		}
		obs[string(resDeployment)] = observe(t, first.Desired[resDeployment], deployAvailable)
		obs[string(resUsage)] = observe(t, first.Desired[resUsage], `{spec: {replayDeletion: true, by: {apiVersion: serving.kalypso.io/v1alpha1, kind: XKalypsoTritonServer, resourceRef: {name: resnet-x7k2p}}}}`)
		r := scene{xr: claimXR + "status:\n  " + snapshot + "\n", observed: obs}.run(t, int64s, platform(t))
		if r.Fatal != nil {
			t.Fatal(r.Fatal)
		}
		if diff := cmp.Diff(jsonOf(t, first.Desired[resUsage].Resource.Object["spec"]), jsonOf(t, r.Desired[resUsage].Resource.Object["spec"])); diff != "" {
			t.Errorf("cluster usage spec: -want, +got:\n%s", diff)
		}
	})
	t.Run("NameRule", func(t *testing.T) {
		// The claim's name is checked, not the XR's generated one.
		bad := strings.Replace(claimXR, "crossplane.io/claim-name: resnet", "crossplane.io/claim-name: "+strings.Repeat("r", 60), 1)
		if _, err := (scene{xr: bad}).composer(t, int64s); err == nil || !strings.Contains(err.Error(), "metadata.name") {
			t.Errorf("want an error naming metadata.name, got %v", err)
		}
	})
}

// maximal turns every feature on.
const maximal = `replicas: 2
gpus: 1
serviceAccountName: resnet-runner
tritonConfig:
  image: registry.example.com/tritonserver
  tag: 24.12-py3-custom
  backendType: python
  pythonBackend: {shmDefaultByteSize: 33554432, shmGrowthByteSize: 1048576, extraArgs: {stub-timeout-seconds: '60', shm-region-prefix-name: kalypso}}
  parameters: [{name: model-load-thread-count, value: '2'}]
resources: {requests: {cpu: '4', memory: 16Gi}, limits: {cpu: '8', memory: 32Gi}}
networking: {httpPort: 9000, grpcPort: 9001, metricsPort: 9002}
observability:
  enabled: true
  collectorEndpoint: http://otel.monitoring.svc:4318
  logging: {level: VERBOSE, format: ISO8601}
  tracing: {enabled: true, samplingRate: '0.5'}
  profiling: {enabled: true}
  metrics: {enableServiceMonitor: true, interval: 30s}
scheduling:
  nodeSelector: {pool: a100, zone: b}
  tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: gpu, operator: In, values: [a100]}]}]}}}
  topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {kalypso-serving.io/tritonserver: resnet}}}]
  runtimeClassName: nvidia
  priorityClassName: inference
modelControl: {mode: explicit, loadModels: [resnet50, bert]}
startup: {timeoutSeconds: 900, progressDeadlineSeconds: 1800}
rollout: {strategy: Recreate}
autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6, metric: queueTime, target: 20000}
disruption: {maxUnavailable: 1}
shutdown: {drainSeconds: 60, preStopSleepSeconds: 10}
modelCache: {sizeLimit: 40Gi, request: 20Gi}
`

func maximalScene() scene {
	return scene{xr: serverXR(maximal, ""), required: map[string][]string{
		reqApplication: {readyApp}, reqServiceMonitor: {smCRD}, reqMetricsAPI: {metricsAPISvc}, reqQuotas: {},
	}}
}

// TestComposeDeterministic: identical input gives byte-identical output,
// whatever Go's map iteration does.
func TestComposeDeterministic(t *testing.T) {
	for _, enc := range encodings {
		t.Run(string(enc), func(t *testing.T) {
			first := maximalScene().run(t, enc, platform(t))
			if first.Fatal != nil {
				t.Fatal(first.Fatal)
			}
			for range 5 {
				again := maximalScene().run(t, enc, platform(t))
				if len(again.Desired) != len(first.Desired) {
					t.Fatalf("want %d objects, got %d", len(first.Desired), len(again.Desired))
				}
				for n, d := range first.Desired {
					if diff := cmp.Diff(jsonOf(t, d.Resource.Object), jsonOf(t, again.Desired[n].Resource.Object)); diff != "" {
						t.Errorf("%s differs between two identical calls: -first, +again:\n%s", n, diff)
					}
				}
				if diff := cmp.Diff(jsonOf(t, first.Status), jsonOf(t, again.Status)); diff != "" {
					t.Errorf("status differs: %s", diff)
				}
				if diff := cmp.Diff(first.Conditions, again.Conditions); diff != "" {
					t.Errorf("conditions differ: %s", diff)
				}
			}
		})
	}
}

// TestComposedObjectsDecodeStrictly decodes every object of a server with
// every feature on into its typed struct, rejecting unknown fields, and
// checks the ones no other test looks at in full.
func TestComposedObjectsDecodeStrictly(t *testing.T) {
	// The call after the first create, which adds the ServiceMonitor.
	s := maximalScene()
	s.observed = without(created(t, maximal, deployProgressing), string(resServiceMonitor))
	r := s.run(t, int64s, platform(t))
	if r.Fatal != nil {
		t.Fatal(r.Fatal)
	}
	want := all(resource.ReadyTrue, resService, resPDB, resHPA, resUsage)
	want[string(resDeployment)], want[string(resServiceMonitor)] = resource.ReadyFalse, resource.ReadyFalse
	if diff := cmp.Diff(want, readiness(r)); diff != "" {
		t.Fatalf("resources: -want, +got:\n%s", diff)
	}
	d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
	decodeStrict[monitoringv1.ServiceMonitor](t, r, resServiceMonitor)
	decodeStrict[policyv1.PodDisruptionBudget](t, r, resPDB)
	decodeStrict[autoscalingv2.HorizontalPodAutoscaler](t, r, resHPA)

	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Errorf("deployment type: %s %s", d.APIVersion, d.Kind)
	}
	c := tritonContainer(t, d)
	if c.Image != "registry.example.com/tritonserver:24.12-py3-custom" {
		t.Errorf("image: %s", c.Image)
	}
	// The restricted APIs' flags come right after the port flags, before
	// the backend, logging, tracing and user flags.
	wantHead := concat([]string{"tritonserver", "--model-repository=s3://models/resnet", "--model-control-mode=explicit", "--load-model=resnet50", "--load-model=bert",
		"--strict-readiness=true", "--http-port=9000", "--grpc-port=9001", "--metrics-port=9002", "--exit-timeout-secs=60"}, restrictedFlags("triton-api-key"),
		[]string{"--backend-config=python,shm-default-byte-size=33554432"})
	if len(c.Args) < len(wantHead) {
		t.Fatalf("args: %v", c.Args)
	}
	if diff := cmp.Diff(wantHead, c.Args[:len(wantHead)]); diff != "" {
		t.Errorf("args head: -want, +got:\n%s", diff)
	}
	if c.Args[len(c.Args)-1] != "--model-load-thread-count=2" {
		t.Errorf("the user's parameters come last: %v", c.Args)
	}
	wantKey := corev1.EnvVar{Name: "TRITON_API_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "kalypso-triton-api-key"}, Key: "api-key",
	}}}
	if len(c.Env) == 0 || !cmp.Equal(wantKey, c.Env[len(c.Env)-1]) {
		t.Errorf("env: want the API key last, by reference: %+v", c.Env)
	}
	noKeyValue(t, r)
	wantAnnotations := map[string]string{
		"profiles.grafana.com/cpu.ebpf.enabled":  "true",
		"resource.opentelemetry.io/service.name": "classifier.resnet",
	}
	if diff := cmp.Diff(wantAnnotations, d.Spec.Template.Annotations); diff != "" {
		t.Errorf("pod annotations: -want, +got:\n%s", diff)
	}

	svc := decodeStrict[corev1.Service](t, r, resService)
	wantSvc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "resnet-svc", Namespace: "vision-dev", Labels: serverLabels},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector, Ports: []corev1.ServicePort{
			{Name: "http", Port: 9000, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
			{Name: "grpc", Port: 9001, TargetPort: intstr.FromString("grpc"), Protocol: corev1.ProtocolTCP},
			{Name: "metrics", Port: 9002, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
		}},
	}
	if diff := cmp.Diff(wantSvc, svc); diff != "" {
		t.Errorf("service: -want, +got:\n%s", diff)
	}

	u := decodeStrict[protectionv1beta1.Usage](t, r, resUsage)
	wantUsage := &protectionv1beta1.Usage{
		TypeMeta:   metav1.TypeMeta{APIVersion: "protection.crossplane.io/v1beta1", Kind: "Usage"},
		ObjectMeta: metav1.ObjectMeta{Name: "resnet-uses-application", Namespace: "vision-dev", Labels: serverLabels},
		Spec: protectionv1beta1.UsageSpec{
			Of:             protectionv1beta1.NamespacedResource{APIVersion: "serving.kalypso.io/v1alpha1", Kind: "KalypsoApplication", ResourceRef: &protectionv1beta1.NamespacedResourceRef{Name: "classifier"}},
			Reason:         ptr.To("KalypsoTritonServer vision-dev/resnet serves this application: delete the server first, then delete the application again"),
			ReplayDeletion: ptr.To(false),
		},
	}
	if diff := cmp.Diff(wantUsage, u); diff != "" {
		t.Errorf("usage: -want, +got:\n%s", diff)
	}

	wantConds := composedConds(map[string]cond{
		ConditionMetricsScraping: {true, "ServiceMonitorComposed"}, ConditionTracing: {true, "TracingEnabled"},
		ConditionProfiling: {true, "EBPFProfiling"}, ConditionAutoscaling: {true, "HorizontalPodAutoscalerComposed"},
		ConditionServerAvailable: {false, "Progressing"}, ConditionGPUClass: {true, reasonGPUClassSelected},
	})
	if diff := cmp.Diff(wantConds, condsOf(r)); diff != "" {
		t.Errorf("conditions: -want, +got:\n%s", diff)
	}
}

func TestComposeTracing(t *testing.T) {
	tracing := "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}\n"
	cases := map[string]struct {
		reason  string
		spec    string
		want    []string // trace flags
		cond    cond
		message string
	}{
		"PlatformEndpoint": {
			reason: "No collectorEndpoint on the server: the platform's collector.",
			spec:   tracing,
			want: []string{
				"--trace-config=mode=opentelemetry",
				"--trace-config=opentelemetry,url=http://kalypso-otel-collector.otel-system.svc.cluster.local:4318/v1/traces",
				"--trace-config=rate=10",
				"--trace-config=level=TIMESTAMPS",
				"--trace-config=opentelemetry,resource=service.name=classifier.resnet",
				"--trace-config=opentelemetry,resource=deployment.environment=dev",
			},
			cond:    cond{true, "TracingEnabled"},
			message: "OpenTelemetry traces of 1 request in 10 go over OTLP/HTTP to http://kalypso-otel-collector.otel-system.svc.cluster.local:4318/v1/traces",
		},
		"ServerEndpoint": {
			reason: "The server's collectorEndpoint wins.",
			spec:   "observability: {enabled: true, logging: {enabled: false}, collectorEndpoint: 'http://otel.team.svc:4318', tracing: {enabled: true, samplingRate: '1'}}\n",
			want: []string{
				"--trace-config=mode=opentelemetry",
				"--trace-config=opentelemetry,url=http://otel.team.svc:4318/v1/traces",
				"--trace-config=rate=1",
				"--trace-config=level=TIMESTAMPS",
				"--trace-config=opentelemetry,resource=service.name=classifier.resnet",
				"--trace-config=opentelemetry,resource=deployment.environment=dev",
			},
			cond: cond{true, "TracingEnabled"},
		},
		"GRPCEndpoint": {
			reason:  "A gRPC endpoint: the server runs without tracing, and the condition says why.",
			spec:    "observability: {enabled: true, logging: {enabled: false}, collectorEndpoint: 'http://otel.team.svc:4317', tracing: {enabled: true}}\n",
			cond:    cond{false, "TracingMisconfigured"},
			message: "points at port 4317, OTLP over gRPC; Triton exports OTLP over HTTP: use the collector's HTTP port (usually 4318); Triton runs without tracing until it is fixed",
		},
		"BadRate": {
			reason:  "A bad rate: without tracing, with the reason.",
			spec:    "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true, samplingRate: '0'}}\n",
			cond:    cond{false, "TracingMisconfigured"},
			message: `spec.observability.tracing.samplingRate: "0"`,
		},
		"Off": {
			reason: "Tracing off.",
			spec:   "observability: {enabled: true, logging: {enabled: false}}\n",
			cond:   cond{false, "TracingDisabled"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := scene{xr: serverXR(tc.spec, ""), required: map[string][]string{reqApplication: {readyApp}}}.run(t, int64s, platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			c := tritonContainer(t, decodeStrict[appsv1.Deployment](t, r, resDeployment))
			var got []string
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--trace-config=") {
					got = append(got, a)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ntrace flags: -want, +got:\n%s", tc.reason, diff)
			}
			if got := condsOf(r)[ConditionTracing]; got != tc.cond {
				t.Errorf("%s\nTracing: want %+v, got %+v", tc.reason, tc.cond, got)
			}
			if m := message(r, ConditionTracing); !strings.Contains(m, tc.message) {
				t.Errorf("%s\nTracing message: want it to contain %q, got %q", tc.reason, tc.message, m)
			}
		})
	}
}

// TestTTL: the response TTL is the server's idle cost, so it is short only
// while the server waits on something no watch follows.
func TestTTL(t *testing.T) {
	queueTime := "autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}\n"
	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		required map[string][]string
		platform compose.Platform
		want     time.Duration
	}{
		"Settled": {
			reason:   "Available with a Ready application: only a change of the application or the platform's EnvironmentConfig is polled for.",
			observed: created(t, "", deployAvailable), required: map[string][]string{reqApplication: {readyApp}}, want: compose.IdleTTL,
		},
		"RollingOut": {
			reason:   "A rollout is followed through the Deployment's events; a minute guards against dropped ones.",
			observed: created(t, "", deployProgressing), required: map[string][]string{reqApplication: {readyApp}}, want: compose.PollTTL,
		},
		"RollingOutReadingPods": {
			reason:   "Pods are required resources: while the platform reads them for the reason, look again soon.",
			observed: created(t, "", deployProgressing), required: map[string][]string{reqApplication: {readyApp}}, platform: readPodsPlatform(t), want: compose.WaitTTL,
		},
		"ApplicationGone": {
			reason:   "A running server whose application is missing waits for it.",
			observed: created(t, "", deployAvailable), want: compose.WaitTTL,
		},
		"BeforeCreate": {
			reason: "Before the first create the server waits for its application.",
			want:   compose.WaitTTL,
		},
		"MetricsAPIUnavailable": {
			reason: "Available, but queue-time autoscaling waits for the custom metrics API.",
			spec:   queueTime, observed: created(t, queueTime, deployAvailable), required: map[string][]string{reqApplication: {readyApp}}, want: compose.PollTTL,
		},
		"ServiceMonitorCRDMissing": {
			reason: "Available, but the ServiceMonitor waits for its CRD: installing it takes effect within a minute.",
			spec:   "observability: {enabled: true, metrics: {enableServiceMonitor: true}}\n", observed: created(t, "", deployAvailable),
			required: map[string][]string{reqApplication: {readyApp}}, want: compose.PollTTL,
		},
		"MetricsAPIServed": {
			reason: "…and idles once it is served.",
			spec:   queueTime, observed: created(t, queueTime, deployAvailable), required: map[string][]string{reqApplication: {readyApp}, reqMetricsAPI: {metricsAPISvc}}, want: compose.IdleTTL,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := tc.platform
			if p.TritonImage == "" {
				p = platform(t)
			}
			r := scene{xr: serverXR(tc.spec, snapshot), observed: tc.observed, required: tc.required}.run(t, int64s, p)
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			if r.TTL != tc.want {
				t.Errorf("%s\nTTL: want %v, got %v", tc.reason, tc.want, r.TTL)
			}
		})
	}
}

// without returns the observed objects less one.
func without(observed map[string]string, name string) map[string]string {
	out := maps.Clone(observed)
	delete(out, name)
	return out
}

// TestSchemas: whether ServiceMonitors are served is asked through a
// required schema, and only until one is composed: core parses the
// group-version's OpenAPI document for every such call.
func TestSchemas(t *testing.T) {
	smOn := "observability: {enabled: true, metrics: {enableServiceMonitor: true}}\n"
	cases := map[string]struct {
		reason   string
		spec     string
		status   string
		observed map[string]string
		want     []string
	}{
		"NotWanted":       {reason: "No ServiceMonitor wanted: nothing to check."},
		"FirstCreate":     {reason: "Wanted, at the first call: checked.", spec: smOn, want: []string{reqServiceMonitor}},
		"WaitingToCreate": {reason: "Wanted, but the server waits to be created (and polls): not checked.", spec: smOn, status: "conditions: [{type: ServerAvailable, status: 'False', reason: WaitingToCreate}]"},
		"Wanted":          {reason: "Wanted, the Deployment there and none composed: the kind is checked.", spec: smOn, observed: without(created(t, smOn, deployAvailable), string(resServiceMonitor)), want: []string{reqServiceMonitor}},
		"Composed":        {reason: "One is observed: its kind is served.", spec: smOn, observed: created(t, smOn, deployAvailable)},
		"CRDRemoved":      {reason: "It went (with its CRD): checked again.", spec: smOn, observed: without(created(t, smOn, deployAvailable), string(resServiceMonitor)), want: []string{reqServiceMonitor}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := scene{xr: serverXR(tc.spec, tc.status), observed: tc.observed}.composer(t, int64s)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Schemas(platform(t))
			if diff := cmp.Diff(tc.want, slices.Collect(maps.Keys(got)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nschemas: -want, +got:\n%s", tc.reason, diff)
			}
			if s, ok := got[reqServiceMonitor]; ok && (s.GetApiVersion() != "monitoring.coreos.com/v1" || s.GetKind() != "ServiceMonitor") {
				t.Errorf("schema selector: %v", s)
			}
		})
	}
}
