package badinput_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
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

var xrds = map[string]schemacheck.XRD{
	tProject:     {Path: "../../apis/kalypsoprojects/definition.yaml"},
	tApplication: {Path: "../../apis/kalypsoapplications/definition.yaml"},
	tServer:      {Path: "../../apis/kalypsotritonservers/definition.yaml"},
	tXRApp:       {Path: "../../apis/claims/xkalypsoapplications/definition.yaml"},
	tXRServer:    {Path: "../../apis/claims/xkalypsotritonservers/definition.yaml"},
}

// validators admit objects as the API server does, built once per test
// binary.
var validators = schemacheck.NewSet(xrds)

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

// crdScaledObjects is KEDA's ScaledObject CRD, for rows that have KEDA.
const crdScaledObjects = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scaledobjects.keda.sh}
spec: {group: keda.sh, names: {kind: ScaledObject, plural: scaledobjects}, scope: Namespaced, versions: [{name: v1alpha1, served: true, storage: true}]}
`

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
			out = append(out, schemacheck.MustParse(t, cluster[k]))
		}
	}
	for _, y := range add {
		out = append(out, schemacheck.MustParse(t, y))
	}
	return out
}

// ---- calling the function ----------------------------------------------------

const inputHead = "apiVersion: kalypso.fn.crossplane.io/v1beta1\nkind: Input\n"

// converge calls the function as Crossplane does (composetest.Converge):
// first without required resources, then with every requirement answered
// from the pool, until the requirements stop changing. A Fatal ends it at
// once.
func converge(t *testing.T, xr map[string]any, input string, objs []map[string]any) *fnv1.RunFunctionResponse {
	t.Helper()
	in, err := structpb.NewStruct(schemacheck.MustParse(t, inputHead+input))
	if err != nil {
		t.Fatal(err)
	}
	_, rsp, err := composetest.Converge(fn.New(logging.NewNopLogger()), xr, in, nil, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rsp
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
