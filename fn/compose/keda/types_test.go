package keda

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestExampleClusterTriggerAuthentication: the platform's example decodes
// strictly into the local type (render-check validates it against KEDA's
// CRD), names the authentication the example EnvironmentConfig uses, and
// reads the parameter authModes bearer needs.
func TestExampleClusterTriggerAuthentication(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "platform", "keda-clustertriggerauthentication.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cta ClusterTriggerAuthentication
	if err := yaml.UnmarshalStrict(b, &cta); err != nil {
		t.Fatalf("does not decode strictly: %v", err)
	}
	if cta.Kind != "ClusterTriggerAuthentication" || cta.APIVersion != GroupVersion.String() || cta.Name != "kalypso-prometheus" {
		t.Errorf("want keda.sh/v1alpha1 ClusterTriggerAuthentication kalypso-prometheus, got %s %s %s", cta.APIVersion, cta.Kind, cta.Name)
	}
	if len(cta.Spec.SecretTargetRef) != 1 || cta.Spec.SecretTargetRef[0].Parameter != "bearerToken" {
		t.Errorf("want one secretTargetRef for bearerToken (KEDA pkg/scalers/authentication), got %+v", cta.Spec.SecretTargetRef)
	}
}
