//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestPackages checks what the package manager installed in the packages
// flavour's lab (packages.go): the Configuration from the loopback
// registry, its Function dependency under its release name, the XRDs and
// Compositions it ships, then the example project, an application and a
// server composed through the package-created FunctionRevision.
func TestPackages(t *testing.T) {
	requireFlavour(t, flavourPackages)
	const (
		project = "vision"
		prod    = "vision-prod"
	)
	teardown(t, project, prod, "vision-dev", "vision-stage")

	step(t, "Configuration", func(t *testing.T) {
		cfg := mustGet(t, "pkg.crossplane.io/v1", "Configuration", "", configurationName)
		for _, c := range []string{"Installed", "Healthy"} {
			if got := getCondition(cfg, c); got.Status != "True" {
				t.Errorf("Configuration %s: %s=%s (%s)", configurationName, c, got.Status, got.Message)
			}
		}
		if got, want := str(cfg, "status", "resolvedPackage"), registryAddr+"/kalypsoserving/configuration-kalypso:"; got != "" && !strings.HasPrefix(got, want) {
			t.Errorf("Configuration status.resolvedPackage = %q, want %s…", got, want)
		}
		rev := mustGet(t, "pkg.crossplane.io/v1", "ConfigurationRevision", "", str(cfg, "status", "currentRevision"))
		if got := getCondition(rev, "RevisionHealthy"); got.Status != "True" {
			t.Errorf("ConfigurationRevision %s: RevisionHealthy=%s (%s)", rev.GetName(), got.Status, got.Message)
		}
		measure(t, "Configuration %s: package %s, resolved %s", configurationName, str(cfg, "spec", "package"), str(cfg, "status", "resolvedPackage"))
	})

	step(t, "Function dependency", func(t *testing.T) {
		fn := mustGet(t, "pkg.crossplane.io/v1", "Function", "", functionName)
		if got, want := str(fn, "spec", "package"), "xpkg.crossplane.io/kalypsoserving/function-kalypso"; !strings.HasPrefix(got, want) {
			t.Errorf("Function %s spec.package = %q, want %s…", functionName, got, want)
		}
		for _, c := range []string{"Installed", "Healthy"} {
			if got := getCondition(fn, c); got.Status != "True" {
				t.Errorf("Function %s: %s=%s (%s)", functionName, c, got.Status, got.Message)
			}
		}
		rev := mustGet(t, "pkg.crossplane.io/v1", "FunctionRevision", "", str(fn, "status", "currentRevision"))
		if got := rev.GetLabels()["pkg.crossplane.io/package"]; got != functionName {
			t.Errorf("FunctionRevision %s label pkg.crossplane.io/package = %q, want %s", rev.GetName(), got, functionName)
		}
		for _, c := range []string{"RevisionHealthy", "RuntimeHealthy"} {
			if got := getCondition(rev, c); got.Status != "True" {
				t.Errorf("FunctionRevision %s: %s=%s (%s)", rev.GetName(), c, got.Status, got.Message)
			}
		}
		if got := str(rev, "status", "endpoint"); got != "dns:///"+functionAddr {
			t.Errorf("FunctionRevision %s status.endpoint = %q, want dns:///%s", rev.GetName(), got, functionAddr)
		}
		if rev.GetName() == functionName+"-e2e" {
			t.Errorf("FunctionRevision %s is the lab's hand-made one; want the package manager's", rev.GetName())
		}
		lock := mustGet(t, "pkg.crossplane.io/v1beta1", "Lock", "", "lock")
		pkgs, _, _ := unstructured.NestedSlice(lock.Object, "packages")
		var names []string
		for _, p := range pkgs {
			if m, ok := p.(map[string]any); ok {
				names = append(names, fmt.Sprintf("%v %v (%v)", m["kind"], m["source"], m["version"]))
			}
		}
		slices.Sort(names)
		measure(t, "Function %s revision %s (image %s), endpoint written %d time(s); lock: %s", functionName, rev.GetName(),
			str(rev, "spec", "image"), packageEndpointPatches.Load(), strings.Join(names, ", "))
		if len(pkgs) < 2 {
			t.Errorf("lock holds %d packages, want the Configuration and the Function: %v", len(pkgs), names)
		}
	})

	step(t, "XRDs and Compositions", func(t *testing.T) {
		for _, kind := range []string{"kalypsoprojects", "kalypsoapplications", "kalypsotritonservers"} {
			name := kind + "." + kalypsoGroup
			xrd := mustGet(t, "apiextensions.crossplane.io/v2", "CompositeResourceDefinition", "", name)
			if got := getCondition(xrd, "Established"); got.Status != "True" {
				t.Errorf("XRD %s: Established=%s (%s)", name, got.Status, got.Message)
			}
			if o := getCondition(xrd, "Offered"); o.Status == "False" {
				t.Errorf("XRD %s: Offered=False (%s)", name, o.Message)
			}
			if !ownedByPackage(xrd.GetOwnerReferences()) {
				t.Errorf("XRD %s is not owned by a ConfigurationRevision: %v", name, xrd.GetOwnerReferences())
			}
		}
		comps, err := lab.Kube.list(t.Context(), "apiextensions.crossplane.io/v1", "Composition", "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := range comps {
			if ownedByPackage(comps[i].GetOwnerReferences()) {
				n++
			}
		}
		if n < 3 {
			t.Errorf("%d Compositions owned by the ConfigurationRevision, want 3", n)
		}
	})

	step(t, "Project", func(t *testing.T) {
		start := time.Now()
		applyFile(t, "examples/projects/vision.yaml")
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 120*time.Second)
		measure(t, "project vision Ready %s after it was applied (function from the package manager's FunctionRevision)", time.Since(start).Round(10*time.Millisecond))
	})

	step(t, "Application and server", func(t *testing.T) {
		applyFile(t, "examples/applications/stages/fixtures/secret-models-s3.yaml")
		applyFile(t, "examples/tritonservers/stages/fixtures/apikey-vision-prod.yaml")
		start := time.Now()
		applyFile(t, "examples/applications/detector.yaml")
		waitReady(t, kindApplication, prod, "detector", 60*time.Second)
		measure(t, "application detector Ready %s after it was applied", time.Since(start).Round(10*time.Millisecond))
		s := newServer("yolo", prod, "detector")
		s.Spec["gpus"] = int64(1)
		start = time.Now()
		s.apply(t)
		xr := waitReady(t, kindServer, prod, "yolo", 90*time.Second)
		measure(t, "server yolo (1 GPU) Ready %s after it was applied, phase %s", time.Since(start).Round(10*time.Millisecond), str(xr, "status", "phase"))
		waitDeploymentAvailable(t, prod, "yolo-deploy", 1, 30*time.Second)
	})
}

func ownedByPackage(refs []metav1.OwnerReference) bool {
	for _, r := range refs {
		if r.Kind == "ConfigurationRevision" {
			return true
		}
	}
	return false
}
