package tritonserver

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Where a GCS credentials file is mounted.
const (
	gcsCredentialsDir  = "/var/run/secrets/kalypso/gcs"
	gcsCredentialsFile = "credentials.json"
	modelCacheDir      = "/var/lib/triton/model-cache"
)

// The private-CA trust store of S3 storage (storage.caBundle).
//
// Triton's S3 client sets no CA file or path on the AWS SDK's client
// configuration (triton-inference-server/core
// src/filesystem/implementations/s3.h, S3FileSystem's constructor), and
// aws-sdk-cpp's CurlHttpClient passes CURLOPT_CAINFO/CURLOPT_CAPATH to
// libcurl only when they are set (aws-sdk-cpp
// src/aws-cpp-sdk-core/source/http/curl/CurlHttpClient.cpp: "we only want to
// override the default path if someone has explicitly told us to"). So
// libcurl's built-in default decides: the runtime image installs Ubuntu's
// libcurl (triton-inference-server/server build.py,
// dockerfile_prepare_container_linux: libcurl4-openssl-dev), whose default
// CA bundle is the one update-ca-certificates writes,
// /etc/ssl/certs/ca-certificates.crt (Debian's curl packaging configures
// --with-ca-bundle to it; that packaging was not in the reference library
// and is cited from its known configuration). Neither Triton nor the SDK
// reads a variable to point elsewhere (libcurl itself reads none; the
// curl tool's CURL_CA_BUNDLE is not the library's), so the bundle is
// replaced: an init container of the server's own image concatenates the
// image's bundle and the user's CA into an emptyDir, and the Triton
// container mounts that one file over the image's bundle, read-only.
// Not run: no Triton image in the lab; the wiring is checked by unit,
// render and Pod Security tests only.
const (
	systemCABundle     = "/etc/ssl/certs/ca-certificates.crt"
	caBundleFile       = "ca-certificates.crt"
	caSourceVolume     = "storage-ca"
	caSourceDir        = "/var/run/kalypso/storage-ca"
	caSourceFile       = "ca.crt"
	caBundleVolume     = "storage-ca-bundle"
	caBundleDir        = "/var/run/kalypso/storage-ca-bundle"
	caInitContainer    = "storage-ca-bundle"
	defaultCABundleKey = "ca.crt"
)

// schemeProvider maps a storage URI scheme to the application's provider.
var schemeProvider = map[string]string{"s3": v1alpha1.StorageS3, "gs": v1alpha1.StorageGCS, "as": v1alpha1.StorageAzure}

// mountDirEnv is the variable that tells Triton where to download a cloud
// repository per provider; the folder is an emptyDir (the root file system
// is read-only).
var mountDirEnv = map[string]string{
	v1alpha1.StorageS3:    "TRITON_AWS_MOUNT_DIRECTORY",
	v1alpha1.StorageGCS:   "TRITON_GCS_MOUNT_DIRECTORY",
	v1alpha1.StorageAzure: "TRITON_AZURE_MOUNT_DIRECTORY",
}

// storageScheme returns the provider a storage URI belongs to.
func storageScheme(uri string) (string, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	provider, known := schemeProvider[scheme]
	if !ok || !known || strings.Trim(rest, "/") == "" || strings.HasPrefix(rest, "/") {
		return "", fmt.Errorf("spec.storageUri: %q must be s3://bucket/path, s3://host:port/bucket/path, gs://bucket/path or as://account/container/path", uri)
	}
	return provider, nil
}

// modelURI writes a custom S3 endpoint into the URI the way Triton expects
// it (docs/user_guide/model_repository.md, "S3"): s3://host:port/bucket/path
// for http and s3://https://host:port/bucket/path for https. A URI that
// already names a host is used as given.
func modelURI(uri, endpoint string) (string, error) {
	rest, isS3 := strings.CutPrefix(uri, "s3://")
	if !isS3 || endpoint == "" {
		return uri, nil
	}
	first, _, _ := strings.Cut(rest, "/")
	if strings.Contains(first, ":") { // bucket names cannot hold ':', so this is host:port or https:
		return uri, nil
	}
	e, err := httpBaseURL(endpoint)
	if err != nil || strings.Trim(e.Path, "/") != "" {
		return "", fmt.Errorf("the application's spec.storage.endpoint %q must be http(s)://host[:port] of an S3-compatible store", endpoint)
	}
	host := e.Host
	if e.Port() == "" {
		port := "80"
		if e.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(e.Hostname(), port)
	}
	if e.Scheme == "https" {
		return "s3://https://" + host + "/" + rest, nil
	}
	return "s3://" + host + "/" + rest, nil
}

