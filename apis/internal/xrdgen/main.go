// Command xrdgen wraps the CRD schemas controller-gen writes for apis/v1alpha1
// into Crossplane XRDs and writes each kind's Composition, the claim flavour,
// the Configuration package metadata and the examples' functions.yaml.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	xpv1 "github.com/crossplane/crossplane/apis/v2/apiextensions/v1"
	xpv2 "github.com/crossplane/crossplane/apis/v2/apiextensions/v2"
	pkgmetav1 "github.com/crossplane/crossplane/apis/v2/pkg/meta/v1"
	pkgv1 "github.com/crossplane/crossplane/apis/v2/pkg/v1"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// kind describes one generated XRD.
type kind struct {
	plural     string // of the CRD controller-gen wrote
	shortNames []string
}

var kinds = []kind{
	{plural: v1alpha1.ProjectPlural, shortNames: []string{"kproj"}},
	{plural: v1alpha1.ApplicationPlural, shortNames: []string{"kapp"}},
	{plural: v1alpha1.TritonServerPlural, shortNames: []string{"kts"}},
}

// claimKinds are the kinds that also come as claims in the legacy flavour.
var claimKinds = map[string]bool{v1alpha1.ApplicationPlural: true, v1alpha1.TritonServerPlural: true}

type options struct {
	crdDir, apisDir, examplesDir, configuration string
	functionName, functionPackage, version      string
	functionVersionRange                        string
}

func main() {
	o := options{}
	flag.StringVar(&o.crdDir, "crds", "", "directory of controller-gen CRDs for apis/v1alpha1")
	flag.StringVar(&o.apisDir, "apis", "apis", "directory to write XRDs and Compositions into")
	flag.StringVar(&o.examplesDir, "examples", "examples", "directory to write functions.yaml into")
	flag.StringVar(&o.configuration, "configuration", "crossplane.yaml", "Configuration package metadata to write")
	flag.StringVar(&o.functionPackage, "function-package", "", "OCI path of the function package, without tag")
	flag.StringVar(&o.functionName, "function-name", "", "name of the Function object (derived from the package path)")
	flag.StringVar(&o.version, "version", "", "package version")
	flag.StringVar(&o.functionVersionRange, "function-version-range", "", "the Configuration's semver constraint on the Function (the Makefile derives it from VERSION: any patch of its minor)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "xrdgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.crdDir == "" || o.functionName == "" || o.functionPackage == "" || o.version == "" || o.functionVersionRange == "" {
		return fmt.Errorf("-crds, -function-name, -function-package, -version and -function-version-range are required")
	}
	for _, k := range kinds {
		crd, err := readCRD(filepath.Join(o.crdDir, v1alpha1.Group+"_"+k.plural+".yaml"))
		if err != nil {
			return err
		}
		xrd, err := modernXRD(crd, k)
		if err != nil {
			return err
		}
		if err := writeKind(filepath.Join(o.apisDir, k.plural), xrd, composition(xrd.Name, xrd.Spec.Names.Kind, o.functionName)); err != nil {
			return err
		}
		if !claimKinds[k.plural] {
			continue
		}
		legacy, err := legacyXRD(crd, k)
		if err != nil {
			return err
		}
		if err := writeKind(filepath.Join(o.apisDir, "claims", legacy.Spec.Names.Plural), legacy, composition(legacy.Name, legacy.Spec.Names.Kind, o.functionName)); err != nil {
			return err
		}
	}
	if err := writeYAML(filepath.Join(o.examplesDir, "functions.yaml"), function(o)); err != nil {
		return err
	}
	return writeYAML(o.configuration, configuration(o))
}

func readCRD(path string) (*extv1.CustomResourceDefinition, error) {
	b, err := os.ReadFile(path) //nolint:gosec // a path the Makefile passes.
	if err != nil {
		return nil, err
	}
	crd := &extv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil {
		return nil, fmt.Errorf("%s: want exactly one version with a schema", path)
	}
	return crd, nil
}

// xrdSchema keeps what an XRD may declare: spec, status, the root CEL rules
// (Crossplane copies them into the CRD) and, for the root rules to bind the
// name, a metadata.name length bound.
func xrdSchema(crd *extv1.CustomResourceDefinition, rootRules bool) (runtime.RawExtension, error) {
	in := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	out := extv1.JSONSchemaProps{
		Type:        "object",
		Description: in.Description,
		Required:    []string{"spec"},
		Properties: map[string]extv1.JSONSchemaProps{
			"spec":   in.Properties["spec"],
			"status": in.Properties["status"],
		},
	}
	if rootRules {
		out.XValidations = in.XValidations
	}
	b, err := json.Marshal(out)
	return runtime.RawExtension{Raw: b}, err
}

// printerColumns drops Age: Crossplane appends SYNCED, READY, COMPOSITION and AGE.
func printerColumns(crd *extv1.CustomResourceDefinition) []extv1.CustomResourceColumnDefinition {
	var cols []extv1.CustomResourceColumnDefinition
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Name != "Age" {
			cols = append(cols, c)
		}
	}
	return cols
}

