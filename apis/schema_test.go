package apis_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kalypsoserving/function-kalypso/test/schemacheck"
)

// This file checks the generated XRDs the way a cluster would, with
// test/schemacheck: each XRD is turned into the CRD Crossplane installs for
// it, that CRD goes through the API server's CRD validation (structural
// schema, defaults, CEL compilation and cost budget), and objects go through
// the API server's create and update path for custom resources (prune,
// default, OpenAPI validation, CEL).

const apiVersion = "serving.kalypso.io/v1alpha1"

// Targets an object can be checked against. The claim flavour's claims share
// group, version and kind with the v2 XRs, so they get names of their own.
const (
	project          = "KalypsoProject"
	application      = "KalypsoApplication"
	server           = "KalypsoTritonServer"
	claimApplication = "claim KalypsoApplication"
	claimServer      = "claim KalypsoTritonServer"
	xrApplication    = "XKalypsoApplication"
	xrServer         = "XKalypsoTritonServer"
)

// customResources are the targets' validators, by the XRD each comes from
// and whether it is that XRD's claim.
var customResources = schemacheck.NewSet(map[string]schemacheck.XRD{
	project:          {Path: "kalypsoprojects/definition.yaml"},
	application:      {Path: "kalypsoapplications/definition.yaml"},
	server:           {Path: "kalypsotritonservers/definition.yaml"},
	xrApplication:    {Path: "claims/xkalypsoapplications/definition.yaml"},
	xrServer:         {Path: "claims/xkalypsotritonservers/definition.yaml"},
	claimApplication: {Path: "claims/xkalypsoapplications/definition.yaml", Claim: true},
	claimServer:      {Path: "claims/xkalypsotritonservers/definition.yaml", Claim: true},
})

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// admit parses obj (and old, if not empty) and admits it as target.
func admit(t *testing.T, target, obj, old string) (map[string]any, error) {
	t.Helper()
	var o map[string]any
	if old != "" {
		o = schemacheck.MustParse(t, old)
	}
	return customResources.For(t, target).Admit(t.Context(), schemacheck.MustParse(t, obj), o)
}

// assertOutcome checks that err is nil when want is empty, else that err
// holds want.
func assertOutcome(t *testing.T, reason string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s\nwant accepted, got rejected: %v", reason, err)
	case want != "" && err == nil:
		t.Errorf("%s\nwant rejected with %q, got accepted", reason, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s\nwant rejected with %q, got: %v", reason, want, err)
	}
}

