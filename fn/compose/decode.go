package compose

import (
	"encoding/json"
	"errors"
	"fmt"
)

// DecodeSpec decodes an XR's spec into its typed form. Fields Crossplane
// adds (spec.crossplane, claimRef, compositionRef…) are not part of the
// typed spec and are ignored; a value of the wrong type is an error naming
// its field.
func DecodeSpec(xr map[string]any, into any) error {
	spec, ok := xr["spec"]
	if !ok {
		return fmt.Errorf("spec is missing")
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
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}