func modernXRD(crd *extv1.CustomResourceDefinition, k kind) (*xpv2.CompositeResourceDefinition, error) {
	schema, err := xrdSchema(crd, true)
	if err != nil {
		return nil, err
	}
	scope := xpv2.CompositeResourceScopeNamespaced
	if crd.Spec.Scope == extv1.ClusterScoped {
		scope = xpv2.CompositeResourceScopeCluster
	}
	names := crd.Spec.Names
	names.ShortNames = k.shortNames
	names.Categories = []string{"kalypso"}
	return &xpv2.CompositeResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: xpv2.SchemeGroupVersion.String(), Kind: xpv2.CompositeResourceDefinitionKind},
		ObjectMeta: metav1.ObjectMeta{Name: crd.Name},
		Spec: xpv2.CompositeResourceDefinitionSpec{
			Group:                 crd.Spec.Group,
			Names:                 names,
			Scope:                 scope,
			DefaultCompositionRef: &xpv2.CompositionReference{Name: crd.Name},
			Versions: []xpv2.CompositeResourceDefinitionVersion{{
				Name:                     v1alpha1.Version,
				Served:                   true,
				Referenceable:            true,
				Schema:                   &xpv2.CompositeResourceValidation{OpenAPIV3Schema: schema},
				AdditionalPrinterColumns: printerColumns(crd),
			}},
		},
	}, nil
}

// legacyXRD is the claim flavour: an X-prefixed LegacyCluster XR with the
// original kind as its claim. The root name rule is left to the function:
// Crossplane names the XR <claim>-<suffix>, which the rule would reject.
func legacyXRD(crd *extv1.CustomResourceDefinition, k kind) (*xpv1.CompositeResourceDefinition, error) {
	schema, err := xrdSchema(crd, false)
	if err != nil {
		return nil, err
	}
	claim := crd.Spec.Names
	claim.ShortNames = k.shortNames
	claim.Categories = []string{"kalypso"}
	xr := extv1.CustomResourceDefinitionNames{
		Kind:       "X" + claim.Kind,
		ListKind:   "X" + claim.ListKind,
		Plural:     "x" + claim.Plural,
		Singular:   "x" + claim.Singular,
		Categories: []string{"kalypso"},
	}
	name := xr.Plural + "." + crd.Spec.Group
	return &xpv1.CompositeResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: xpv1.SchemeGroupVersion.String(), Kind: xpv1.CompositeResourceDefinitionKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: xpv1.CompositeResourceDefinitionSpec{
			Group:                 crd.Spec.Group,
			Names:                 xr,
			ClaimNames:            &claim,
			Scope:                 ptr.To(xpv1.CompositeResourceScopeLegacyCluster),
			DefaultCompositionRef: &xpv1.CompositionReference{Name: name},
			Versions: []xpv1.CompositeResourceDefinitionVersion{{
				Name:                     v1alpha1.Version,
				Served:                   true,
				Referenceable:            true,
				Schema:                   &xpv1.CompositeResourceValidation{OpenAPIV3Schema: schema},
				AdditionalPrinterColumns: printerColumns(crd),
			}},
		},
	}, nil
}