func TestCRDs(t *testing.T) {
	type want struct {
		Kind       string
		Namespaced bool
	}
	cases := map[string]struct {
		reason string
		target string
		want   want
	}{
		"Project":          {reason: "The v2 KalypsoProject XRD makes a valid cluster-scoped CRD.", target: project, want: want{Kind: "KalypsoProject"}},
		"Application":      {reason: "The v2 KalypsoApplication XRD makes a valid namespaced CRD.", target: application, want: want{Kind: "KalypsoApplication", Namespaced: true}},
		"Server":           {reason: "The v2 KalypsoTritonServer XRD makes a valid namespaced CRD.", target: server, want: want{Kind: "KalypsoTritonServer", Namespaced: true}},
		"XRApplication":    {reason: "The claim flavour's XKalypsoApplication XR is a valid cluster-scoped CRD.", target: xrApplication, want: want{Kind: "XKalypsoApplication"}},
		"XRServer":         {reason: "The claim flavour's XKalypsoTritonServer XR is a valid cluster-scoped CRD.", target: xrServer, want: want{Kind: "XKalypsoTritonServer"}},
		"ClaimApplication": {reason: "The claim flavour's KalypsoApplication claim is a valid namespaced CRD.", target: claimApplication, want: want{Kind: "KalypsoApplication", Namespaced: true}},
		"ClaimServer":      {reason: "The claim flavour's KalypsoTritonServer claim is a valid namespaced CRD.", target: claimServer, want: want{Kind: "KalypsoTritonServer", Namespaced: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cr := customResources.For(t, tc.target)
			// Structural schema, pruned defaults, CEL compilation and
			// estimated cost within the per-rule and per-CRD budgets.
			if errs := cr.CRDErrors(); len(errs) > 0 {
				t.Errorf("%s\nthe API server would refuse the CRD:\n%v", tc.reason, errs.ToAggregate())
			}
			got := want{Kind: cr.GVK().Kind, Namespaced: cr.Namespaced()}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// Objects of ARCHITECTURE.md §2 "What users write", the target experience.
const (
	visionProject = `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: vision}
spec:
  displayName: Vision models
  owner: team-vision
  access: {admins: [{kind: Group, name: vision-leads}], editors: [{kind: Group, name: vision-devs}]}
  environments:
    dev:  {namespace: vision-dev,  resourceQuota: {limits: {cpu: "16", memory: 64Gi, nvidia.com/gpu: "1"}}}
    prod: {namespace: vision-prod, resourceQuota: {limits: {cpu: "64", memory: 256Gi, nvidia.com/gpu: "8"}}}
`
	detectorApplication = `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoApplication
metadata: {name: detector, namespace: vision-dev}
spec:
  projectRef: vision
  storage: {secretName: models-s3, region: us-east-1, endpoint: http://minio.minio.svc:9000}
`
	yoloServer = `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoTritonServer
metadata: {name: yolo, namespace: vision-dev}
spec:
  applicationRef: detector
  storageUri: s3://models/yolo
  gpus: 1
  tritonConfig: {backendType: onnxruntime}
  observability: {enabled: true, tracing: {enabled: true, samplingRate: "0.1"}, metrics: {enableServiceMonitor: true}}
`
)

// withProject is a project whose spec.environments is envs (flow style).
func withProject(envs string) string {
	return "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoProject\nmetadata: {name: vision}\nspec:\n  environments: " + envs + "\n"
}

// projectWithEnvironments is a project with n environments, each in its own
// namespace.
func projectWithEnvironments(n int) string {
	envs := make([]string, n)
	for i := range n {
		envs[i] = fmt.Sprintf("env-%02d: {namespace: ns-%02d}", i, i)
	}
	return withProject("{" + strings.Join(envs, ", ") + "}")
}

// withServer is a server in vision-dev named name whose spec adds extra
// (flow style, without braces) to the required fields.
func withServer(name, extra string) string {
	spec := "applicationRef: detector, storageUri: s3://models/yolo"
	if extra != "" {
		spec += ", " + extra
	}
	return "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoTritonServer\nmetadata: {name: " + name + ", namespace: vision-dev}\nspec: {" + spec + "}\n"
}

// withApplication is an application in vision-dev with spec (flow style,
// without braces).
func withApplication(spec string) string {
	return "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoApplication\nmetadata: {name: detector, namespace: vision-dev}\nspec: {" + spec + "}\n"
}

// asKind is text with its kind replaced, to send a v2 object to the claim
// flavour's XR.
func asKind(text, kind string) string {
	return strings.Replace(text, "kind: KalypsoApplication", "kind: "+kind, 1)
}

func TestAdmission(t *testing.T) {
	cases := map[string]struct {
		reason string
		target string
		obj    string
		// old makes the request an update of old.
		old string
		// want is a substring of the rejection; empty means accepted.
		want string
	}{
		// KalypsoProject.
		"ProjectArchitectureExample": {
			reason: "The platform team's project of the target experience is accepted.",
			target: project, obj: visionProject,
		},
		"ProjectGPUQuota": {
			reason: "An extended resource such as nvidia.com/gpu is a valid quota key with a quantity value.",
			target: project, obj: withProject(`{dev: {namespace: vision-dev, resourceQuota: {limits: {nvidia.com/gpu: "1"}}}}`),
		},
		"ProjectQuotaNotAQuantity": {
			reason: "A quota value must be a Kubernetes quantity.",
			target: project, obj: withProject(`{dev: {namespace: vision-dev, resourceQuota: {limits: {nvidia.com/gpu: "lots"}}}}`),
			want: `spec.environments.dev.resourceQuota.limits.nvidia.com/gpu: Invalid value: "lots"`,
		},
		"ProjectNamespaceNotDNSLabel": {
			reason: "An environment's namespace must be a DNS-1123 label.",
			target: project, obj: withProject(`{dev: {namespace: Bad_NS}}`),
			want: `spec.environments.dev.namespace: Invalid value: "Bad_NS": spec.environments.dev.namespace in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'`,
		},
		"ProjectNamespaceMissing": {
			reason: "An environment must name its namespace.",
			target: project, obj: withProject(`{dev: {description: no namespace}}`),
			want: "spec.environments.dev.namespace: Required value",
		},
		"ProjectEnvironmentNameNotDNSLabel": {
			reason: "Environment names become label values and object names: they must be DNS-1123 labels.",
			target: project, obj: withProject(`{Dev_1: {namespace: vision-dev}}`),
			want: "spec.environments: Invalid value: environment names must be DNS-1123 labels",
		},
		"ProjectSharedNamespace": {
			reason: "Two environments in one namespace would fight over its quota and limit range.",
			target: project, obj: withProject(`{dev: {namespace: vision}, prod: {namespace: vision}}`),
			want: "spec: Invalid value: two environments of a project cannot share a namespace",
		},
		"ProjectNamespaceChanged": {
			reason: "Moving an environment to another namespace would delete the old one with everything in it.",
			target: project,
			old:    withProject(`{dev: {namespace: vision-dev}}`),
			obj:    withProject(`{dev: {namespace: vision-dev-2}}`),
			want:   `spec.environments[dev].namespace: Invalid value: "vision-dev-2": an environment's namespace is immutable`,
		},
		"ProjectEnvironmentAdded": {
			reason: "The immutability rule only binds existing environments: a new one may be added on update.",
			target: project,
			old:    withProject(`{dev: {namespace: vision-dev}}`),
			obj:    withProject(`{dev: {namespace: vision-dev}, prod: {namespace: vision-prod}}`),
		},
		"Project64Environments": {
			reason: "64 environments are allowed, and the pairwise shared-namespace rule stays within the runtime CEL budget.",
			target: project, obj: projectWithEnvironments(64),
		},
		"Project65Environments": {
			reason: "maxProperties bounds the environments (and so the cost of the pairwise rule) at 64.",
			target: project, obj: projectWithEnvironments(65),
			want: "spec.environments: Too many: 65: must have at most 64 items",
		},
		"ProjectWithoutSpec": {
			reason: "spec is required at the root.",
			target: project, obj: "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoProject\nmetadata: {name: vision}\n",
			want: "spec: Required value",
		},

		// KalypsoApplication.
		"ApplicationArchitectureExample": {
			reason: "The application team's application of the target experience is accepted.",
			target: application, obj: detectorApplication,
		},
		"ApplicationKeylessStorage": {
			reason: "A service account alone (workload identity) is enough to reach storage.",
			target: application, obj: withApplication("projectRef: vision, storage: {provider: gcs, serviceAccountName: models-reader}"),
		},
		"ApplicationStorageWithoutCredentials": {
			reason: "Storage needs a credentials Secret or a service account.",
			target: application, obj: withApplication("projectRef: vision, storage: {region: us-east-1}"),
			want: "spec.storage: Invalid value: set storage.secretName (credentials Secret) or storage.serviceAccountName",
		},
		"ApplicationProjectRefNotAName": {
			reason: "projectRef names a cluster-scoped object: it must be a DNS-1123 subdomain.",
			target: application, obj: withApplication("projectRef: Bad_Ref"),
			want: `spec.projectRef: Invalid value: "Bad_Ref": spec.projectRef in body should match`,
		},
		"ApplicationWithoutProjectRef": {
			reason: "projectRef is required.",
			target: application, obj: withApplication("description: orphan"),
			want: "spec.projectRef: Required value",
		},
		"ClaimApplicationArchitectureExample": {
			reason: "The claim flavour's claim takes the same application.",
			target: claimApplication, obj: detectorApplication,
		},
		"XRApplicationArchitectureExample": {
			reason: "The claim flavour's cluster-scoped XR takes the same spec.",
			target: xrApplication, obj: asKind(detectorApplication, "XKalypsoApplication"),
		},
		"ClaimApplicationStorageWithoutCredentials": {
			reason: "The claim flavour keeps the storage rule.",
			target: claimApplication, obj: withApplication("projectRef: vision, storage: {region: us-east-1}"),
			want: "set storage.secretName (credentials Secret) or storage.serviceAccountName",
		},

		// KalypsoTritonServer.
		"ServerArchitectureExample": {
			reason: "The application team's server of the target experience is accepted.",
			target: server, obj: yoloServer,
		},
		"ServerHTTPPortOutOfRange": {
			reason: "A port is at most 65535.",
			target: server, obj: withServer("yolo", "networking: {httpPort: 70000}"),
			want: "spec.networking.httpPort: Invalid value: 70000: spec.networking.httpPort in body should be less than or equal to 65535",
		},
		"ServerHTTPPortIsGRPCPort": {
			reason: "Triton cannot listen for HTTP and gRPC on one port.",
			target: server, obj: withServer("yolo", "networking: {httpPort: 9000, grpcPort: 9000}"),
			want: "spec.networking: Invalid value: httpPort, grpcPort and metricsPort must differ",
		},
		"ServerHTTPPortIsDefaultGRPCPort": {
			reason: "Defaults apply before CEL: an httpPort equal to the default grpcPort collides too.",
			target: server, obj: withServer("yolo", "networking: {httpPort: 8001}"),
			want: "httpPort, grpcPort and metricsPort must differ",
		},
		"ServerNegativeReplicas": {
			reason: "Replicas cannot be negative.",
			target: server, obj: withServer("yolo", "replicas: -1"),
			want: "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
		},
		"ServerHTTPStorageURI": {
			reason: "Triton reads model repositories from s3://, gs:// or as:// only.",
			target: server, obj: withServer("yolo", "storageUri: http://x"),
			want: `spec.storageUri: Invalid value: "http://x": spec.storageUri in body should match '^(s3|gs|as)://[^/\s][^\s]*$'`,
		},
		"ServerWithoutStorageURI": {
			reason: "storageUri is required.",
			target: server, obj: "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoTritonServer\nmetadata: {name: yolo, namespace: vision-dev}\nspec: {applicationRef: detector}\n",
			want: "spec.storageUri: Required value",
		},
		"ServerName59Characters": {
			reason: "A 59 character name leaves room for the -svc suffix of a 63 character Service name.",
			target: server, obj: withServer(strings.Repeat("a", 59), ""),
		},
		"ServerName60Characters": {
			reason: "<name>-svc must fit a 63 character Service name.",
			target: server, obj: withServer(strings.Repeat("a", 60), ""),
			want: "Invalid value: a server name must start with a letter, hold only lower case letters, digits and '-', and be at most 59 characters",
		},
		"ServerNameStartsWithDigit": {
			reason: "A Service name is a DNS-1035 label: it starts with a letter.",
			target: server, obj: withServer("1yolo", ""),
			want: "a server name must start with a letter",
		},
		"ServerDeprecatedPythonBackend": {
			reason: "The original operator's python_backend spelling is still accepted on its own.",
			target: server, obj: withServer("yolo", "tritonConfig: {backendType: python, python_backend: {shmDefaultByteSize: 1048576}}"),
		},
		"ServerPythonBackend": {
			reason: "pythonBackend is the current spelling.",
			target: server, obj: withServer("yolo", "tritonConfig: {backendType: python, pythonBackend: {shmDefaultByteSize: 1048576}}"),
		},
		"ServerBothPythonBackends": {
			reason: "Setting both spellings would leave it unclear which one wins.",
			target: server, obj: withServer("yolo", "tritonConfig: {pythonBackend: {}, python_backend: {}}"),
			want: "spec: Invalid value: set tritonConfig.pythonBackend only; python_backend is its deprecated alias",
		},
		"ServerAutoscalingMinAboveMax": {
			reason: "An HPA with minReplicas above maxReplicas is invalid.",
			target: server, obj: withServer("yolo", "autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 2}"),
			want: "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
		},
		"ServerUnknownField": {
			reason: "An unknown field is pruned by the API server; kubectl's strict field validation refuses it.",
			target: server, obj: withServer("yolo", "foo: bar"),
			want: `unknown field "spec.foo"`,
		},
		"ClaimServerArchitectureExample": {
			reason: "The claim flavour's claim takes the same server.",
			target: claimServer, obj: yoloServer,
		},
		"XRServerArchitectureExample": {
			reason: "The claim flavour's cluster-scoped XR takes the same spec.",
			target: xrServer, obj: strings.Replace(yoloServer, "kind: KalypsoTritonServer", "kind: XKalypsoTritonServer", 1),
		},
		"ClaimServerNameStartsWithDigit": {
			reason: "The claim flavour leaves the name rule to the function: its XR is named <claim>-<suffix>.",
			target: claimServer, obj: withServer("1yolo", ""),
		},
		"ClaimServerBothPythonBackends": {
			reason: "The claim flavour keeps the spec rules.",
			target: claimServer, obj: withServer("yolo", "tritonConfig: {pythonBackend: {}, python_backend: {}}"),
			want: "set tritonConfig.pythonBackend only; python_backend is its deprecated alias",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := admit(t, tc.target, tc.obj, tc.old)
			assertOutcome(t, tc.reason, err, tc.want)
		})
	}
}

func TestDefaults(t *testing.T) {
	cases := map[string]struct {
		reason string
		target string
		obj    string
		path   []string
		want   any
	}{
		"ServerReplicas": {
			reason: "A server runs one replica unless told otherwise.",
			target: server, obj: withServer("yolo", ""),
			path: []string{"spec", "replicas"}, want: int64(1),
		},
		"ServerPorts": {
			reason: "Triton's ports default to 8000, 8001 and 8002.",
			target: server, obj: withServer("yolo", "networking: {}"),
			path: []string{"spec", "networking"},
			want: map[string]any{"httpPort": int64(8000), "grpcPort": int64(8001), "metricsPort": int64(8002)},
		},
		"ServerDeprecatedPythonBackendShm": {
			reason: "The deprecated python_backend gets the same shared memory default as pythonBackend.",
			target: server, obj: withServer("yolo", "tritonConfig: {python_backend: {}}"),
			path: []string{"spec", "tritonConfig", "python_backend"},
			want: map[string]any{"shmDefaultByteSize": int64(1048576)},
		},
		"ServerObservability": {
			reason: "Logging, tracing and metrics default as in the original operator.",
			target: server, obj: withServer("yolo", "observability: {enabled: true, logging: {}, tracing: {}, profiling: {profiles: {}}, metrics: {}}"),
			path: []string{"spec", "observability"},
			want: map[string]any{
				"enabled":   true,
				"logging":   map[string]any{"enabled": true, "level": "INFO"},
				"tracing":   map[string]any{"samplingRate": "0.1"},
				"profiling": map[string]any{"profiles": map[string]any{"cpu": true, "memory": true}},
				"metrics":   map[string]any{"enabled": true, "interval": "15s"},
			},
		},
		"ServerFalseStaysFalse": {
			reason: "Unlike the original operator, an explicit false survives defaulting.",
			target: server, obj: withServer("yolo", "observability: {logging: {enabled: false}}"),
			path: []string{"spec", "observability", "logging", "enabled"}, want: false,
		},
		"ApplicationStorageProvider": {
			reason: "Storage is S3 unless told otherwise.",
			target: application, obj: withApplication("projectRef: vision, storage: {secretName: models-s3}"),
			path: []string{"spec", "storage"},
			want: map[string]any{"provider": "s3", "secretName": "models-s3"},
		},
		"ApplicationSourceBranch": {
			reason: "The source branch defaults to main.",
			target: application, obj: withApplication("projectRef: vision, source: {gitRepository: https://github.com/org/repo}"),
			path: []string{"spec", "source", "branch"}, want: "main",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := admit(t, tc.target, tc.obj, "")
			if err != nil {
				t.Fatalf("%s\nwant accepted, got rejected: %v", tc.reason, err)
			}
			v, _, err := unstructured.NestedFieldNoCopy(got, tc.path...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, v); diff != "" {
				t.Errorf("%s\n%s: -want, +got:\n%s", tc.reason, strings.Join(tc.path, "."), diff)
			}
		})
	}
}

// TestOriginalSamples checks that the original operator's samples move over
// with only their apiVersion changed (and the project's namespace dropped).
func TestOriginalSamples(t *testing.T) {
	cases := map[string]struct {
		reason string
		target string
		file   string
		// kind replaces the sample's kind, for the claim flavour's XRs.
		kind string
	}{
		"Project": {
			reason: "sample-project, with its three environments, GPU quotas and model registry.",
			target: project, file: "original-samples/project.yaml",
		},
		"Application": {
			reason: "recommendation-application, with its source and MinIO storage.",
			target: application, file: "original-samples/application.yaml",
		},
		"Server": {
			reason: "add-sub-server, with python_backend and every observability switch on.",
			target: server, file: "original-samples/tritonserver.yaml",
		},
		"ClaimApplication": {
			reason: "The application as a claim of the claim flavour.",
			target: claimApplication, file: "original-samples/application.yaml",
		},
		"ClaimServer": {
			reason: "The server as a claim of the claim flavour.",
			target: claimServer, file: "original-samples/tritonserver.yaml",
		},
		"XRApplication": {
			reason: "The application's spec on the claim flavour's XR.",
			target: xrApplication, file: "original-samples/application.yaml", kind: "XKalypsoApplication",
		},
		"XRServer": {
			reason: "The server's spec on the claim flavour's XR.",
			target: xrServer, file: "original-samples/tritonserver.yaml", kind: "XKalypsoTritonServer",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj := schemacheck.MustParse(t, testdata(t, tc.file))
			if tc.kind != "" {
				obj["kind"] = tc.kind
			}
			if _, err := customResources.For(t, tc.target).Admit(t.Context(), obj, nil); err != nil {
				t.Errorf("%s\nwant accepted, got rejected: %v", tc.reason, err)
			}
		})
	}
}

// examplesTargets are the targets an example of each kind must satisfy. A
// namespaced kind may be applied as a v2 XR or as a claim of the claim
// flavour, so it must satisfy both.
var examplesTargets = map[string][]string{
	"KalypsoProject":       {project},
	"KalypsoApplication":   {application, claimApplication},
	"KalypsoTritonServer":  {server, claimServer},
	"XKalypsoApplication":  {xrApplication},
	"XKalypsoTritonServer": {xrServer},
}

// TestExamples admits every serving.kalypso.io/v1alpha1 object found in the
// examples directory. Objects of other groups (functions, environment
// configs…) are skipped.
func TestExamples(t *testing.T) {
	found := 0
	root := filepath.Join("..", "examples")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		for i, doc := range documents(t, path) {
			obj := schemacheck.MustParse(t, doc)
			if obj["apiVersion"] != apiVersion {
				continue
			}
			found++
			kind, _ := obj["kind"].(string)
			targets, ok := examplesTargets[kind]
			if !ok {
				t.Errorf("%s document %d: unknown kind %q of %s", path, i, kind, apiVersion)
				continue
			}
			rel, _ := filepath.Rel(root, path)
			inClaims := strings.HasPrefix(rel, "claims"+string(filepath.Separator))
			if inClaims && (kind == "KalypsoApplication" || kind == "KalypsoTritonServer") {
				// Claim-flavour fixtures carry claim fields (spec.resourceRef).
				targets = targets[1:]
			}
			for _, target := range targets {
				t.Run(fmt.Sprintf("%s#%d/%s", rel, i, target), func(t *testing.T) {
					if _, err := customResources.For(t, target).Admit(t.Context(), obj, nil); err != nil {
						t.Errorf("want accepted as %s, got rejected: %v", target, err)
					}
				})
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	// The inline objects of TestAdmission cover the kinds meanwhile.
	t.Logf("admitted %d %s example objects", found, apiVersion)
}

// documents splits a multi-document YAML file, dropping empty documents.
func documents(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs []string
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(bytes.TrimSpace(doc)) > 0 && hasContent(doc) {
			docs = append(docs, string(doc))
		}
	}
}

// hasContent is false for a document of only comments.
func hasContent(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return true
		}
	}
	return false
}