// storageKeys returns the secret key names with their defaults.
func storageKeys(s *v1alpha1.StorageSpec) v1alpha1.StorageKeys {
	k := v1alpha1.StorageKeys{
		AccessKeyID: "AWS_ACCESS_KEY_ID", SecretAccessKey: "AWS_SECRET_ACCESS_KEY",
		GCSCredentials:      "gcs-credentials.json",
		AzureStorageAccount: "AZURE_STORAGE_ACCOUNT", AzureStorageKey: "AZURE_STORAGE_KEY",
		SessionToken: "AWS_SESSION_TOKEN",
	}
	if s.Keys == nil {
		return k
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&k.AccessKeyID, s.Keys.AccessKeyID)
	set(&k.SecretAccessKey, s.Keys.SecretAccessKey)
	set(&k.GCSCredentials, s.Keys.GCSCredentials)
	set(&k.AzureStorageAccount, s.Keys.AzureStorageAccount)
	set(&k.AzureStorageKey, s.Keys.AzureStorageKey)
	set(&k.SessionToken, s.Keys.SessionToken)
	return k
}

// tritonRelease is a Triton release, YY.MM (26.05 is {26, 5}); the zero
// value is an unknown release.
type tritonRelease struct{ year, month int }

func (r tritonRelease) known() bool { return r != tritonRelease{} }
func (r tritonRelease) before(o tritonRelease) bool {
	return r.year < o.year || r.year == o.year && r.month < o.month
}
func (r tritonRelease) String() string { return fmt.Sprintf("%02d.%02d", r.year, r.month) }

// releaseRE is how NGC tags Triton images: the release, then nothing or a
// variant after a dash (24.12-py3, 26.05-py3-min, 26.06-vllm-python-py3).
var releaseRE = regexp.MustCompile(`^([0-9]{2})\.(0[1-9]|1[0-2])(-|$)`)

func parseRelease(s string) (tritonRelease, bool) {
	m := releaseRE.FindStringSubmatch(s)
	if m == nil {
		return tritonRelease{}, false
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	return tritonRelease{y, mo}, true
}

// imageRelease is the Triton release of the server's image: the explicit
// spec.tritonConfig.version, else the one its tag starts with; zero when
// neither says. A version that contradicts a tag naming a release is a
// mistake in one of them, and refused.
func imageRelease(tc *v1alpha1.TritonConfig, platformTag string) (tritonRelease, error) {
	tag := platformTag
	version := ""
	if tc != nil {
		if tc.Tag != "" {
			tag = tc.Tag
		}
		version = tc.Version
	}
	fromTag, tagged := parseRelease(tag)
	if version == "" {
		return fromTag, nil
	}
	v, ok := parseRelease(version)
	if !ok || len(version) != len("YY.MM") {
		return tritonRelease{}, fmt.Errorf("spec.tritonConfig.version %q must be a Triton release YY.MM, e.g. 26.05", version)
	}
	if tagged && v != fromTag {
		return tritonRelease{}, fmt.Errorf("spec.tritonConfig.version %q disagrees with the image tag %q (Triton %s): remove spec.tritonConfig.version, or fix it", version, tag, fromTag)
	}
	return v, nil
}

// azureIdentityRelease is the first Triton release that authenticates to
// Azure with anything but an account key: triton-inference-server/core
// src/filesystem/implementations/as.h reads AZURE_STORAGE_AUTH_TYPE since
// commit eb2f06b ("Support Azure Managed Identity authentication", on
// branch r26.05, not on r26.04). Before it, ASFileSystem builds an
// anonymous client whenever AZURE_STORAGE_KEY is empty, whatever identity
// the pod has.
var azureIdentityRelease = tritonRelease{26, 5}

// azureAuthDefault selects Azure's DefaultAzureCredential in as.h
// (AZURE_STORAGE_AUTH_TYPE "key" | "managed_identity" | "default"). Its
// chain (azure-sdk-for-cpp sdk/identity/azure-identity/src/
// default_azure_credential.cpp) tries the environment, then
// WorkloadIdentityCredential, which reads what AKS Workload Identity
// injects, then ManagedIdentityCredential: it covers both Kubernetes
// cases, where "managed_identity" covers only the node's identity. (Read at
// the SDK's main branch. azure-identity added WorkloadIdentityCredential to
// the chain in 1.6.0, 2023-11 (sdk/identity/azure-identity/CHANGELOG.md);
// Triton's third_party builds the monorepo at the later tag
// azure-storage-blobs_12.13.0 on main, and r26.05's own pin was not in the
// reference snapshot.)
const azureAuthDefault = "default"

// storageAccess is how the Triton container reaches its model storage:
// environment, volumes, mounts, and the init containers that prepare
// them. Credentials are only ever referenced (secretKeyRef, a mounted
// secret), never copied.
type storageAccess struct {
	env            []corev1.EnvVar
	volumes        []corev1.Volume
	mounts         []corev1.VolumeMount
	initContainers []corev1.Container
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
	}}}
}

