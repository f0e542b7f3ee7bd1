package application

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

func xr(t *testing.T, meta, spec string) *resource.Composite {
	t.Helper()
	return composetest.Composite(t, "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoApplication\nmetadata: "+meta+"\nspec:\n"+spec)
}

const appMeta = "{name: detector, namespace: vision-prod, generation: 2}"

func platform(t *testing.T, gateway bool) compose.Platform {
	t.Helper()
	in := &v1beta1.Input{}
	if gateway {
		in.Spec.Gateway = &v1beta1.GatewayDefaults{
			ParentRefs: []v1beta1.ParentRef{{Name: "kalypso-gateway", Namespace: "gateway-system"}},
			Hostname:   ptr.To("models.example.com"),
		}
	}
	return composetest.Platform(t, in)
}

const (
	readyProject = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
  spec: {environments: {dev: {namespace: vision-dev}, prod: {namespace: vision-prod}}},
  status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`
	provisioningProject = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
  spec: {environments: {prod: {namespace: vision-prod}}},
  status: {conditions: [{type: Ready, status: "False", reason: Creating}]}}`
	elsewhereProject = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
  spec: {environments: {dev: {namespace: vision-dev}}},
  status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`
	s3Secret      = `{apiVersion: v1, kind: Secret, metadata: {name: models-s3, namespace: vision-prod}, data: {AWS_ACCESS_KEY_ID: eA==, AWS_SECRET_ACCESS_KEY: eA==}}`
	halfSecret    = `{apiVersion: v1, kind: Secret, metadata: {name: models-s3, namespace: vision-prod}, data: {AWS_ACCESS_KEY_ID: eA==}}`
	readyServer   = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: yolo, namespace: vision-prod}, spec: {applicationRef: detector}, status: {conditions: [{type: Ready, status: "True"}]}}`
	pendingServer = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: ranker, namespace: vision-prod}, spec: {applicationRef: detector, networking: {httpPort: 9000, grpcPort: 9001}}}`
	otherServer   = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: other, namespace: vision-prod}, spec: {applicationRef: classifier}, status: {conditions: [{type: Ready, status: "True"}]}}`
	routesServed  = `{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute}` // compose.Served: the kind is served
	s3Storage     = "  storage: {secretName: models-s3}\n"
)

