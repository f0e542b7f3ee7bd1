//go:build e2e

package e2e

// The packages flavour: the Configuration is installed by Crossplane's
// package manager, from the packages `make xpkg` built, pushed under their
// release paths to an OCI registry on loopback (TLS, lab CA). An ImageConfig
// rewrites xpkg.crossplane.io/kalypsoserving to that registry, so the
// dependency's Function keeps its release name. Core runs with
// --package-runtime=External: it never starts the function. The lab plays
// the external runtime: it runs the function as a process (startFunction)
// and writes its endpoint and RuntimeHealthy onto the package-created
// Active FunctionRevision (servePackageFunction).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const (
	releaseRegistry   = "xpkg.crossplane.io"
	configurationName = "kalypsoserving-configuration-kalypso"
	imageConfigName   = "kalypso-e2e-loopback"
	kalypsoGroup      = "serving.kalypso.io"
)

// registryAddr is the loopback registry's host:port.
var registryAddr string

// packageEndpointPatches counts the status writes servePackageFunction made.
var packageEndpointPatches atomic.Int64

type packageSettings struct {
	registry, cli, org, version, xpkgDir string
}

func packagesFromEnv() (packageSettings, error) {
	s := packageSettings{
		registry: os.Getenv("E2E_REGISTRY"),
		cli:      os.Getenv("E2E_CROSSPLANE_CLI"),
		org:      os.Getenv("E2E_PACKAGE_ORG"),
		version:  os.Getenv("E2E_PACKAGE_VERSION"),
		xpkgDir:  os.Getenv("E2E_XPKG_DIR"),
	}
	if s.registry == "" || s.cli == "" || s.org == "" || s.version == "" || s.xpkgDir == "" {
		return s, fmt.Errorf("the packages flavour needs E2E_REGISTRY, E2E_CROSSPLANE_CLI, E2E_PACKAGE_ORG, E2E_PACKAGE_VERSION and E2E_XPKG_DIR: run it with `make e2e-packages`")
	}
	for _, f := range append([]string{s.registry, s.cli, s.xpkg("configuration-kalypso")}, s.functionXpkgs()...) {
		if _, err := os.Stat(f); err != nil {
			return s, fmt.Errorf("%s missing: run `make e2e-packages` (it runs `make xpkg`)", f)
		}
	}
	return s, nil
}

func (s packageSettings) xpkg(name string) string {
	return filepath.Join(s.xpkgDir, name+"-"+s.version+".xpkg")
}

// functionPlatforms are the platforms test/package/package.mk builds a
// Function package for (FUNCTION_PLATFORMS); the lab pushes them as one
// index, as `make xpkg-push` does.
var functionPlatforms = []string{"amd64", "arm64"}

// functionXpkgs are the per-platform Function packages, in
// functionPlatforms order.
func (s packageSettings) functionXpkgs() []string {
	var out []string
	for _, arch := range functionPlatforms {
		out = append(out, filepath.Join(s.xpkgDir, "function-kalypso-"+s.version+"-linux-"+arch+".xpkg"))
	}
	return out
}

// releaseRef is a package's release path, as the Configuration and its
// dependency name it.
func (s packageSettings) releaseRef(name string) string {
	return fmt.Sprintf("%s/%s/%s:%s", releaseRegistry, s.org, name, s.version)
}

// startRegistry serves go-containerregistry's in-memory registry over TLS
// with a serving certificate from the lab CA (test/e2e/registry).
func (l *Lab) startRegistry(context.Context) error {
	s, err := packagesFromEnv()
	if err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	registryAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	p, err := l.start("registry", s.registry, []string{
		"-address=" + registryAddr,
		"-tls-cert=" + filepath.Join(certs.registryDir, "tls.crt"),
		"-tls-key=" + filepath.Join(certs.registryDir, "tls.key"),
	})
	if err != nil {
		return err
	}
	return waitTCP(p, registryAddr, 30*time.Second)
}

// pushPackages pushes the Function and the Configuration with the pinned
// CLI to the loopback registry, under their release repository paths. The
// Function goes as one image index of its per-platform packages
// (`crossplane xpkg push -f amd64.xpkg,arm64.xpkg`), which the package
// manager then installs from. The CLI trusts the lab CA through
// SSL_CERT_FILE and gets no credentials.
func (l *Lab) pushPackages(ctx context.Context) error {
	s, err := packagesFromEnv()
	if err != nil {
		return err
	}
	dockerConfig := filepath.Join(l.workDir, "docker-config")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(l.LogDir, "xpkg-push.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	for _, name := range []string{"function-kalypso", "configuration-kalypso"} {
		ref := fmt.Sprintf("%s/%s/%s:%s", registryAddr, s.org, name, s.version)
		files := s.xpkg(name)
		if name == "function-kalypso" {
			files = strings.Join(s.functionXpkgs(), ",")
		}
		cmd := exec.CommandContext(ctx, s.cli, "xpkg", "push", "-f", files, ref)
		cmd.Env = append(os.Environ(),
			"SSL_CERT_FILE="+filepath.Join(certs.registryDir, "ca.crt"),
			"DOCKER_CONFIG="+dockerConfig,
			"REGISTRY_AUTH_FILE="+filepath.Join(dockerConfig, "none.json"))
		fmt.Fprintf(logf, "$ %s\n", strings.Join(cmd.Args, " "))
		cmd.Stdout, cmd.Stderr = logf, logf
		t := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("crossplane xpkg push %s: %w (see %s)", ref, err, logf.Name())
		}
		l.timed("  pushed "+name, t)
	}
	return nil
}

