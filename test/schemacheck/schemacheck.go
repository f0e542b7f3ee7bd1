// Package schemacheck checks objects against the generated XRDs the way a
// cluster would: each XRD is turned into the CRD Crossplane installs for it,
// that CRD goes through the API server's CRD validation (structural schema,
// defaults, CEL compilation and cost budget), and objects go through the API
// server's create and update path for custom resources (prune, default,
// OpenAPI validation, CEL).
//
// apis/schema_test.go checks the XRDs with it; test/badinput uses it for the
// bad-input catalogue's API server rows.
package schemacheck

import (
	"context"
	"fmt"
	"os"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/common"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// xrd is the part of a v1 or v2 CompositeResourceDefinition that shapes the
// CRDs Crossplane derives from it.
type xrd struct {
	Spec struct {
		Group      string                               `json:"group"`
		Names      extv1.CustomResourceDefinitionNames  `json:"names"`
		ClaimNames *extv1.CustomResourceDefinitionNames `json:"claimNames,omitempty"`
		Scope      string                               `json:"scope"`
		Versions   []struct {
			Name          string `json:"name"`
			Served        bool   `json:"served"`
			Referenceable bool   `json:"referenceable"`
			Schema        *struct {
				OpenAPIV3Schema *extv1.JSONSchemaProps `json:"openAPIV3Schema"`
			} `json:"schema"`
			AdditionalPrinterColumns []extv1.CustomResourceColumnDefinition `json:"additionalPrinterColumns,omitempty"`
		} `json:"versions"`
	} `json:"spec"`
}

// CRDFor mimics Crossplane's xcrd.ForCompositeResource and
// ForCompositeResourceClaim (genCrdVersion) for the XRD at path: a fixed
// root whose metadata.name is bounded to 63 characters, the XRD's root
// description and CEL rules, and the XRD's spec and status. With claim it
// is the CRD of the XRD's claim. Crossplane's own spec and status fields
// (spec.crossplane, spec.compositionRef, status.conditions…) are left open:
// their exact schema is Crossplane's business.
func CRDFor(path string, claim bool) (*extv1.CustomResourceDefinition, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the caller names a generated XRD.
	if err != nil {
		return nil, err
	}
	x := &xrd{}
	if err := yaml.Unmarshal(b, x); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(x.Spec.Versions) != 1 || x.Spec.Versions[0].Schema == nil || x.Spec.Versions[0].Schema.OpenAPIV3Schema == nil {
		return nil, fmt.Errorf("%s: want exactly one version with an openAPIV3Schema", path)
	}
	v := x.Spec.Versions[0]
	s := v.Schema.OpenAPIV3Schema

	names, scope, category := x.Spec.Names, extv1.ClusterScoped, "composite"
	switch {
	case claim && x.Spec.ClaimNames == nil:
		return nil, fmt.Errorf("%s: no claimNames", path)
	case claim:
		names, scope, category = *x.Spec.ClaimNames, extv1.NamespaceScoped, "claim"
	case x.Spec.Scope == "Namespaced":
		scope = extv1.NamespaceScoped
	case x.Spec.Scope == "Cluster", x.Spec.Scope == "LegacyCluster":
	default:
		return nil, fmt.Errorf("%s: unexpected scope %q", path, x.Spec.Scope)
	}
	names.Categories = append(names.Categories, category)

	maxName := int64(63)
	if old := s.Properties["metadata"].Properties["name"].MaxLength; old != nil && *old < maxName {
		maxName = *old
	}
	spec, status := s.Properties["spec"], s.Properties["status"]
	// Crossplane adds its machinery to the spec (xcrd.CompositeResourceSpecProps
	// and CompositeResourceClaimSpecProps); its exact schema is Crossplane's
	// business, so here any value is allowed under those names.
	specProps := nonNil(spec.Properties)
	crossplaneFields := []string{"crossplane"}
	switch {
	case claim:
		crossplaneFields = []string{"compositeDeletePolicy", "compositionRef", "compositionRevisionRef", "compositionRevisionSelector", "compositionSelector", "compositionUpdatePolicy", "resourceRef", "writeConnectionSecretToRef"}
	case x.Spec.Scope == "LegacyCluster":
		crossplaneFields = []string{"claimRef", "compositionRef", "compositionRevisionRef", "compositionRevisionSelector", "compositionSelector", "compositionUpdatePolicy", "resourceRefs", "writeConnectionSecretToRef"}
	}
	for _, f := range crossplaneFields {
		specProps[f] = extv1.JSONSchemaProps{XPreserveUnknownFields: ptr.To(true)}
	}
	// Crossplane adds the conditions to every composite's status
	// (xcrd.CompositeResourceStatusProps).
	statusProps := nonNil(status.Properties)
	statusProps["conditions"] = extv1.JSONSchemaProps{
		Type:         "array",
		XListType:    ptr.To("map"),
		XListMapKeys: []string{"type"},
		Items: &extv1.JSONSchemaPropsOrArray{Schema: &extv1.JSONSchemaProps{
			Type:     "object",
			Required: []string{"lastTransitionTime", "reason", "status", "type"},
			Properties: map[string]extv1.JSONSchemaProps{
				"lastTransitionTime": {Type: "string", Format: "date-time"},
				"message":            {Type: "string"},
				"observedGeneration": {Type: "integer", Format: "int64"},
				"reason":             {Type: "string"},
				"status":             {Type: "string"},
				"type":               {Type: "string"},
			},
		}},
	}
	root := &extv1.JSONSchemaProps{
		Type:         "object",
		Required:     []string{"spec"},
		Description:  s.Description,
		XValidations: s.XValidations,
		Properties: map[string]extv1.JSONSchemaProps{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"metadata": {Type: "object", Properties: map[string]extv1.JSONSchemaProps{
				"name": {Type: "string", MaxLength: &maxName},
			}},
			"spec": {
				Type:                   "object",
				Description:            spec.Description,
				Required:               spec.Required,
				XPreserveUnknownFields: spec.XPreserveUnknownFields,
				XValidations:           spec.XValidations,
				OneOf:                  spec.OneOf,
				Properties:             specProps,
			},
			"status": {
				Type:         "object",
				Description:  status.Description,
				Required:     status.Required,
				XValidations: status.XValidations,
				OneOf:        status.OneOf,
				Properties:   statusProps,
			},
		},
	}

	crd := &extv1.CustomResourceDefinition{
		Spec: extv1.CustomResourceDefinitionSpec{
			Group: x.Spec.Group,
			Names: names,
			Scope: scope,
			Versions: []extv1.CustomResourceDefinitionVersion{{
				Name:                     v.Name,
				Served:                   v.Served,
				Storage:                  v.Referenceable,
				AdditionalPrinterColumns: v.AdditionalPrinterColumns,
				Schema:                   &extv1.CustomResourceValidation{OpenAPIV3Schema: root},
				Subresources:             &extv1.CustomResourceSubresources{Status: &extv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
	crd.SetName(names.Plural + "." + x.Spec.Group)
	// What the API server's decoder does to a CRD it is sent.
	extv1.SetObjectDefaults_CustomResourceDefinition(crd)
	return crd, nil
}

func nonNil(p map[string]extv1.JSONSchemaProps) map[string]extv1.JSONSchemaProps {
	if p == nil {
		return map[string]extv1.JSONSchemaProps{}
	}
	return p
}

// Validator is one served kind, set up as the API server's customresource
// handler and strategy set it up.
type Validator struct {
	gvk        schema.GroupVersionKind
	namespaced bool
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
	cel        *cel.Validator

	// crdErrs are the errors creating the CRD would meet.
	crdErrs field.ErrorList
}

// Load builds the validator of the XRD at xrdPath (of its claim with claim).
// The CEL cost estimation of a large schema takes a while: build each
// validator once.
func Load(xrdPath string, claim bool) (*Validator, error) {
	crd, err := CRDFor(xrdPath, claim)
	if err != nil {
		return nil, err
	}
	v, err := New(crd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", xrdPath, err)
	}
	return v, nil
}

// New builds the validator of a CRD's first version.
func New(crd *extv1.CustomResourceDefinition) (*Validator, error) {
	internal := &apiextensions.CustomResourceDefinition{}
	if err := extv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, internal, nil); err != nil {
		return nil, err
	}
	cr := &Validator{
		gvk:        schema.GroupVersionKind{Group: crd.Spec.Group, Version: crd.Spec.Versions[0].Name, Kind: crd.Spec.Names.Kind},
		namespaced: crd.Spec.Scope == extv1.NamespaceScoped,
		crdErrs:    crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal),
	}

	v := &apiextensions.CustomResourceValidation{}
	if err := extv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(crd.Spec.Versions[0].Schema, v, nil); err != nil {
		return nil, err
	}
	s, err := structuralschema.NewStructural(v.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("not a structural schema: %w", err)
	}
	cr.crdErrs = append(cr.crdErrs, structuralschema.ValidateStructural(field.NewPath("openAPIV3Schema"), s)...)
	s = s.DeepCopy()
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, err
	}
	cr.structural = s
	if cr.validator, _, err = apiservervalidation.NewSchemaValidator(v.OpenAPIV3Schema); err != nil {
		return nil, err
	}
	cr.cel = cel.NewValidator(s, true, celconfig.PerCallLimit)
	return cr, nil
}

// GVK is the kind the validator admits.
func (cr *Validator) GVK() schema.GroupVersionKind { return cr.gvk }

// Namespaced reports whether the kind is namespaced.
func (cr *Validator) Namespaced() bool { return cr.namespaced }

// CRDErrors are the errors the API server would refuse the CRD with
// (structural schema, pruned defaults, CEL compilation and estimated cost
// within the per-rule and per-CRD budgets); empty when it accepts it.
func (cr *Validator) CRDErrors() field.ErrorList { return cr.crdErrs }

// Admit runs obj through the API server's path for a custom resource:
// decode (prune unknown fields, reported as kubectl's default strict field
// validation reports them), default, then validate (object meta, OpenAPI
// schema, list types, CEL). With old set it is an update of old, so
// transition rules see oldSelf and ratcheting applies. It returns the object
// as it would be stored. obj and old are not modified.
func (cr *Validator) Admit(ctx context.Context, obj, old map[string]any) (map[string]any, error) {
	u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(obj)}
	if errs := cr.validateTypeMeta(u); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	if unknown := cr.decode(u); len(unknown) > 0 {
		msgs := make([]string, len(unknown))
		for i, p := range unknown {
			msgs[i] = fmt.Sprintf("unknown field %q", p)
		}
		return nil, fmt.Errorf("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	if err := schemaobjectmeta.Coerce(nil, u.Object, cr.structural, true, false); err != nil {
		return nil, err
	}
	structuraldefaulting.Default(u.Object, cr.structural)

	// The status subresource is on: the main resource never writes status.
	var errs field.ErrorList
	if old == nil {
		delete(u.Object, "status")
		errs = append(errs, metavalidation.ValidateObjectMetaAccessor(u, cr.namespaced, metavalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
		errs = append(errs, apiservervalidation.ValidateCustomResource(nil, u.Object, cr.validator)...)
		errs = append(errs, schemaobjectmeta.Validate(nil, u.Object, cr.structural, false)...)
		errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, cr.structural, u.Object)...)
		return u.Object, cr.withCEL(ctx, errs, u.Object, nil).ToAggregate()
	}

	o := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(old)}
	cr.decode(o)
	structuraldefaulting.Default(o.Object, cr.structural)
	// A client updates what it read: same resourceVersion.
	o.SetResourceVersion("1")
	u.SetResourceVersion("1")
	if s, ok := o.Object["status"]; ok {
		u.Object["status"] = s
	} else {
		delete(u.Object, "status")
	}
	correlated := common.NewCorrelatedObject(u.Object, o.Object, &model.Structural{Structural: cr.structural})
	errs = append(errs, metavalidation.ValidateObjectMetaAccessorUpdate(u, o, field.NewPath("metadata"))...)
	errs = append(errs, apiservervalidation.ValidateCustomResourceUpdate(nil, u.Object, o.Object, cr.validator, apiservervalidation.WithRatcheting(correlated))...)
	errs = append(errs, schemaobjectmeta.Validate(nil, u.Object, cr.structural, false)...)
	if oldErrs := structurallisttype.ValidateListSetsAndMaps(nil, cr.structural, o.Object); len(oldErrs) == 0 {
		errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, cr.structural, u.Object)...)
	}
	return u.Object, cr.withCEL(ctx, errs, u.Object, o.Object, cel.WithRatcheting(correlated)).ToAggregate()
}