func TestCompose(t *testing.T) {
	type want struct {
		phase      string
		env        string
		active     int32
		ready      int32
		endpoint   string
		valid      bool
		conditions map[string]string // type → reason
		resources  []string
		ttl        bool // short wait TTL
	}
	good := func(exposed string) map[string]string {
		return map[string]string{ConditionProjectValid: "ProjectValid", ConditionStorageReady: "StorageReady", ConditionExposed: exposed}
	}
	cases := map[string]struct {
		reason   string
		meta     string
		spec     string
		gateway  bool
		observed map[string]string
		required map[string][]string
		want     want
	}{
		"Ready": {
			reason:   "A valid project and a complete secret make the application Ready; servers of other applications do not count.",
			spec:     "  projectRef: vision\n" + s3Storage,
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {readyServer, pendingServer, otherServer}},
			want:     want{resources: []string{"usage"}, phase: PhaseReady, env: "prod", active: 2, ready: 1, valid: true, conditions: good("GatewayDisabled")},
		},
		"ProjectNotFound": {
			reason:   "A missing project fails the application with a message saying what to do.",
			spec:     "  projectRef: vision\n" + s3Storage,
			required: map[string][]string{reqSecret: {s3Secret}},
			want:     want{phase: PhaseFailed, conditions: map[string]string{ConditionProjectValid: "ProjectNotFound", ConditionStorageReady: "StorageReady", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"ProjectNotReady": {
			reason:   "A project still provisioning leaves the application Pending.",
			spec:     "  projectRef: vision\n" + s3Storage,
			required: map[string][]string{reqProject: {provisioningProject}, reqSecret: {s3Secret}},
			want:     want{phase: PhasePending, env: "prod", conditions: map[string]string{ConditionProjectValid: "ProjectNotReady", ConditionStorageReady: "StorageReady", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"NamespaceNotInProject": {
			reason:   "An application outside its project's environment namespaces fails.",
			spec:     "  projectRef: vision\n" + s3Storage,
			required: map[string][]string{reqProject: {elsewhereProject}, reqSecret: {s3Secret}},
			want:     want{phase: PhaseFailed, conditions: map[string]string{ConditionProjectValid: "NamespaceNotInProject", ConditionStorageReady: "StorageReady", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"KeepsLastEnvironment": {
			reason:   "While the project is invalid, the environment recorded in status keeps the labels stable.",
			meta:     "{name: detector, namespace: vision-prod, generation: 2}\nstatus: {environment: prod}",
			spec:     "  projectRef: vision\n" + s3Storage,
			required: map[string][]string{reqSecret: {s3Secret}},
			want:     want{phase: PhaseFailed, env: "prod", conditions: map[string]string{ConditionProjectValid: "ProjectNotFound", ConditionStorageReady: "StorageReady", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"SecretMissing": {
			reason:   "A missing storage secret fails the application.",
			spec:     "  projectRef: vision\n" + s3Storage,
			required: map[string][]string{reqProject: {readyProject}},
			want:     want{phase: PhaseFailed, env: "prod", conditions: map[string]string{ConditionProjectValid: "ProjectValid", ConditionStorageReady: "StorageSecretMissing", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"SecretIncomplete": {
			reason:   "A secret without the provider's keys fails the application.",
			spec:     "  projectRef: vision\n" + s3Storage,
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {halfSecret}},
			want:     want{phase: PhaseFailed, env: "prod", conditions: map[string]string{ConditionProjectValid: "ProjectValid", ConditionStorageReady: "StorageSecretIncomplete", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"CustomKeyNames": {
			reason:   "spec.storage.keys names the keys the secret holds.",
			spec:     "  projectRef: vision\n  storage: {secretName: models-s3, keys: {accessKeyID: id, secretAccessKey: key}}\n",
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {`{apiVersion: v1, kind: Secret, metadata: {name: models-s3, namespace: vision-prod}, stringData: {id: abc, key: def}}`}},
			want:     want{phase: PhaseReady, env: "prod", valid: true, conditions: good("GatewayDisabled")},
		},
		"SessionTokenKeyMissing": {
			reason:   "A session token key named in spec.storage.keys is required: a Secret without it fails the application.",
			spec:     "  projectRef: vision\n  storage: {secretName: models-s3, keys: {sessionToken: token}}\n",
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}},
			want:     want{phase: PhaseFailed, env: "prod", conditions: map[string]string{ConditionProjectValid: "ProjectValid", ConditionStorageReady: "StorageSecretIncomplete", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"SessionTokenKeyPresent": {
			reason:   "A Secret with the named session token key is complete.",
			spec:     "  projectRef: vision\n  storage: {secretName: models-s3, keys: {sessionToken: token}}\n",
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {`{apiVersion: v1, kind: Secret, metadata: {name: models-s3, namespace: vision-prod}, data: {AWS_ACCESS_KEY_ID: eA==, AWS_SECRET_ACCESS_KEY: eA==, token: eA==}}`}},
			want:     want{phase: PhaseReady, env: "prod", valid: true, conditions: good("GatewayDisabled")},
		},
		"KeylessServiceAccountMissing": {
			reason:   "Keyless storage needs its service account.",
			spec:     "  projectRef: vision\n  storage: {serviceAccountName: model-reader}\n",
			required: map[string][]string{reqProject: {readyProject}},
			want:     want{phase: PhaseFailed, env: "prod", conditions: map[string]string{ConditionProjectValid: "ProjectValid", ConditionStorageReady: "StorageServiceAccountMissing", ConditionExposed: "GatewayDisabled"}, ttl: true},
		},
		"KeylessReady": {
			reason:   "An existing service account is enough without a secret.",
			spec:     "  projectRef: vision\n  storage: {provider: gcs, serviceAccountName: model-reader}\n",
			required: map[string][]string{reqProject: {readyProject}, reqServiceAccount: {`{apiVersion: v1, kind: ServiceAccount, metadata: {name: model-reader, namespace: vision-prod}}`}},
			want:     want{phase: PhaseReady, env: "prod", valid: true, conditions: good("GatewayDisabled")},
		},
		"GatewayNotConfigured": {
			reason:   "Exposure needs the platform's gateway.",
			spec:     "  projectRef: vision\n" + s3Storage + "  gateway: {enabled: true}\n",
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {readyServer}, reqRouteSchema: {routesServed}},
			want:     want{resources: []string{"usage"}, phase: PhaseReady, env: "prod", active: 1, ready: 1, valid: true, conditions: good("GatewayNotConfigured")},
		},
		"GatewayAPIMissing": {
			reason:   "Exposure needs the Gateway API CRDs.",
			spec:     "  projectRef: vision\n" + s3Storage + "  gateway: {enabled: true}\n",
			gateway:  true,
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {readyServer}},
			want:     want{resources: []string{"usage"}, phase: PhaseReady, env: "prod", active: 1, ready: 1, valid: true, conditions: good("GatewayAPIMissing")},
		},
		"RoutesComposed": {
			reason:   "Each server gets an HTTPRoute and a GRPCRoute; no endpoint before a route is accepted.",
			spec:     "  projectRef: vision\n" + s3Storage + "  gateway: {enabled: true}\n",
			gateway:  true,
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {readyServer, pendingServer}, reqRouteSchema: {routesServed}},
			want: want{phase: PhaseReady, env: "prod", active: 2, ready: 1, valid: true, conditions: good("RoutesNotAccepted"),
				resources: []string{"usage", "grpcroute-ranker", "grpcroute-yolo", "httproute-ranker", "httproute-yolo"}},
		},
		"RoutesAccepted": {
			reason:   "The endpoint is set once the gateway accepts a route.",
			spec:     "  projectRef: vision\n" + s3Storage + "  gateway: {enabled: true}\n",
			gateway:  true,
			observed: map[string]string{"httproute-yolo": `{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: detector-yolo-http}, status: {parents: [{conditions: [{type: Accepted, status: "True"}]}]}}`},
			required: map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {readyServer}, reqRouteSchema: {routesServed}},
			want: want{phase: PhaseReady, env: "prod", active: 1, ready: 1, valid: true, endpoint: "https://models.example.com/detector/", conditions: good("RoutesAccepted"),
				resources: []string{"usage", "grpcroute-yolo", "httproute-yolo"}},
		},
		"RoutesKeptWhileProjectNotReady": {
			reason:   "Routes that exist are not dropped because the project is briefly not Ready.",
			spec:     "  projectRef: vision\n" + s3Storage + "  gateway: {enabled: true}\n",
			gateway:  true,
			observed: map[string]string{"httproute-yolo": `{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: detector-yolo-http}}`},
			required: map[string][]string{reqProject: {provisioningProject}, reqSecret: {s3Secret}, reqServers: {readyServer}, reqRouteSchema: {routesServed}},
			want: want{phase: PhasePending, env: "prod", active: 1, ready: 1, endpoint: "https://models.example.com/detector/",
				conditions: map[string]string{ConditionProjectValid: "ProjectNotReady", ConditionStorageReady: "StorageReady", ConditionExposed: "RoutesAccepted"},
				resources:  []string{"usage", "grpcroute-yolo", "httproute-yolo"}, ttl: true},
		},
		"NoRoutesBeforeProject": {
			reason:   "No route is created before the project is valid.",
			spec:     "  projectRef: vision\n" + s3Storage + "  gateway: {enabled: true}\n",
			gateway:  true,
			required: map[string][]string{reqProject: {provisioningProject}, reqSecret: {s3Secret}, reqServers: {readyServer}, reqRouteSchema: {routesServed}},
			want: want{resources: []string{"usage"}, phase: PhasePending, env: "prod", active: 1, ready: 1,
				conditions: map[string]string{ConditionProjectValid: "ProjectNotReady", ConditionStorageReady: "StorageReady", ConditionExposed: "WaitingForProject"}, ttl: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			meta := tc.meta
			if meta == "" {
				meta = appMeta
			}
			c, err := New(xr(t, meta, tc.spec), composetest.Observed(t, tc.observed))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Compose(platform(t, tc.gateway), composetest.Required(t, tc.required))
			if got.Fatal != nil {
				t.Fatalf("%s\nunexpected Fatal: %v", tc.reason, got.Fatal)
			}
			st := got.Status.(*v1alpha1.KalypsoApplicationStatus)
			wantStatus := &v1alpha1.KalypsoApplicationStatus{Phase: tc.want.phase, Environment: tc.want.env, ActiveModels: tc.want.active,
				ReadyModels: tc.want.ready, GatewayEndpoint: tc.want.endpoint, ObservedGeneration: 2}
			if diff := cmp.Diff(wantStatus, st); diff != "" {
				t.Errorf("%s\nstatus: -want, +got:\n%s", tc.reason, diff)
			}
			if got.Ready != tc.want.valid {
				t.Errorf("%s\ncomposite ready: want %v, got %v", tc.reason, tc.want.valid, got.Ready)
			}
			conds := map[string]string{}
			for _, c := range got.Conditions {
				conds[c.Type] = c.Reason
				if c.Message == "" {
					t.Errorf("%s\ncondition %s has no message", tc.reason, c.Type)
				}
			}
			if diff := cmp.Diff(tc.want.conditions, conds); diff != "" {
				t.Errorf("%s\nconditions: -want, +got:\n%s", tc.reason, diff)
			}
			var names []string
			for n := range got.Desired {
				names = append(names, string(n))
			}
			if diff := cmp.Diff(tc.want.resources, names, cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\ndesired resources: -want, +got:\n%s", tc.reason, diff)
			}
			if (got.TTL == compose.WaitTTL) != tc.want.ttl {
				t.Errorf("%s\nTTL %v, want the short wait TTL: %v", tc.reason, got.TTL, tc.want.ttl)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	c, err := New(xr(t, appMeta, "  projectRef: vision\n"+s3Storage+"  gateway: {enabled: true, hostname: detector.example.com}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compose(platform(t, true), composetest.Required(t, map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {pendingServer}, reqRouteSchema: {routesServed}}))
	labels := compose.Owner{Project: "vision", Environment: "prod", Application: "detector"}.Labels("route", "detector")
	parents := []gatewayv1.ParentReference{{Name: "kalypso-gateway", Namespace: ptr.To(gatewayv1.Namespace("gateway-system"))}}
	backend := func(port int32) gatewayv1.BackendRef {
		return gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "ranker-svc", Port: ptr.To(gatewayv1.PortNumber(port))}}
	}
	wantHTTP := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: "detector-ranker-http", Namespace: "vision-prod", Labels: labels},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents},
			Hostnames:       []gatewayv1.Hostname{"detector.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/detector/ranker/")}}},
				Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{
					Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/")},
				}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: backend(9000)}},
			}},
		},
	}
	if diff := cmp.Diff(wantHTTP, composetest.Decode[gatewayv1.HTTPRoute](t, got.Desired["httproute-ranker"])); diff != "" {
		t.Errorf("HTTPRoute: -want, +got:\n%s", diff)
	}
	wantGRPC := &gatewayv1.GRPCRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "GRPCRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: "detector-ranker-grpc", Namespace: "vision-prod", Labels: labels},
		Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents},
			Hostnames:       []gatewayv1.Hostname{"ranker.detector.detector.example.com"},
			Rules:           []gatewayv1.GRPCRouteRule{{BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: backend(9001)}}}},
		},
	}
	if diff := cmp.Diff(wantGRPC, composetest.Decode[gatewayv1.GRPCRoute](t, got.Desired["grpcroute-ranker"])); diff != "" {
		t.Errorf("GRPCRoute: -want, +got:\n%s", diff)
	}
}