// installConfiguration redirects the release paths to the loopback
// registry with an ImageConfig, applies the Configuration, plays the
// function's external runtime, and waits until the package manager has
// installed the Configuration and its XRDs are established.
func (l *Lab) installConfiguration(ctx context.Context) error {
	s, err := packagesFromEnv()
	if err != nil {
		return err
	}
	ic := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "pkg.crossplane.io/v1beta1",
		"kind":       "ImageConfig",
		"metadata":   map[string]any{"name": imageConfigName},
		"spec": map[string]any{
			"matchImages":  []any{map[string]any{"type": "Prefix", "prefix": releaseRegistry + "/" + s.org}},
			"rewriteImage": map[string]any{"prefix": registryAddr + "/" + s.org},
		},
	}}
	if _, err := l.Kube.apply(ctx, ic); err != nil {
		return fmt.Errorf("ImageConfig: %w", err)
	}
	if err := l.applyConfiguration(ctx); err != nil {
		return err
	}
	go l.servePackageFunction()
	return l.waitConfigurationInstalled(ctx, time.Now().Add(3*time.Minute))
}

// applyConfiguration creates (or re-creates) the Configuration, as a
// platform team installs it.
func (l *Lab) applyConfiguration(ctx context.Context) error {
	s, err := packagesFromEnv()
	if err != nil {
		return err
	}
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "pkg.crossplane.io/v1",
		"kind":       "Configuration",
		"metadata":   map[string]any{"name": configurationName},
		"spec": map[string]any{
			"package":           s.releaseRef("configuration-kalypso"),
			"packagePullPolicy": "IfNotPresent",
		},
	}}
	if _, err := l.Kube.apply(ctx, cfg); err != nil {
		return fmt.Errorf("Configuration: %w", err)
	}
	return nil
}

