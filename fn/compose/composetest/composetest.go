// Package composetest helps tests build requests and read responses.
package composetest

import (
	"bytes"
	"encoding/json"
	"testing"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

// Struct converts YAML (or JSON) to a protobuf Struct, failing the test on
// bad input.
func Struct(t *testing.T, y string) *structpb.Struct {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("bad YAML: %v", err)
	}
	return resource.MustStructJSON(string(j))
}

// Resources wraps objects as required resources.
func Resources(t *testing.T, ys ...string) *fnv1.Resources {
	t.Helper()
	out := &fnv1.Resources{}
	for _, y := range ys {
		out.Items = append(out.Items, &fnv1.Resource{Resource: Struct(t, y)})
	}
	return out
}

// DecodeStrict decodes a composed object into its typed form, rejecting
// unknown fields: what the function emits must be what the type defines.
func DecodeStrict(t *testing.T, s *structpb.Struct, into any) {
	t.Helper()
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatalf("cannot marshal: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("composed object does not decode strictly into %T: %v\n%s", into, err, b)
	}
}

// Conditions returns the response's conditions by type.
func Conditions(rsp *fnv1.RunFunctionResponse) map[string]*fnv1.Condition {
	out := map[string]*fnv1.Condition{}
	for _, c := range rsp.GetConditions() {
		out[c.GetType()] = c
	}
	return out
}