// claimApplicationXR is the claim flavour's composite of claim
// vision-prod/detector.
const claimApplicationXR = `apiVersion: serving.kalypso.io/v1alpha1
kind: XKalypsoApplication
metadata: {name: detector-x7k2p, labels: {crossplane.io/claim-name: detector, crossplane.io/claim-namespace: vision-prod}}
spec: {projectRef: vision, storage: {secretName: models-s3}}`

func TestClaimFlavourLooksUpInClaimNamespace(t *testing.T) {
	c, err := New(composetest.Composite(t, claimApplicationXR), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Requirements(platform(t, false))
	if ns := r[reqSecret].GetNamespace(); ns != "vision-prod" {
		t.Errorf("secret looked up in %q, want the claim namespace vision-prod", ns)
	}
	got := c.Compose(platform(t, false), composetest.Required(t, map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {readyServer}}))
	if st := got.Status.(*v1alpha1.KalypsoApplicationStatus); st.ActiveModels != 1 || st.Environment != "prod" {
		t.Errorf("servers referencing the claim name count and the claim namespace's environment is found: got %+v", st)
	}
}

func TestNoSecretValuesInOutput(t *testing.T) {
	marker := "U0VDUkVULU1BUktFUg==" // base64 of SECRET-MARKER
	secret := strings.ReplaceAll(s3Secret, "eA==", marker)
	c, err := New(xr(t, appMeta, "  projectRef: vision\n"+s3Storage+"  gateway: {enabled: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compose(platform(t, true), composetest.Required(t, map[string][]string{reqProject: {readyProject}, reqSecret: {secret}, reqServers: {readyServer}, reqRouteSchema: {routesServed}}))
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{marker, "SECRET-MARKER"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the result contains the secret value %q", leak)
		}
	}
}

func TestStorageKeys(t *testing.T) {
	cases := map[string]struct {
		reason  string
		storage *v1alpha1.StorageSpec
		want    []string
	}{
		"S3":                 {reason: "The key pair; the session token is optional under its default name.", storage: &v1alpha1.StorageSpec{}, want: []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}},
		"S3SessionToken":     {reason: "A session token key named in storage.keys is required.", storage: &v1alpha1.StorageSpec{Keys: &v1alpha1.StorageKeys{SessionToken: "token"}}, want: []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "token"}},
		"S3SessionTokenName": {reason: "Naming the default explicitly makes it required too.", storage: &v1alpha1.StorageSpec{Provider: "s3", Keys: &v1alpha1.StorageKeys{SessionToken: "AWS_SESSION_TOKEN"}}, want: []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}},
		"GCSIgnoresToken":    {reason: "A session token means nothing to GCS.", storage: &v1alpha1.StorageSpec{Provider: "gcs", Keys: &v1alpha1.StorageKeys{SessionToken: "token"}}, want: []string{"gcs-credentials.json"}},
		"Azure":              {reason: "Account and key.", storage: &v1alpha1.StorageSpec{Provider: "azure"}, want: []string{"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, storageKeys(tc.storage)); diff != "" {
				t.Errorf("%s\nstorageKeys: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