func composition(name, compositeKind, functionName string) *xpv1.Composition {
	in, err := json.Marshal(&v1beta1.Input{
		TypeMeta:              metav1.TypeMeta{APIVersion: "kalypso.fn.crossplane.io/v1beta1", Kind: "Input"},
		EnvironmentConfigName: v1beta1.DefaultEnvironmentConfigName,
	})
	if err != nil {
		panic(err) // a fixed struct always marshals.
	}
	return &xpv1.Composition{
		TypeMeta:   metav1.TypeMeta{APIVersion: xpv1.SchemeGroupVersion.String(), Kind: xpv1.CompositionKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: xpv1.CompositionSpec{
			CompositeTypeRef: xpv1.TypeReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: compositeKind},
			Mode:             xpv1.CompositionModePipeline,
			Pipeline: []xpv1.PipelineStep{{
				Step:        "kalypso",
				FunctionRef: xpv1.FunctionReference{Name: functionName},
				Input:       &runtime.RawExtension{Raw: in},
			}},
		},
	}
}

func function(o options) *pkgv1.Function {
	return &pkgv1.Function{
		TypeMeta: metav1.TypeMeta{APIVersion: pkgv1.SchemeGroupVersion.String(), Kind: pkgv1.FunctionKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: o.functionName,
			Annotations: map[string]string{
				// crossplane render dials a function started by `make render`.
				"render.crossplane.io/runtime":                    "Development",
				"render.crossplane.io/runtime-development-target": "localhost:9443",
			},
		},
		Spec: pkgv1.FunctionSpec{PackageSpec: pkgv1.PackageSpec{Package: o.functionPackage + ":" + o.version}},
	}
}

func configuration(o options) *pkgmetav1.Configuration {
	return &pkgmetav1.Configuration{
		TypeMeta: metav1.TypeMeta{APIVersion: pkgmetav1.SchemeGroupVersion.String(), Kind: pkgmetav1.ConfigurationKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: "configuration-kalypso",
			Annotations: map[string]string{
				"meta.crossplane.io/maintainer":  "Kalypso Serving <maintainers@kalypso.io>",
				"meta.crossplane.io/source":      "github.com/kalypsoserving/function-kalypso",
				"meta.crossplane.io/license":     "Apache-2.0",
				"meta.crossplane.io/description": "Kalypso: NVIDIA Triton model serving on Kubernetes through Crossplane (projects, applications, Triton servers).",
				"meta.crossplane.io/readme":      "Install this Configuration, then apply KalypsoProject, KalypsoApplication and KalypsoTritonServer objects. See the project README for the reference of the three kinds.",
			},
		},
		Spec: pkgmetav1.ConfigurationSpec{
			MetaSpec: pkgmetav1.MetaSpec{
				// The -0 lets pre-release and vendor builds of core (UXP,
				// v2.3.0-rc.1) satisfy it: Masterminds semver v1.5.0, which
				// the package manager checks with (internal/xpkg/lint.go
				// PackageCrossplaneCompatible), matches a pre-release only
				// against a bound that has one.
				Crossplane: &pkgmetav1.CrossplaneConstraints{Version: ">=v2.2.0-0"},
				// A range, not a pin (the Makefile's FUNCTION_VERSION_RANGE,
				// comma-separated: semver v1.5.0 refuses a space): the package
				// manager resolves it to the highest matching tag
				// (internal/controller/pkg/resolver
				// findDependencyVersionToInstall), so a patch release of the
				// Function alone satisfies an installed Configuration.
				DependsOn: []pkgmetav1.Dependency{{
					APIVersion: ptr.To(pkgv1.SchemeGroupVersion.String()),
					Kind:       ptr.To(pkgv1.FunctionKind),
					Package:    ptr.To(o.functionPackage),
					Version:    o.functionVersionRange,
				}},
			},
		},
	}
}

func writeKind(dir string, xrd, comp runtime.Object) error {
	if err := writeYAML(filepath.Join(dir, "definition.yaml"), xrd); err != nil {
		return err
	}
	return writeYAML(filepath.Join(dir, "composition.yaml"), comp)
}

func writeYAML(path string, o any) error {
	b, err := yaml.Marshal(o)
	if err != nil {
		return err
	}
	// Typed metadata and status marshal as null/{}: leave them out of the files.
	var out bytes.Buffer
	out.WriteString("# Code generated by xrdgen (make generate). DO NOT EDIT.\n")
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); bytes.Equal(t, []byte("creationTimestamp: null")) || bytes.Equal(t, []byte("status: {}")) {
			continue
		}
		out.Write(line)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o600)
}