// waitConfigurationInstalled waits until the package manager has installed
// the Configuration, its XRDs are established and core's grants for them
// exist.
func (l *Lab) waitConfigurationInstalled(ctx context.Context, deadline time.Time) error {
	for {
		u, err := l.Kube.get(ctx, "pkg.crossplane.io/v1", "Configuration", "", configurationName)
		if err != nil {
			return err
		}
		if u != nil && getCondition(u, "Installed").Status == "True" && getCondition(u, "Healthy").Status == "True" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Configuration %s not Installed and Healthy: %s; Function %s: %s", configurationName,
				l.summary(ctx, "Configuration", configurationName), functionName, l.summary(ctx, "Function", functionName))
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The XRDs the package manager created, and core's grants for them.
	var xrds []*unstructured.Unstructured
	for time.Now().Before(deadline) {
		xrds = xrds[:0]
		items, err := l.Kube.list(ctx, "apiextensions.crossplane.io/v2", "CompositeResourceDefinition", "")
		if err != nil {
			return err
		}
		established := 0
		for i := range items {
			if strings.HasSuffix(items[i].GetName(), "."+kalypsoGroup) {
				xrds = append(xrds, &items[i])
				if getCondition(&items[i], "Established").Status == "True" {
					established++
				}
			}
		}
		if len(xrds) >= 3 && established == len(xrds) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(xrds) < 3 {
		return fmt.Errorf("the package manager created %d Kalypso XRDs, want 3", len(xrds))
	}
	if renderRolesInstead {
		if err := l.renderXRDRoles(ctx, xrds); err != nil {
			return err
		}
	}
	for _, x := range xrds {
		role := "crossplane:composite:" + x.GetName() + ":aggregate-to-crossplane"
		for {
			if _, err := l.Kube.Typed.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{}); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("ClusterRole %s was not created by the RBAC manager", role)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func (l *Lab) summary(ctx context.Context, kind, name string) string {
	u, err := l.Kube.get(ctx, "pkg.crossplane.io/v1", kind, "", name)
	if err != nil {
		return err.Error()
	}
	if u == nil {
		return "not found"
	}
	return conditionsSummary(u)
}

// servePackageFunction is the lab's external package runtime: every
// Active FunctionRevision of the function that the package manager created
// gets the endpoint of the function process the lab runs and
// RuntimeHealthy=True. A real cluster runs
// the package's image in a Deployment instead (the Deployment runtime),
// whose Service becomes the endpoint. It runs until the test binary exits;
// a status write the revision reconciler overwrites is made again.
func (l *Lab) servePackageFunction() {
	ctx := context.Background()
	gvk := schema.GroupVersionKind{Group: "pkg.crossplane.io", Version: "v1", Kind: "FunctionRevision"}
	endpoint := "dns:///" + functionAddr
	// The Deployment runtime also creates the function's TLS server Secret
	// and names it in the revision's status; the establisher waits for it
	// (it would put its tls.crt into a conversion webhook's CA bundle). The
	// lab's is the function process's own serving certificate.
	secret := functionName + "-tls-server"
	for {
		if err := l.functionTLSSecret(ctx, secret); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for {
		time.Sleep(250 * time.Millisecond)
		c, err := l.Kube.client(ctx, gvk, "")
		if err != nil {
			continue
		}
		list, err := c.List(ctx, metav1.ListOptions{LabelSelector: "pkg.crossplane.io/package=" + functionName})
		if err != nil {
			continue
		}
		for i := range list.Items {
			rev := &list.Items[i]
			if s, _, _ := unstructured.NestedString(rev.Object, "spec", "desiredState"); s != "Active" {
				continue
			}
			changed := false
			if ep, _, _ := unstructured.NestedString(rev.Object, "status", "endpoint"); ep != endpoint {
				_ = unstructured.SetNestedField(rev.Object, endpoint, "status", "endpoint")
				changed = true
			}
			// Not status.capabilities: the revision reconciler copies them
			// from the package's metadata (package/crossplane.yaml), and
			// TestPackages checks that it did.
			if n, _, _ := unstructured.NestedString(rev.Object, "status", "tlsServerSecretName"); n != secret {
				_ = unstructured.SetNestedField(rev.Object, secret, "status", "tlsServerSecretName")
				changed = true
			}
			if getCondition(rev, "RuntimeHealthy").Status != "True" {
				conds, _, _ := unstructured.NestedSlice(rev.Object, "status", "conditions")
				var out []any
				for _, c := range conds {
					if m, ok := c.(map[string]any); ok && m["type"] == "RuntimeHealthy" {
						continue
					}
					out = append(out, c)
				}
				out = append(out, map[string]any{
					"type": "RuntimeHealthy", "status": "True", "reason": "HealthyPackageRevision",
					"message":            "external runtime: the e2e lab's function process at " + functionAddr,
					"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
				})
				_ = unstructured.SetNestedSlice(rev.Object, out, "status", "conditions")
				changed = true
			}
			if !changed {
				continue
			}
			if _, err := c.UpdateStatus(ctx, rev, metav1.UpdateOptions{}); err == nil {
				packageEndpointPatches.Add(1)
			}
		}
	}
}

// functionTLSSecret writes the function's serving certificate as the
// Secret a package runtime would create for it.
func (l *Lab) functionTLSSecret(ctx context.Context, name string) error {
	data := map[string][]byte{}
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		b, err := os.ReadFile(filepath.Join(certs.fnServerDir, f))
		if err != nil {
			return err
		}
		data[f] = b
	}
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: crossplaneNamespace},
		Type:       corev1.SecretTypeTLS,
		Data:       data,
	}
	return l.applyTyped(ctx, sec)
}

// pkgVersion is the packages' VERSION (E2E_PACKAGE_VERSION).
func (l *Lab) pkgVersion() string { return os.Getenv("E2E_PACKAGE_VERSION") }

// wantFunctionRange is the Configuration's constraint on the Function as the
// top Makefile derives it from VERSION (FUNCTION_VERSION_RANGE): any patch
// of its minor, comma-separated, with -0 on both bounds for a pre-release
// VERSION.
func wantFunctionRange(version string) string {
	core, _, pre := strings.Cut(strings.TrimPrefix(version, "v"), "-")
	core, _, _ = strings.Cut(core, "+")
	xyz := strings.Split(core, ".")
	if len(xyz) != 3 {
		return "invalid VERSION " + version
	}
	minor, err := strconv.Atoi(xyz[1])
	if err != nil {
		return "invalid VERSION " + version
	}
	suffix := ""
	if pre {
		suffix = "-0"
	}
	return fmt.Sprintf(">=v%s.%d.0%s, <v%s.%d.0%s", xyz[0], minor, suffix, xyz[0], minor+1, suffix)
}

// registryIndexPlatforms reads repo:tag's manifest from the loopback
// registry (trusting the lab CA) and returns its media type and, for an
// image index, its entries' os/architecture.
func registryIndexPlatforms(repo, tag string) (platforms []string, mediaType string, err error) {
	ca, err := os.ReadFile(filepath.Join(certs.registryDir, "ca.crt"))
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://%s/v2/%s/manifests/%s", registryAddr, repo, tag), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	}, ", "))
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, "", err
	}
	mediaType = m.MediaType
	if mediaType == "" {
		mediaType = resp.Header.Get("Content-Type")
	}
	for _, e := range m.Manifests {
		platforms = append(platforms, e.Platform.OS+"/"+e.Platform.Architecture)
	}
	slices.Sort(platforms)
	return platforms, mediaType, nil
}
