package badinput_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/test/schemacheck"
)

// Catchers: who refuses a bad input first.
type catcher string

const (
	bySchema    catcher = "API server (schema)"
	byCEL       catcher = "API server (CEL rule)"
	byFatal     catcher = "function (Fatal)"
	byCondition catcher = "function (condition)"
	byGRPC      catcher = "gRPC server"
)

var catchers = []catcher{bySchema, byCEL, byFatal, byCondition, byGRPC}

// Validation targets: the XRDs objects are admitted against.
const (
	tProject     = "KalypsoProject"
	tApplication = "KalypsoApplication"
	tServer      = "KalypsoTritonServer"
	tXRApp       = "XKalypsoApplication"
	tXRServer    = "XKalypsoTritonServer"
)

var xrds = map[string]string{
	tProject:     "../../apis/kalypsoprojects/definition.yaml",
	tApplication: "../../apis/kalypsoapplications/definition.yaml",
	tServer:      "../../apis/kalypsotritonservers/definition.yaml",
	tXRApp:       "../../apis/claims/xkalypsoapplications/definition.yaml",
	tXRServer:    "../../apis/claims/xkalypsotritonservers/definition.yaml",
}

// validators are built once per test binary: the CEL cost estimation of
// the server's schema is slow.
var validators = sync.OnceValues(func() (map[string]*schemacheck.Validator, error) {
	out := map[string]*schemacheck.Validator{}
	for target, path := range xrds {
		v, err := schemacheck.Load(path, false)
		if err != nil {
			return nil, err
		}
		out[target] = v
	}
	return out, nil
})

func validator(t *testing.T, kind string) *schemacheck.Validator {
	t.Helper()
	vs, err := validators()
	if err != nil {
		t.Fatalf("cannot build the CRDs: %v", err)
	}
	v, ok := vs[kind]
	if !ok {
		t.Fatalf("no XRD for kind %q", kind)
	}
	return v
}

func parse(t *testing.T, text string) map[string]any {
	t.Helper()
	o, err := schemacheck.Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return o
}

// ---- objects ---------------------------------------------------------------

const group = "serving.kalypso.io/v1alpha1"

// projectXR is the project vision with spec (flow style, without braces).
func projectXR(spec string) string {
	return projectNamed("vision", spec)
}

func projectNamed(name, spec string) string {
	return "apiVersion: " + group + "\nkind: KalypsoProject\nmetadata: {name: " + name + ", uid: uid-vision}\nspec: {" + spec + "}\n"
}

// envs is a project spec with the given environments (flow style).
func envs(e string) string { return "environments: {" + e + "}" }

// applicationXR is an application in namespace ns with spec.
func applicationXR(name, ns, spec string) string {
	return "apiVersion: " + group + "\nkind: KalypsoApplication\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: {" + spec + "}\n"
}

// detectorSpec is the spec of a valid application in vision-prod.
const detectorSpec = "projectRef: vision, storage: {secretName: models-s3, region: eu-west-1}"

// serverXR is a server in vision-prod named name whose spec adds extra
// (flow style, without braces) to applicationRef: detector and an S3 URI.
func serverXR(name, extra string) string {
	spec := "applicationRef: detector, storageUri: s3://vision-models/yolo"
	if extra != "" {
		spec += ", " + extra
	}
	return serverIn(name, "vision-prod", spec)
}

func serverIn(name, ns, spec string) string {
	return "apiVersion: " + group + "\nkind: KalypsoTritonServer\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: {" + spec + "}\n"
}

// withEnvironments returns a project with n environments env-i → ns-i.
func withEnvironments(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "env-%05d: {namespace: ns-%05d}", i, i)
	}
	return projectXR(envs(b.String()))
}

// The cluster the function rows run against: what exists, by name. Rows
// add to it and drop from it.
var cluster = map[string]string{
	"project-vision": `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: vision, uid: uid-vision}
spec: {environments: {dev: {namespace: vision-dev}, prod: {namespace: vision-prod}}}
status: {phase: Ready, conditions: [{type: Ready, status: "True", reason: Available}]}
`,
	"application-detector": `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoApplication
metadata: {name: detector, namespace: vision-prod}
spec: {projectRef: vision, storage: {provider: s3, secretName: models-s3, region: eu-west-1}}
status: {phase: Ready, environment: prod, conditions: [{type: Ready, status: "True", reason: Available}]}
`,
	"secret-models-s3": `
apiVersion: v1
kind: Secret
metadata: {name: models-s3, namespace: vision-prod}
data: {AWS_ACCESS_KEY_ID: QUtJQQ==, AWS_SECRET_ACCESS_KEY: c2VjcmV0}
`,
	"secret-api-key": `
apiVersion: v1
kind: Secret
metadata: {name: kalypso-triton-api-key, namespace: vision-prod}
data: {api-key: a2V5}
`,
	"crd-servicemonitors": `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
`,
	"crd-httproutes": `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
`,
}

