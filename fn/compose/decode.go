package compose

import (
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// DecodeSpec decodes an XR's spec into its typed form. Fields Crossplane
// adds (spec.crossplane, claimRef, compositionRef…) are not part of the
// typed spec and are ignored; a value of the wrong type is an error naming
// its field.
func DecodeSpec(xr map[string]any, into any) error {
	spec, ok := xr["spec"].(map[string]any)
	if !ok {
		return fmt.Errorf("spec is missing or not an object")
	}
	// The converter walks the map directly; only a spec it refuses takes
	// the JSON path, whose errors name the field.
	if runtime.DefaultUnstructuredConverter.FromUnstructured(spec, into) == nil {
		return nil
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("spec.%s: cannot use a JSON %s where %s is expected", te.Field, te.Value, te.Type)
		}
		return fmt.Errorf("spec: %w", err)
	}
	return nil
}

// DecodeInto decodes an unstructured value (a map from an object) into a
// typed struct.
func DecodeInto(raw any, into any) error {
	if m, ok := raw.(map[string]any); ok && runtime.DefaultUnstructuredConverter.FromUnstructured(m, into) == nil {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// Int reads an integer field of an object. A request carries numbers as
// float64 (protobuf Struct) or int64; both are read. Field paths are walked
// directly: fieldpath parsing costs more than the rest of a lookup.
func Int(obj map[string]any, path ...string) (int64, bool) {
	v, found, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !found {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), true
	case int:
		return int64(n), true
	}
	return 0, false
}

// Str reads a string field of an object ("" when absent).
func Str(obj map[string]any, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	s, _ := v.(string)
	return s
}
