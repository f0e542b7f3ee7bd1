// Command crdopenapi writes, for the CustomResourceDefinitions among a
// render stage's required resources, the OpenAPI v3 documents the API
// server would serve for them (/openapi/v3/apis/<group>/<version>), in the
// form `crossplane render --required-schemas` reads. A stage thus declares
// an installed CRD once, as an object, for both the Go harnesses (which
// resolve schemas from CRDs, composetest.ResolveSchemas) and the CLI.
//
//	crdopenapi OUT-DIR PATH...   (PATH: a YAML file or a folder of them)
//
// It writes nothing when there is no CRD.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: crdopenapi OUT-DIR PATH...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "crdopenapi:", err)
		os.Exit(1)
	}
}

func run(out string, paths []string) error {
	docs := map[string]map[string]any{} // group/version → components.schemas
	for _, p := range paths {
		files, err := yamlFiles(p)
		if err != nil {
			return err
		}
		for _, f := range files {
			crds, err := readCRDs(f)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			for _, crd := range crds {
				addCRD(docs, crd)
			}
		}
	}
	for _, gv := range slices.Sorted(maps.Keys(docs)) {
		doc := map[string]any{
			"openapi":    "3.0.0",
			"info":       map[string]any{"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
			"paths":      map[string]any{},
			"components": map[string]any{"schemas": docs[gv]},
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, strings.ReplaceAll(gv, "/", "_")+".json"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// addCRD adds each served version's schema under the name the API server
// gives it (the reversed group, the version, the kind), tagged with its
// x-kubernetes-group-version-kind, which is what Crossplane matches.
func addCRD(docs map[string]map[string]any, crd apiextensionsv1.CustomResourceDefinition) {
	parts := strings.Split(crd.Spec.Group, ".")
	slices.Reverse(parts)
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		schema := map[string]any{"type": "object"}
		if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
			b, _ := json.Marshal(v.Schema.OpenAPIV3Schema)
			_ = json.Unmarshal(b, &schema)
		}
		schema["x-kubernetes-group-version-kind"] = []any{map[string]any{"group": crd.Spec.Group, "version": v.Name, "kind": crd.Spec.Names.Kind}}
		gv := crd.Spec.Group + "/" + v.Name
		if docs[gv] == nil {
			docs[gv] = map[string]any{}
		}
		docs[gv][strings.Join(parts, ".")+"."+v.Name+"."+crd.Spec.Names.Kind] = schema
	}
}

func yamlFiles(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	return out, nil
}

func readCRDs(file string) ([]apiextensionsv1.CustomResourceDefinition, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var out []apiextensionsv1.CustomResourceDefinition
	for {
		b, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(b, &head); err != nil {
			return nil, err
		}
		if head.APIVersion != "apiextensions.k8s.io/v1" || head.Kind != "CustomResourceDefinition" {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			return nil, err
		}
		out = append(out, crd)
	}
}