// environmentConfig is the kalypso-defaults EnvironmentConfig with data.
func environmentConfig(data string) string {
	return "apiVersion: apiextensions.crossplane.io/v1beta1\nkind: EnvironmentConfig\nmetadata: {name: kalypso-defaults}\ndata: " + data + "\n"
}

// pool is the cluster of a row: the shared objects minus drop, plus add.
func pool(t *testing.T, drop, add []string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, k := range slices.Sorted(maps.Keys(cluster)) {
		if !slices.Contains(drop, k) {
			out = append(out, parse(t, cluster[k]))
		}
	}
	for _, y := range add {
		out = append(out, parse(t, y))
	}
	return out
}

// ---- calling the function ----------------------------------------------------

const inputHead = "apiVersion: kalypso.fn.crossplane.io/v1beta1\nkind: Input\n"

func request(t *testing.T, xr map[string]any, input string, required map[string]*fnv1.Resources) *fnv1.RunFunctionRequest {
	t.Helper()
	x, err := structpb.NewStruct(xr)
	if err != nil {
		t.Fatal(err)
	}
	in, err := structpb.NewStruct(parse(t, inputHead+input))
	if err != nil {
		t.Fatal(err)
	}
	return &fnv1.RunFunctionRequest{
		Meta:              &fnv1.RequestMeta{Tag: "badinput"},
		Observed:          &fnv1.State{Composite: &fnv1.Resource{Resource: x}},
		Desired:           &fnv1.State{},
		Input:             in,
		RequiredResources: required,
	}
}

// converge calls the function as Crossplane does: first without required
// resources, then with every requirement answered from the pool, until the
// requirements stop changing. A Fatal ends it at once.
func converge(t *testing.T, xr map[string]any, input string, objs []map[string]any) *fnv1.RunFunctionResponse {
	t.Helper()
	f := fn.New(logging.NewNopLogger())
	var required map[string]*fnv1.Resources
	var last *fnv1.Requirements
	for range 8 {
		rsp, err := f.RunFunction(context.Background(), request(t, xr, input, required))
		if err != nil {
			t.Fatalf("RunFunction returned an error; it must report through the response: %v", err)
		}
		if fatalOf(rsp) != nil {
			return rsp
		}
		if required != nil && proto.Equal(rsp.GetRequirements(), last) {
			return rsp
		}
		last = rsp.GetRequirements()
		required = resolve(t, last.GetResources(), objs)
	}
	t.Fatal("the requirements did not settle")
	return nil
}

func fatalOf(rsp *fnv1.RunFunctionResponse) *fnv1.Result {
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			return r
		}
	}
	return nil
}

// resolve answers requirements from the objects that exist, as Crossplane
// does: by apiVersion, kind, namespace and name or labels.
func resolve(t *testing.T, sels map[string]*fnv1.ResourceSelector, objs []map[string]any) map[string]*fnv1.Resources {
	t.Helper()
	out := make(map[string]*fnv1.Resources, len(sels))
	for name, sel := range sels {
		rs := &fnv1.Resources{}
		for _, o := range objs {
			if matches(sel, o) {
				s, err := structpb.NewStruct(o)
				if err != nil {
					t.Fatal(err)
				}
				rs.Items = append(rs.Items, &fnv1.Resource{Resource: s})
			}
		}
		out[name] = rs
	}
	return out
}

func matches(sel *fnv1.ResourceSelector, o map[string]any) bool {
	if o["apiVersion"] != sel.GetApiVersion() || o["kind"] != sel.GetKind() {
		return false
	}
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if sel.Namespace != nil && ns != sel.GetNamespace() {
		return false
	}
	switch m := sel.GetMatch().(type) {
	case *fnv1.ResourceSelector_MatchName:
		return md["name"] == m.MatchName
	case *fnv1.ResourceSelector_MatchLabels:
		labels, _ := md["labels"].(map[string]any)
		for k, v := range m.MatchLabels.GetLabels() {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	return false
}

// conditionOf returns the response's condition of a type, or nil.
func conditionOf(rsp *fnv1.RunFunctionResponse, typ string) *fnv1.Condition {
	for _, c := range rsp.GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}