func (cr *Validator) validateTypeMeta(u *unstructured.Unstructured) field.ErrorList {
	var errs field.ErrorList
	if u.GetKind() != cr.gvk.Kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), u.GetKind(), "must be "+cr.gvk.Kind))
	}
	if u.GetAPIVersion() != cr.gvk.GroupVersion().String() {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), u.GetAPIVersion(), "must be "+cr.gvk.GroupVersion().String()))
	}
	return errs
}

// decode does what the API server's schema-coercing decoder does to a
// request body and returns the paths of the fields it pruned. Like the
// request path it also drops a namespace sent for a cluster-scoped kind and,
// like kubectl, puts a namespaced object without one into "default".
func (cr *Validator) decode(u *unstructured.Unstructured) []string {
	switch {
	case !cr.namespaced:
		u.SetNamespace("")
	case u.GetNamespace() == "":
		u.SetNamespace("default")
	}
	unknown := structuralpruning.PruneWithOptions(u.Object, cr.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u.Object, cr.structural)
	return unknown
}

// withCEL adds the x-kubernetes-validations' errors to errs unless errs
// already make the object unfit for them, as the customresource strategy does.
func (cr *Validator) withCEL(ctx context.Context, errs field.ErrorList, obj, old map[string]any, opts ...cel.Option) field.ErrorList {
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return append(errs, field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"))
		}
	}
	if cr.cel == nil {
		return errs
	}
	celErrs, _ := cr.cel.Validate(ctx, nil, cr.structural, obj, old, celconfig.RuntimeCELCostBudget, opts...)
	return append(errs, celErrs...)
}

// Parse decodes one YAML (or JSON) object as the API server decodes JSON:
// integers become int64, which CEL and the defaulting compare against.
func Parse(text string) (map[string]any, error) {
	j, err := yaml.YAMLToJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("cannot parse YAML: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return nil, fmt.Errorf("cannot decode object: %w", err)
	}
	return u.Object, nil
}