// accessInput is what the storage wiring depends on.
type accessInput struct {
	provider string
	storage  *v1alpha1.StorageSpec // the application's; nil: none
	// serviceAccount is the pod's: the server's own, else the storage's.
	serviceAccount string
	// release of the image, zero when unknown; image is its reference
	// (image:tag), which also builds the CA bundle.
	release tritonRelease
	image   string
}

// access builds the storage wiring for a provider, or the ApplicationReady
// condition saying why the storage cannot work with this server. Without a
// secret (keyless: IRSA, GKE or AKS Workload Identity) only the mount
// folder, the region and what the release needs are set: the service
// account's token does the rest.
//
// EKS keyless access is IRSA only. Triton pins aws-sdk-cpp 1.11.60
// (triton-inference-server/third_party CMakeLists.txt, r24.12 to r25.07 and
// main), whose default chain knows IRSA's web identity token but predates
// EKS Pod Identity's container-credentials authorization token
// (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, read by the later
// GeneralHTTPCredentialsProvider), so a Pod Identity association gives
// Triton no credentials.
func access(in accessInput) (storageAccess, *compose.Condition) {
	a := storageAccess{env: []corev1.EnvVar{{Name: mountDirEnv[in.provider], Value: modelCacheDir}}}
	s := in.storage
	if s == nil {
		s = &v1alpha1.StorageSpec{}
	}
	keys := storageKeys(s)
	switch in.provider {
	case v1alpha1.StorageS3:
		if s.SecretName != "" {
			// Triton reads AWS_SESSION_TOKEN with the key pair (s3.h,
			// S3Credential). Under its default name it is optional: long-term
			// keys have none. A key named in storage.keys is required: the
			// application checks the Secret has it.
			token := secretEnv("AWS_SESSION_TOKEN", s.SecretName, keys.SessionToken)
			if s.Keys == nil || s.Keys.SessionToken == "" {
				token.ValueFrom.SecretKeyRef.Optional = ptr.To(true)
			}
			a.env = append(a.env,
				secretEnv("AWS_ACCESS_KEY_ID", s.SecretName, keys.AccessKeyID),
				secretEnv("AWS_SECRET_ACCESS_KEY", s.SecretName, keys.SecretAccessKey),
				token)
		}
		if s.Region != "" {
			a.env = append(a.env, corev1.EnvVar{Name: "AWS_DEFAULT_REGION", Value: s.Region})
		}
		if s.CABundle != nil {
			caBundle(&a, s.CABundle, in.image)
		}
	case v1alpha1.StorageGCS:
		if s.SecretName != "" {
			a.env = append(a.env, corev1.EnvVar{Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: gcsCredentialsDir + "/" + gcsCredentialsFile})
			a.volumes = append(a.volumes, corev1.Volume{Name: "gcs-credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: s.SecretName, Items: []corev1.KeyToPath{{Key: keys.GCSCredentials, Path: gcsCredentialsFile}},
			}}})
			a.mounts = append(a.mounts, corev1.VolumeMount{Name: "gcs-credentials", MountPath: gcsCredentialsDir, ReadOnly: true})
		}
	case v1alpha1.StorageAzure:
		switch {
		case s.SecretName != "":
			// An account key: every release uses it (as.h).
			a.env = append(a.env,
				secretEnv("AZURE_STORAGE_ACCOUNT", s.SecretName, keys.AzureStorageAccount),
				secretEnv("AZURE_STORAGE_KEY", s.SecretName, keys.AzureStorageKey))
		case in.serviceAccount != "":
			if problem := azureKeyless(in); problem != nil {
				return storageAccess{}, problem
			}
			a.env = append(a.env, corev1.EnvVar{Name: "AZURE_STORAGE_AUTH_TYPE", Value: azureAuthDefault})
		}
		// Neither: a public container, read anonymously on purpose.
	}
	return a, nil
}

