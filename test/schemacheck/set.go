package schemacheck

import (
	"sync"
	"testing"
)

// XRD names an XRD file and whether its claim is meant.
type XRD struct {
	Path  string
	Claim bool
}

// Set holds the validators of several targets, built together on first
// use: the CEL cost estimation of a large schema is slow, so a test binary
// builds each once.
type Set struct {
	load func() (map[string]*Validator, error)
}

// NewSet returns the set of the XRDs by target.
func NewSet(xrds map[string]XRD) *Set {
	return &Set{load: sync.OnceValues(func() (map[string]*Validator, error) {
		out := map[string]*Validator{}
		for target, x := range xrds {
			v, err := Load(x.Path, x.Claim)
			if err != nil {
				return nil, err
			}
			out[target] = v
		}
		return out, nil
	})}
}

// For returns the validator of a target, failing the test when the set
// cannot be built or has no such target.
func (s *Set) For(t testing.TB, target string) *Validator {
	t.Helper()
	vs, err := s.load()
	if err != nil {
		t.Fatalf("cannot build the CRDs: %v", err)
	}
	v, ok := vs[target]
	if !ok {
		t.Fatalf("no XRD for target %q", target)
	}
	return v
}

// MustParse is Parse failing the test on bad input.
func MustParse(t testing.TB, text string) map[string]any {
	t.Helper()
	o, err := Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return o
}
