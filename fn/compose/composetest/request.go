package composetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Runner is a composition function.
type Runner interface {
	RunFunction(context.Context, *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error)
}

// NewRequest builds a request as Crossplane does: empty desired state and
// context, no credentials, required resources and schemas as given, a tag
// hashing the request and the capabilities of Crossplane v2.2.
func NewRequest(xr map[string]any, in *structpb.Struct, observed map[string]map[string]any, required map[string]*fnv1.Resources, schemas map[string]*fnv1.Schema) (*fnv1.RunFunctionRequest, error) {
	x, err := structpb.NewStruct(xr)
	if err != nil {
		return nil, fmt.Errorf("XR: %w", err)
	}
	res := make(map[string]*fnv1.Resource, len(observed))
	for name, o := range observed {
		s, err := structpb.NewStruct(o)
		if err != nil {
			return nil, fmt.Errorf("observed %s: %w", name, err)
		}
		res[name] = &fnv1.Resource{Resource: s}
	}
	req := &fnv1.RunFunctionRequest{
		Observed:          &fnv1.State{Composite: &fnv1.Resource{Resource: x}, Resources: res},
		Desired:           &fnv1.State{},
		Input:             proto.Clone(in).(*structpb.Struct),
		Context:           &structpb.Struct{Fields: map[string]*structpb.Value{}},
		Credentials:       map[string]*fnv1.Credentials{},
		RequiredResources: required,
	}
	if required != nil {
		req.ExtraResources = map[string]*fnv1.Resources{} //nolint:staticcheck // Crossplane sets the deprecated field too.
		req.RequiredSchemas = schemas
		if schemas == nil {
			req.RequiredSchemas = map[string]*fnv1.Schema{}
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	req.Meta = &fnv1.RequestMeta{Tag: hex.EncodeToString(h[:]), Capabilities: []fnv1.Capability{
		fnv1.Capability_CAPABILITY_CAPABILITIES, fnv1.Capability_CAPABILITY_REQUIRED_RESOURCES,
		fnv1.Capability_CAPABILITY_CREDENTIALS, fnv1.Capability_CAPABILITY_CONDITIONS,
		fnv1.Capability_CAPABILITY_REQUIRED_SCHEMAS,
	}}
	return req, nil
}

// Converge calls the function as Crossplane's FetchingFunctionRunner does:
// first without required resources, then with the requirements answered
// from the pool, until they stop changing. A Fatal result ends it at once,
// as it ends Crossplane's pipeline. A requirement or desired object of a
// kind outside compose.KindTable is an error. It returns the last request, as sent,
// and its response; seen, if not nil, gets every response.
func Converge(f Runner, xr map[string]any, in *structpb.Struct, observed map[string]map[string]any, pool []map[string]any, seen func(*fnv1.RunFunctionResponse)) (*fnv1.RunFunctionRequest, *fnv1.RunFunctionResponse, error) {
	var last *fnv1.Requirements
	var required map[string]*fnv1.Resources
	var schemas map[string]*fnv1.Schema
	for range 8 {
		req, err := NewRequest(xr, in, observed, required, schemas)
		if err != nil {
			return nil, nil, err
		}
		// A copy: the SDK fills the response's desired state in place, and
		// that state is the request's.
		rsp, err := f.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
		if err != nil {
			return nil, nil, fmt.Errorf("RunFunction returned an error: %w", err)
		}
		if seen != nil {
			seen(rsp)
		}
		// Every call Crossplane would make is checked: a kind outside the
		// table is a permission the shipped RBAC may lack.
		if err := KindsOutsideTable(rsp); err != nil {
			return nil, nil, err
		}
		if err := RefKeysCollide(rsp); err != nil {
			return nil, nil, err
		}
		if Fatal(rsp) != nil || (required != nil && proto.Equal(rsp.GetRequirements(), last)) {
			return req, rsp, nil
		}
		last = rsp.GetRequirements()
		if required, err = Resolve(last.GetResources(), pool); err != nil {
			return nil, nil, err
		}
		if schemas, err = ResolveSchemas(last.GetSchemas(), pool); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, errors.New("the requirements did not settle")
}

// Fatal is the response's Fatal result, or nil.
func Fatal(rsp *fnv1.RunFunctionResponse) *fnv1.Result {
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			return r
		}
	}
	return nil
}

// Resolve answers requirements from the objects that exist, in pool order.
func Resolve(sels map[string]*fnv1.ResourceSelector, pool []map[string]any) (map[string]*fnv1.Resources, error) {
	out := make(map[string]*fnv1.Resources, len(sels))
	for name, sel := range sels {
		rs := &fnv1.Resources{}
		for _, o := range Select(sel, pool) {
			s, err := structpb.NewStruct(o)
			if err != nil {
				return nil, fmt.Errorf("required %s: %w", name, err)
			}
			rs.Items = append(rs.Items, &fnv1.Resource{Resource: s})
		}
		out[name] = rs
	}
	return out, nil
}

// ResolveSchemas answers schema requirements as the API server's OpenAPI
// discovery would: a kind is served when the pool holds its
// CustomResourceDefinition with that version served; its schema is that
// version's openAPIV3Schema ({} when the fixture has none). A kind not
// served gets an empty Schema, as Crossplane sends.
func ResolveSchemas(sels map[string]*fnv1.SchemaSelector, pool []map[string]any) (map[string]*fnv1.Schema, error) {
	out := make(map[string]*fnv1.Schema, len(sels))
	for name, sel := range sels {
		out[name] = &fnv1.Schema{}
		if schema, ok := ServedSchema(sel, pool); ok {
			s, err := structpb.NewStruct(schema)
			if err != nil {
				return nil, fmt.Errorf("schema %s: %w", name, err)
			}
			out[name].OpenapiV3 = s
		}
	}
	return out, nil
}

// ServedSchema finds a selector's kind among the pool's CRDs (see
// ResolveSchemas).
func ServedSchema(sel *fnv1.SchemaSelector, pool []map[string]any) (map[string]any, bool) {
	gv, err := schema.ParseGroupVersion(sel.GetApiVersion())
	if err != nil {
		return nil, false
	}
	for _, o := range pool {
		if o["apiVersion"] != "apiextensions.k8s.io/v1" || o["kind"] != "CustomResourceDefinition" {
			continue
		}
		crd := &unstructured.Unstructured{Object: o}
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		if group != gv.Group || kind != sel.GetKind() {
			continue
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			if vm["name"] == gv.Version && vm["served"] == true {
				schema, _, _ := unstructured.NestedMap(vm, "schema", "openAPIV3Schema")
				if schema == nil {
					schema = map[string]any{}
				}
				return schema, true
			}
		}
	}
	return nil, false
}

// Select returns the objects of pool that answer a selector, in pool
// order, as Crossplane resolves a requirement.
func Select(sel *fnv1.ResourceSelector, pool []map[string]any) []map[string]any {
	var out []map[string]any
	for _, o := range pool {
		if Matches(sel, o) {
			out = append(out, o)
		}
	}
	return out
}

// Matches reports whether an object answers a selector: by apiVersion,
// kind, namespace and name or labels.
func Matches(sel *fnv1.ResourceSelector, o map[string]any) bool {
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
		// Not the string: an object without a name answers no name.
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