// azureKeyless refuses keyless Azure access on a release that would
// silently connect anonymously, or on an image whose release is unknown.
func azureKeyless(in accessInput) *compose.Condition {
	what := fmt.Sprintf("Azure storage through ServiceAccount %s (keyless) needs Triton %s or later", in.serviceAccount, azureIdentityRelease)
	switch {
	case !in.release.known():
		return &compose.Condition{Type: ConditionApplicationReady, Reason: "TritonVersionUnknown", Message: fmt.Sprintf(
			"%s, and the tag of image %s does not say which Triton release it is: set spec.tritonConfig.version (YY.MM, e.g. %s)",
			what, in.image, azureIdentityRelease)}
	case in.release.before(azureIdentityRelease):
		return &compose.Condition{Type: ConditionApplicationReady, Reason: "StorageIdentityUnsupported", Message: fmt.Sprintf(
			"%s, and image %s is Triton %s, which connects to Azure anonymously: use spec.tritonConfig.tag %s-py3 or later, or an account key Secret in the application's spec.storage.secretName",
			what, in.image, in.release, azureIdentityRelease)}
	}
	return nil
}

// caBundle adds the private-CA trust store (see systemCABundle): the CA
// file projected from its Secret or ConfigMap, an init container that
// writes the image's bundle plus the CA into an emptyDir, and the mount of
// that file over the image's bundle.
func caBundle(a *storageAccess, ca *v1alpha1.StorageCABundle, image string) {
	key := ca.Key
	if key == "" {
		key = defaultCABundleKey
	}
	items := []corev1.KeyToPath{{Key: key, Path: caSourceFile}}
	source := corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: ca.SecretName, Items: items}}
	if ca.ConfigMapName != "" {
		source = corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: ca.ConfigMapName}, Items: items}}
	}
	a.volumes = append(a.volumes,
		corev1.Volume{Name: caSourceVolume, VolumeSource: source},
		corev1.Volume{Name: caBundleVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	// The echo keeps a bundle without a final newline from gluing its last
	// END line to the CA's BEGIN line.
	script := fmt.Sprintf("{ cat %s; echo; cat %s/%s; } > %s/%s", systemCABundle, caSourceDir, caSourceFile, caBundleDir, caBundleFile)
	a.initContainers = append(a.initContainers, corev1.Container{
		Name:    caInitContainer,
		Image:   image,
		Command: []string{"/bin/sh", "-ec", script},
		VolumeMounts: []corev1.VolumeMount{
			{Name: caSourceVolume, MountPath: caSourceDir, ReadOnly: true},
			{Name: caBundleVolume, MountPath: caBundleDir},
		},
		SecurityContext: restrictedContainer(),
	})
	a.mounts = append(a.mounts, corev1.VolumeMount{Name: caBundleVolume, MountPath: systemCABundle, SubPath: caBundleFile, ReadOnly: true})
}

// restrictedContainer is the container security context of the Triton
// container (deployment.go), for the init container: Pod Security
// restricted (no privilege escalation, every capability dropped, non-root)
// and a read-only root file system. TestComposePrivateCA keeps the two
// equal.
func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
	}
}

// tritonImage is the image reference the server runs (the server's image
// and tag over the platform's): the Triton container's and the CA-bundle
// init container's.
func tritonImage(tc *v1alpha1.TritonConfig, p compose.Platform) string {
	image, tag := p.TritonImage, p.TritonTag
	if tc != nil {
		if tc.Image != "" {
			image = tc.Image
		}
		if tc.Tag != "" {
			tag = tc.Tag
		}
	}
	return image + ":" + tag
}

// storageWiring is the server's storage access from the application's
// storage snapshot, with the pod's service account and the image's
// release; or the condition that blocks (re)building the Deployment.
func (c *Composer) storageWiring(p compose.Platform, provider string, snap *v1alpha1.ServerApplicationStatus) (storageAccess, *compose.Condition) {
	release, _ := imageRelease(c.spec.TritonConfig, p.TritonTag) // refused before (checkVersion)
	return access(accessInput{
		provider: provider, storage: snap.Storage, serviceAccount: c.serviceAccount(snap),
		release: release, image: tritonImage(c.spec.TritonConfig, p),
	})
}

// serviceAccount is the pod's service account: the server's own, else the
// application storage's keyless one.
func (c *Composer) serviceAccount(snap *v1alpha1.ServerApplicationStatus) string {
	if c.spec.ServiceAccountName != "" || snap == nil || snap.Storage == nil {
		return c.spec.ServiceAccountName
	}
	return snap.Storage.ServiceAccountName
}

// checkVersion refuses a spec.tritonConfig.version that is malformed or
// contradicts the tag.
func checkVersion(tc *v1alpha1.TritonConfig, platformTag string) error {
	_, err := imageRelease(tc, platformTag)
	return err
}
