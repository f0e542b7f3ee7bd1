package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// TestGeneratedCRDsAreValid generates the schema set and runs every CRD in it
// through the API server's own CRD validation (structural schema, list and
// map markers, defaults, CEL rules): what a real cluster would accept.
func TestGeneratedCRDsAreValid(t *testing.T) {
	out := t.TempDir()
	var log bytes.Buffer
	if err := Run(out, "go", true, &log); err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}

	files, _ := filepath.Glob(filepath.Join(out, "*", "*.yaml"))
	pkg, _ := filepath.Glob(filepath.Join(out, "cache", "*", "*", "*", "package.yaml"))
	files = append(files, pkg...)
	if want := len(KubernetesKinds) + len(ThirdPartyCRDs) + 1; len(files) != want {
		t.Fatalf("want %d files, got %d: %v", want, len(files), files)
	}

	n := 0
	for _, f := range files {
		kubernetes := filepath.Base(filepath.Dir(f)) == "kubernetes"
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if err != nil {
				break
			}
			crd := &extv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, crd); err != nil {
				if len(bytes.TrimSpace(doc)) == 0 {
					continue
				}
				t.Errorf("%s: %v", f, err)
				continue
			}
			if crd.Name == "" {
				continue
			}
			n++
			if kubernetes {
				// Built-in groups (and the empty core group) are not allowed
				// for CRDs: check the schema under a neutral group.
				crd.Spec.Group = "validate.test"
				crd.Name = crd.Spec.Names.Plural + "." + crd.Spec.Group
			}
			extv1.SetObjectDefaults_CustomResourceDefinition(crd)
			internal := &apiextensions.CustomResourceDefinition{}
			if err := extv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, internal, nil); err != nil {
				t.Fatal(err)
			}
			for _, e := range validation.ValidateCustomResourceDefinition(context.Background(), internal) {
				t.Errorf("%s: %s: %v", filepath.Base(f), crd.Name, e)
			}
		}
	}
	if n < len(files) {
		t.Fatalf("found only %d CRDs in %d files", n, len(files))
	}
	t.Logf("%d CRDs valid", n)
}
