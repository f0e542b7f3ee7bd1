package fn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

// fuzzKinds are the composite kinds the fuzzer picks from.
var fuzzKinds = []struct{ kind, namespace string }{
	{"KalypsoProject", ""},
	{"KalypsoApplication", "vision-prod"},
	{"KalypsoTritonServer", "vision-prod"},
	{"XKalypsoApplication", ""},
	{"XKalypsoTritonServer", ""},
}

// seedSpecs returns the specs of every example composite, as JSON.
func seedSpecs(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join("..", "examples"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" || strings.Contains(path, string(filepath.Separator)+"stages"+string(filepath.Separator)) {
			return err
		}
		b, err := os.ReadFile(path) //nolint:gosec // test fixtures.
		if err != nil {
			return err
		}
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			var o struct {
				APIVersion string         `json:"apiVersion"`
				Spec       map[string]any `json:"spec"`
			}
			if yaml.Unmarshal(doc, &o) != nil || !strings.HasPrefix(o.APIVersion, "serving.kalypso.io/") {
				continue
			}
			j, err := json.Marshal(o.Spec)
			if err != nil {
				return err
			}
			out = append(out, string(j))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzRunFunction feeds arbitrary specs, observed states and inputs to every
// kind. The function must never panic, and must answer either with a Fatal
// or with composed objects that decode strictly into their types.
func FuzzRunFunction(f *testing.F) {
	for _, spec := range seedSpecs(f) {
		for i := range fuzzKinds {
			f.Add(uint8(i), spec, `{}`, `{}`)
		}
	}
	f.Add(uint8(0), `{"environments":{"dev":{"namespace":"d","resourceQuota":{"limits":{"nvidia.com/gpu":"1"}}}}}`,
		`{"namespace-dev":{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"d"},"status":{"phase":"Active"}}}`, `{"tenancy":{"podSecurityLevel":"baseline"}}`)
	f.Add(uint8(2), `{"applicationRef":"a","storageUri":"s3://b/p","autoscaling":{"enabled":true,"maxReplicas":3}}`,
		`{"deployment":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","managedFields":[{"manager":"m","fieldsV1":{"f:spec":{"f:replicas":{}}}}]},"spec":{"replicas":"x"}}}`, `{}`)
	f.Fuzz(func(t *testing.T, kindIndex uint8, spec, observed, input string) {
		k := fuzzKinds[int(kindIndex)%len(fuzzKinds)]
		specValue := map[string]any{}
		observedValue := map[string]map[string]any{}
		inputSpec := map[string]any{}
		if json.Unmarshal([]byte(spec), &specValue) != nil || json.Unmarshal([]byte(observed), &observedValue) != nil || json.Unmarshal([]byte(input), &inputSpec) != nil {
			t.Skip("not JSON objects")
		}
		meta := map[string]any{"name": "fuzz"}
		if k.namespace != "" {
			meta["namespace"] = k.namespace
		} else if strings.HasPrefix(k.kind, "X") {
			meta["labels"] = map[string]any{"crossplane.io/claim-name": "fuzz", "crossplane.io/claim-namespace": "vision-prod"}
		}
		xr, err := structpb.NewStruct(map[string]any{"apiVersion": "serving.kalypso.io/v1alpha1", "kind": k.kind, "metadata": meta, "spec": specValue})
		if err != nil {
			t.Skip("not representable")
		}
		in, err := structpb.NewStruct(map[string]any{"apiVersion": "kalypso.fn.crossplane.io/v1beta1", "kind": "Input", "spec": inputSpec})
		if err != nil {
			t.Skip("not representable")
		}
		req := &fnv1.RunFunctionRequest{Input: in, Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: xr}, Resources: map[string]*fnv1.Resource{}}}
		for name, o := range observedValue {
			s, err := structpb.NewStruct(o)
			if err != nil {
				t.Skip("not representable")
			}
			req.Observed.Resources[name] = &fnv1.Resource{Resource: s}
		}
		f := fn.New(logging.NewNopLogger())
		rsp, err := f.RunFunction(context.Background(), req)
		if err != nil {
			t.Fatalf("RunFunction returned an error: %v", err)
		}
		// Answer every requirement (nothing found) and call again, as
		// Crossplane does.
		req.RequiredResources = map[string]*fnv1.Resources{}
		for name := range rsp.GetRequirements().GetResources() {
			req.RequiredResources[name] = &fnv1.Resources{}
		}
		if rsp, err = f.RunFunction(context.Background(), req); err != nil {
			t.Fatalf("RunFunction returned an error: %v", err)
		}
		checkResponse(t, rsp)
	})
}

// checkResponse: every kind is in the kind table; a Fatal names what is
// wrong; otherwise every composed
// object decodes strictly into its registered type.
func checkResponse(t *testing.T, rsp *fnv1.RunFunctionResponse) {
	t.Helper()
	if err := composetest.KindsOutsideTable(rsp); err != nil {
		t.Fatal(err)
	}
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			if r.GetMessage() == "" {
				t.Fatal("a Fatal without a message")
			}
			return
		}
	}
	for name, r := range rsp.GetDesired().GetResources() {
		decodeStrictly(t, name, r.GetResource())
	}
}

func decodeStrictly(t *testing.T, name string, s *structpb.Struct) {
	t.Helper()
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(b, &tm); err != nil {
		t.Fatal(err)
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		t.Fatalf("%s: bad apiVersion %q", name, tm.APIVersion)
	}
	obj, err := composed.Scheme.New(gv.WithKind(tm.Kind))
	if err != nil {
		t.Fatalf("%s: %s is not a known type: %v", name, tm.APIVersion+"/"+tm.Kind, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		t.Fatalf("%s does not decode strictly into %T: %v\n%s", name, obj, err, b)
	}
}
