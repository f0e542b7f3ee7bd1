// Package composetest helps tests build what composers and RunFunction
// get, call them as Crossplane does and read what they return.
package composetest

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/crossplane/function-sdk-go/resource/composite"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
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

// Decode converts a desired object into its typed form, rejecting unknown
// fields.
func Decode[T any](t *testing.T, d *resource.DesiredComposed) *T {
	t.Helper()
	b, err := json.Marshal(d.Resource.Object)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := yaml.UnmarshalStrict(b, out); err != nil {
		t.Fatalf("composed object does not decode strictly into %T: %v", out, err)
	}
	return out
}

// Conditions returns the response's conditions by type.
func Conditions(rsp *fnv1.RunFunctionResponse) map[string]*fnv1.Condition {
	out := map[string]*fnv1.Condition{}
	for _, c := range rsp.GetConditions() {
		out[c.GetType()] = c
	}
	return out
}

// Numbers is how the numbers of a request's objects reach a composer:
// Kubernetes JSON decoding (render, and Object) keeps integers int64;
// function-sdk-go decodes a real request through structpb, which makes
// every number a float64. Composers must take both.
type Numbers string

// The two forms of numbers; their names name subtests.
const (
	Int64s   Numbers = "int64"
	Float64s Numbers = "float64"
)

// Object decodes a YAML (or JSON) object with these numbers, failing the
// test on bad input.
func (n Numbers) Object(t *testing.T, y string) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("bad YAML: %v\n%s", err, y)
	}
	if n == Float64s {
		s := &structpb.Struct{}
		if err := protojson.Unmarshal(j, s); err != nil {
			t.Fatalf("bad object: %v\n%s", err, j)
		}
		return s.AsMap()
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("bad object: %v\n%s", err, j)
	}
	return u.Object
}

// Composite is a YAML object as the observed composite.
func (n Numbers) Composite(t *testing.T, y string) *resource.Composite {
	t.Helper()
	return &resource.Composite{Resource: &composite.Unstructured{Unstructured: unstructured.Unstructured{Object: n.Object(t, y)}}}
}

// Observed are observed composed objects from pipeline name → YAML.
func (n Numbers) Observed(t *testing.T, objs map[string]string) map[resource.Name]resource.ObservedComposed {
	t.Helper()
	out := map[resource.Name]resource.ObservedComposed{}
	for name, y := range objs {
		out[resource.Name(name)] = resource.ObservedComposed{Resource: &composed.Unstructured{Unstructured: unstructured.Unstructured{Object: n.Object(t, y)}}}
	}
	return out
}

// Required are resolved requirements from requirement → YAML objects. A
// requirement with no objects is resolved and found nothing; one absent is
// not resolved.
func (n Numbers) Required(t *testing.T, objs map[string][]string) map[string][]resource.Required {
	t.Helper()
	out := map[string][]resource.Required{}
	for k, ys := range objs {
		out[k] = []resource.Required{}
		for _, y := range ys {
			out[k] = append(out[k], resource.Required{Resource: &unstructured.Unstructured{Object: n.Object(t, y)}})
		}
	}
	return out
}

// Object is Int64s.Object, the form render passes.
func Object(t *testing.T, y string) map[string]any {
	t.Helper()
	return Int64s.Object(t, y)
}

// Composite is Int64s.Composite.
func Composite(t *testing.T, y string) *resource.Composite {
	t.Helper()
	return Int64s.Composite(t, y)
}

// Observed is Int64s.Observed.
func Observed(t *testing.T, objs map[string]string) map[resource.Name]resource.ObservedComposed {
	t.Helper()
	return Int64s.Observed(t, objs)
}

// Required is Int64s.Required.
func Required(t *testing.T, objs map[string][]string) map[string][]resource.Required {
	t.Helper()
	return Int64s.Required(t, objs)
}

// Platform resolves the platform of a function input, without
// EnvironmentConfig.
func Platform(t *testing.T, in *v1beta1.Input) compose.Platform {
	t.Helper()
	p, err := compose.ResolvePlatform(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Merge writes src over dst as server-side apply does: maps merge key by
// key, anything else replaces.
func Merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				Merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// GeneratedFile rewrites path with want when update is set, and otherwise
// fails unless path holds exactly want; regen is the command that rewrites
// it, for the failure message.
func GeneratedFile(t *testing.T, path string, want []byte, update bool, regen string) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(want) {
		t.Errorf("%s is stale: run %s (read error: %v)", path, regen, err)
	}
}

// WantError checks a case's error: with want set, err must contain it (and
// the case is done: true); without, err must be nil.
func WantError(t *testing.T, reason string, err error, want string) bool {
	t.Helper()
	if want != "" {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s\nwant error containing %q, got %v", reason, want, err)
		}
		return true
	}
	if err != nil {
		t.Fatalf("%s\n%v", reason, err)
	}
	return false
}
