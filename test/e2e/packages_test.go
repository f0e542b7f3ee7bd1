//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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
		// The capability comes from package/crossplane.yaml: the lab's
		// runtime writes none (servePackageFunction).
		if caps, _, _ := unstructured.NestedStringSlice(rev.Object, "status", "capabilities"); !slices.Equal(caps, []string{"composition"}) {
			t.Errorf("FunctionRevision %s status.capabilities = %v, want [composition] from the package metadata", rev.GetName(), caps)
		}
	})

	step(t, "dependency range and multi-platform index", func(t *testing.T) {
		// The Configuration depends on a range (any patch of VERSION's
		// minor); the resolver picked the pushed tag from the registry's tag
		// list (internal/controller/pkg/resolver, findDependencyVersionToInstall).
		lock := mustGet(t, "pkg.crossplane.io/v1beta1", "Lock", "", "lock")
		pkgs, _, _ := unstructured.NestedSlice(lock.Object, "packages")
		var constraint, fnVersion string
		for _, p := range pkgs {
			m, _ := p.(map[string]any)
			if m == nil {
				continue
			}
			if m["type"] == "Function" || m["kind"] == "Function" {
				fnVersion, _ = m["version"].(string)
			}
			deps, _ := m["dependencies"].([]any)
			for _, d := range deps {
				if dm, _ := d.(map[string]any); dm != nil && strings.HasSuffix(fmt.Sprint(dm["package"]), "/function-kalypso") {
					constraint, _ = dm["constraints"].(string)
				}
			}
		}
		if want := wantFunctionRange(lab.pkgVersion()); constraint != want {
			t.Errorf("lock: the Configuration's dependency constraint is %q, want %q", constraint, want)
		}
		if fnVersion != lab.pkgVersion() {
			t.Errorf("lock: Function version %q, want %s (resolved from %q)", fnVersion, lab.pkgVersion(), constraint)
		}
		platforms, mediaType, err := registryIndexPlatforms("kalypsoserving/function-kalypso", lab.pkgVersion())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) || !strings.Contains(mediaType, "index") && !strings.Contains(mediaType, "manifest.list") {
			t.Errorf("registry: function-kalypso:%s is %s with platforms %v, want an index of linux/amd64 and linux/arm64", lab.pkgVersion(), mediaType, platforms)
		}
		measure(t, "dependency %q resolved to Function %s; function-kalypso:%s in the registry: %s, platforms %v",
			constraint, fnVersion, lab.pkgVersion(), mediaType, platforms)
	})

	step(t, "ImageConfig runtime configRef example", func(t *testing.T) {
		// examples/platform/function-imageconfig.yaml against v2.2.1's
		// ImageConfig CRD: the API server keeps spec.runtime.configRef (an
		// unknown field would be refused or pruned). Its DeploymentRuntimeConfig
		// is the first document of function-runtime.yaml. The lab runs the
		// External runtime, which never reads runtime configs: what the
		// Deployment runtime does with it is cited in the example.
		b, err := readRepoFile("examples/platform/function-runtime.yaml")
		if err != nil {
			t.Fatal(err)
		}
		docs, err := decodeYAML(b)
		if err != nil {
			t.Fatal(err)
		}
		if docs[0].GetKind() != "DeploymentRuntimeConfig" {
			t.Fatalf("function-runtime.yaml starts with a %s, want the DeploymentRuntimeConfig", docs[0].GetKind())
		}
		if _, err := lab.Kube.apply(t.Context(), docs[0]); err != nil {
			t.Fatal(err)
		}
		out := applyFile(t, "examples/platform/function-imageconfig.yaml")
		ic := mustGet(t, "pkg.crossplane.io/v1beta1", "ImageConfig", "", out[0].GetName())
		if got := str(ic, "spec", "runtime", "configRef", "name"); got != docs[0].GetName() {
			t.Errorf("ImageConfig %s spec.runtime.configRef.name = %q, want %s", ic.GetName(), got, docs[0].GetName())
		}
		if got := str(ic, "spec", "runtime", "configRef", "kind"); got != "DeploymentRuntimeConfig" {
			t.Errorf("ImageConfig %s spec.runtime.configRef.kind = %q (defaulted), want DeploymentRuntimeConfig", ic.GetName(), got)
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

// TestPackageUninstall: deleting the Configuration must not delete a tenant.
// The garbage collector deletes the XRDs it owns, and Crossplane deletes
// every composite of a deleted XRD (definition reconciler, DeleteAllOf). A
// ClusterUsage of each XRD labels it crossplane.io/in-use, but on every
// reconcile of the active ConfigurationRevision the package establisher
// replaces the XRD with the package's copy and the label is gone until the
// Usage controller's next poll (establisher.go APIEstablisher.update). So
// the test touches the ImageConfig (which reconciles the revision), deletes
// the Configuration within 2 s, and checks that nothing was deleted: the
// XRDs stay, the XRs go Synced=False and keep every composed object (UIDs
// compared), and re-installing the Configuration brings them back Ready with
// the same UIDs.
func TestPackageUninstall(t *testing.T) {
	requireFlavour(t, flavourPackages)
	const (
		project = "keep"
		ns      = "keep-dev"
		app     = "keeper"
		srv     = "keeper-a"
	)
	teardown(t, project, ns)
	xrds := []string{"kalypsoprojects." + kalypsoGroup, "kalypsoapplications." + kalypsoGroup, "kalypsotritonservers." + kalypsoGroup}
	var before map[string]types.UID
	xrdUIDs := map[string]types.UID{}
	var configurationGone, holdEnd time.Time

	step(t, "tenants", func(t *testing.T) {
		applyYAML(t, projectYAML(project, env{name: "dev", namespace: ns}))
		waitReady(t, kindProject, "", project, 120*time.Second)
		environmentSecrets(t, ns)
		applyYAML(t, applicationYAML(app, ns, project))
		waitReady(t, kindApplication, ns, app, 90*time.Second)
		newServer(srv, ns, app).apply(t)
		waitReady(t, kindServer, ns, srv, 90*time.Second)
		waitDeploymentAvailable(t, ns, srv+"-deploy", 1, 30*time.Second)
		// The application protects itself once it counts the server (at
		// its next poll, within a minute), and the server's own Usage then
		// goes by design: snapshot after that hand-over, or its end would
		// read as the uninstall deleting the Usage.
		waitExists(t, apiVersionProtection, "Usage", ns, app+"-has-servers", 90*time.Second)
		waitGone(t, apiVersionProtection, "Usage", ns, srv+"-uses-application", 60*time.Second)
		before = uidSnapshot(t, project, ns)
		for _, x := range xrds {
			xrdUIDs[x] = mustGet(t, apiVersionXRD, "CompositeResourceDefinition", "", x).GetUID()
		}
		measure(t, "uninstall: %d objects snapshotted (project %s, application %s, server %s and what they compose)", len(before), project, app, srv)
	})

	step(t, "XRD protection", func(t *testing.T) {
		applyFile(t, "examples/platform/xrd-usages.yaml")
		applyFile(t, "examples/platform/xrd-deletion-policy.yaml")
		// The API server enforces a new policy once its informer has it:
		// wait until a dry-run DELETE of each XRD is refused by it.
		xc, err := lab.Kube.client(t.Context(), schema.GroupVersionKind{Group: "apiextensions.crossplane.io", Version: "v2", Kind: "CompositeResourceDefinition"}, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range xrds {
			var msg string
			waitFor(t, "ValidatingAdmissionPolicy refuses deleting XRD "+x, 30*time.Second, func() (bool, string, error) {
				err := xc.Delete(t.Context(), x, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
				if err == nil {
					return false, "dry-run delete accepted", nil
				}
				msg = err.Error()
				return strings.Contains(msg, "kalypso-xrd-deletion"), msg, nil
			})
			if x == xrds[0] {
				measure(t, "uninstall: a DELETE of an XRD is refused: %s", msg)
			}
		}
		for _, x := range xrds {
			usage := "kalypso-xrd-" + strings.TrimSuffix(x, "."+kalypsoGroup)
			waitFor(t, "ClusterUsage "+usage+" Ready", 60*time.Second, func() (bool, string, error) {
				u, err := lab.Kube.get(t.Context(), apiVersionProtection, "ClusterUsage", "", usage)
				if err != nil || u == nil {
					return false, "absent", err
				}
				return getCondition(u, "Ready").Status == "True", conditionsSummary(u), nil
			})
			waitFor(t, "XRD "+x+" labelled in use", 60*time.Second, func() (bool, string, error) {
				u, err := lab.Kube.get(t.Context(), apiVersionXRD, "CompositeResourceDefinition", "", x)
				if err != nil || u == nil {
					return false, "absent", err
				}
				return u.GetLabels()[labelInUse] == "true", fmt.Sprintf("labels %v", u.GetLabels()), nil
			})
		}
	})

	step(t, "touch the ImageConfig, delete the Configuration within 2 s", func(t *testing.T) {
		ic, err := lab.Kube.client(t.Context(), schema.GroupVersionKind{Group: "pkg.crossplane.io", Version: "v1beta1", Kind: "ImageConfig"}, "")
		if err != nil {
			t.Fatal(err)
		}
		touched := time.Now()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"e2e.kalypso.io/touched":%q}}}`, touched.UTC().Format(time.RFC3339Nano))
		if _, err := ic.Patch(t.Context(), imageConfigName, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		// The worst case: delete as soon as the establisher has stripped
		// the label, at the latest 1.5 s after the touch.
		stripped := time.Duration(-1)
		for time.Since(touched) < 1500*time.Millisecond && stripped < 0 {
			u, err := lab.Kube.get(t.Context(), apiVersionXRD, "CompositeResourceDefinition", "", xrds[0])
			if err != nil {
				t.Fatal(err)
			}
			if u != nil && u.GetLabels()[labelInUse] != "true" {
				stripped = time.Since(touched)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := lab.Kube.del(t.Context(), "pkg.crossplane.io/v1", "Configuration", "", configurationName); err != nil {
			t.Fatalf("delete Configuration: %v", err)
		}
		deleted := time.Since(touched)
		if deleted > 2*time.Second {
			t.Fatalf("the Configuration was deleted %s after the touch, want within 2 s", deleted.Round(time.Millisecond))
		}
		if stripped < 0 {
			measure(t, "uninstall: %s still labelled %s when the Configuration was deleted %s after the ImageConfig touch", xrds[0], labelInUse, deleted.Round(time.Millisecond))
		} else {
			measure(t, "uninstall: the establisher stripped %s from %s %s after the ImageConfig touch; Configuration deleted at %s",
				labelInUse, xrds[0], stripped.Round(time.Millisecond), deleted.Round(time.Millisecond))
		}
	})

	step(t, "Configuration gone, XRDs and tenants kept", func(t *testing.T) {
		d := waitGone(t, "pkg.crossplane.io/v1", "Configuration", "", configurationName, 30*time.Second)
		configurationGone = time.Now()
		waitFor(t, "ConfigurationRevisions gone", 60*time.Second, func() (bool, string, error) {
			revs, err := lab.Kube.list(t.Context(), "pkg.crossplane.io/v1", "ConfigurationRevision", "")
			return err == nil && len(revs) == 0, fmt.Sprintf("%d left", len(revs)), err
		})
		// The garbage collector now finds the XRDs without a live owner and
		// deletes them unless admission refuses; give it 10 s.
		hold := time.Now()
		for time.Since(hold) < 10*time.Second {
			for _, x := range xrds {
				u, err := lab.Kube.get(t.Context(), apiVersionXRD, "CompositeResourceDefinition", "", x)
				if err != nil {
					t.Fatal(err)
				}
				if u == nil || u.GetUID() != xrdUIDs[x] || u.GetDeletionTimestamp() != nil {
					after := time.Since(hold)
					time.Sleep(5 * time.Second) // let Crossplane's DeleteAllOf show what it does
					t.Fatalf("XRD %s deleted %s after the Configuration's revision was gone; 5 s later: %s", x,
						after.Round(10*time.Millisecond), deletedSummary(t, before))
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		holdEnd = time.Now()
		measure(t, "uninstall: Configuration gone %s after its delete; XRDs kept (same UIDs, not deleting) 10 s after its revision was gone; garbage collector deletes refused by the policy so far (kube-controller-manager log, retried with back-off): %s",
			d.Round(10*time.Millisecond), gcDenials(xrds))
	})

	step(t, "Compositions gone, XRs Synced=False, nothing deleted", func(t *testing.T) {
		start := configurationGone
		waitFor(t, "the package's Compositions gone", 60*time.Second, func() (bool, string, error) {
			left := 0
			for _, x := range xrds {
				u, err := lab.Kube.get(t.Context(), "apiextensions.crossplane.io/v1", "Composition", "", x)
				if err != nil {
					return false, "", err
				}
				if u != nil {
					left++
				}
			}
			return left == 0, fmt.Sprintf("%d left", left), nil
		})
		for _, xr := range []struct{ kind, ns, name string }{{kindProject, "", project}, {kindApplication, ns, app}, {kindServer, ns, srv}} {
			waitXRCondition(t, xr.kind, xr.ns, xr.name, "Synced", "False", "", 150*time.Second)
			c := getXRCondition(t, xr.kind, xr.ns, xr.name, "Synced")
			measure(t, "uninstall: %s %s Synced=False (seen %s after the Configuration was gone, %s after the 10 s hold) (%s: %s)", xr.kind, nsName(xr.ns, xr.name),
				time.Since(start).Round(100*time.Millisecond), time.Since(holdEnd).Round(100*time.Millisecond), c.Reason, c.Message)
		}
		after := uidSnapshot(t, project, ns)
		gone, recreated, created := compareSnapshots(before, after)
		if len(gone)+len(recreated) > 0 {
			t.Errorf("uninstalling the Configuration deleted %v and recreated %v", gone, recreated)
		}
		measure(t, "uninstall: %d objects compared after the uninstall: %d gone, %d recreated, %d new %v", len(before), len(gone), len(recreated), len(created), created)
		fn := mustGet(t, "pkg.crossplane.io/v1", "Function", "", functionName)
		if getCondition(fn, "Healthy").Status != "True" {
			t.Errorf("Function %s: %s", functionName, conditionsSummary(fn))
		}
	})

	step(t, "re-install", func(t *testing.T) {
		start := time.Now()
		if err := lab.applyConfiguration(t.Context()); err != nil {
			t.Fatal(err)
		}
		var rev *unstructured.Unstructured
		revision := func() (healthy bool, c condition, err error) {
			cfg, err := lab.Kube.get(t.Context(), "pkg.crossplane.io/v1", "Configuration", "", configurationName)
			if err != nil || cfg == nil {
				return false, c, err
			}
			rev, err = lab.Kube.get(t.Context(), "pkg.crossplane.io/v1", "ConfigurationRevision", "", str(cfg, "status", "currentRevision"))
			if err != nil || rev == nil {
				return false, c, err
			}
			c = getCondition(rev, "RevisionHealthy")
			return c.Status == "True", c, nil
		}
		// The XRDs still name the deleted revision as their controller, so
		// the establisher cannot take control of them
		// (establisher.go update: meta.AddControllerReference refuses an
		// object controlled by another UID) until those stale owner
		// references are removed: the README's re-install step.
		var refused condition
		waitFor(t, "the new ConfigurationRevision healthy, or refusing the XRDs", 60*time.Second, func() (bool, string, error) {
			ok, c, err := revision()
			if !ok && strings.Contains(c.Message, "already controlled by") {
				refused = c
				return true, "", nil
			}
			return ok, c.Status + " " + c.Message, err
		})
		if refused.Message != "" {
			measure(t, "re-install: the new revision refuses the XRDs %s after the Configuration was applied: %s", time.Since(start).Round(100*time.Millisecond), refused.Message)
			for _, x := range xrds {
				c, err := lab.Kube.client(t.Context(), schema.GroupVersionKind{Group: "apiextensions.crossplane.io", Version: "v2", Kind: "CompositeResourceDefinition"}, "")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Patch(t.Context(), x, types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/ownerReferences"}]`), metav1.PatchOptions{}); err != nil {
					t.Fatalf("remove the owner references of XRD %s: %v", x, err)
				}
			}
		}
		waitFor(t, "the new ConfigurationRevision RevisionHealthy", 120*time.Second, func() (bool, string, error) {
			ok, c, err := revision()
			return ok, c.Status + " " + c.Message, err
		})
		if err := lab.waitConfigurationInstalled(t.Context(), time.Now().Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		installed := time.Since(start)
		for _, x := range xrds {
			u := mustGet(t, apiVersionXRD, "CompositeResourceDefinition", "", x)
			if u.GetUID() != xrdUIDs[x] {
				t.Errorf("XRD %s was recreated", x)
			}
			if c := metav1.GetControllerOf(u); c == nil || c.UID != rev.GetUID() {
				t.Errorf("XRD %s is controlled by %v, want the new ConfigurationRevision %s", x, c, rev.GetName())
			}
		}
		ready := map[string]time.Duration{}
		for _, xr := range []struct{ kind, ns, name string }{{kindProject, "", project}, {kindApplication, ns, app}, {kindServer, ns, srv}} {
			waitXRCondition(t, xr.kind, xr.ns, xr.name, "Synced", "True", "", 180*time.Second)
			waitReady(t, xr.kind, xr.ns, xr.name, 180*time.Second)
			ready[xr.kind] = time.Since(start)
		}
		after := uidSnapshot(t, project, ns)
		gone, recreated, created := compareSnapshots(before, after)
		if len(gone)+len(recreated) > 0 {
			t.Errorf("re-installing the Configuration deleted %v and recreated %v", gone, recreated)
		}
		measure(t, "re-install: Configuration installed and revision healthy %s after it was applied; Synced and Ready: project %s, application %s, server %s; %d objects compared: %d gone, %d recreated, %d new",
			installed.Round(100*time.Millisecond), ready[kindProject].Round(100*time.Millisecond), ready[kindApplication].Round(100*time.Millisecond),
			ready[kindServer].Round(100*time.Millisecond), len(before), len(gone), len(recreated), len(created))
	})

	step(t, "uninstall on purpose is allowed (dry run)", func(t *testing.T) {
		// The README's procedure: remove the XRDs' ClusterUsages, annotate
		// the XRDs, delete the Configuration. The dry-run DELETE goes
		// through the same admission (the policy and Crossplane's usage
		// webhook) without deleting anything.
		for _, x := range xrds {
			mustDelete(t, apiVersionProtection, "ClusterUsage", "", "kalypso-xrd-"+strings.TrimSuffix(x, "."+kalypsoGroup))
		}
		xc, err := lab.Kube.client(t.Context(), schema.GroupVersionKind{Group: "apiextensions.crossplane.io", Version: "v2", Kind: "CompositeResourceDefinition"}, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range xrds {
			waitFor(t, "XRD "+x+" no longer labelled in use", 60*time.Second, func() (bool, string, error) {
				u, err := lab.Kube.get(t.Context(), apiVersionXRD, "CompositeResourceDefinition", "", x)
				if err != nil || u == nil {
					return false, "absent", err
				}
				return u.GetLabels()[labelInUse] != "true", fmt.Sprintf("labels %v", u.GetLabels()), nil
			})
			if _, err := xc.Patch(t.Context(), x, types.MergePatchType, []byte(`{"metadata":{"annotations":{"serving.kalypso.io/allow-deletion":"true"}}}`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := xc.Delete(t.Context(), x, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Errorf("dry-run DELETE of the annotated XRD %s: %v", x, err)
			}
		}
		// Leave the lab as it was: nothing is deleted; the establisher
		// strips the annotation at its next reconcile anyway.
		for _, x := range xrds {
			if _, err := xc.Patch(t.Context(), x, types.MergePatchType, []byte(`{"metadata":{"annotations":{"serving.kalypso.io/allow-deletion":null}}}`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

const (
	apiVersionXRD = "apiextensions.crossplane.io/v2"
	labelInUse    = "crossplane.io/in-use"
)

func init() { testFlavours["TestPackageUninstall"] = []string{flavourPackages} }

// deletedSummary says what of a snapshot is gone or deleting, for a failure
// message.
func deletedSummary(t testing.TB, before map[string]types.UID) string {
	var gone []string
	for k := range before {
		kind, name, _ := strings.Cut(k, " ")
		ns, n, ok := strings.Cut(name, "/")
		if !ok {
			ns, n = "", name
		}
		apiVersion := apiVersionKalypso
		switch kind {
		case kindProject, kindApplication, kindServer:
		case "Namespace":
			apiVersion = "v1"
		default:
			continue
		}
		u, err := lab.Kube.get(t.Context(), apiVersion, kind, ns, n)
		switch {
		case err != nil:
			gone = append(gone, k+" ("+err.Error()+")")
		case u == nil:
			gone = append(gone, k+" gone")
		case u.GetDeletionTimestamp() != nil:
			gone = append(gone, k+" deleting")
		}
	}
	slices.Sort(gone)
	return strings.Join(gone, ", ")
}

// gcDenials counts, per XRD, the kube-controller-manager log lines where
// the XRD deletion policy refused the garbage collector's delete.
func gcDenials(xrds []string) string {
	b, err := os.ReadFile(filepath.Join(lab.LogDir, "kube-controller-manager.log"))
	if err != nil {
		return err.Error()
	}
	n := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "ValidatingAdmissionPolicy 'kalypso-xrd-deletion'") {
			continue
		}
		for _, x := range xrds {
			if strings.Contains(l, x) {
				n[x]++
			}
		}
	}
	var out []string
	for _, x := range xrds {
		out = append(out, fmt.Sprintf("%s %d", x, n[x]))
	}
	return strings.Join(out, ", ")
}
