package tritonserver

import (
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

func TestStorageScheme(t *testing.T) {
	cases := map[string]struct {
		reason string
		uri    string
		want   string // provider; "" means an error
	}{
		"S3":           {reason: "s3:// is S3.", uri: "s3://models/resnet", want: v1alpha1.StorageS3},
		"S3HostPort":   {reason: "A custom endpoint in the URI is still S3.", uri: "s3://minio.minio.svc:9000/models/resnet", want: v1alpha1.StorageS3},
		"S3Bucket":     {reason: "A bucket alone is a repository.", uri: "s3://models", want: v1alpha1.StorageS3},
		"GCS":          {reason: "gs:// is GCS.", uri: "gs://models/resnet", want: v1alpha1.StorageGCS},
		"Azure":        {reason: "as:// is Azure.", uri: "as://account/container/resnet", want: v1alpha1.StorageAzure},
		"HTTP":         {reason: "Triton cannot load a repository over plain http.", uri: "http://minio/models"},
		"Empty":        {reason: "s3:// without a bucket names nothing.", uri: "s3://"},
		"OnlySlashes":  {reason: "Slashes are not a bucket.", uri: "s3:///"},
		"Unknown":      {reason: "Unknown schemes are refused.", uri: "ftp://models/resnet"},
		"NoScheme":     {reason: "A path without a scheme is not a cloud repository.", uri: "models/resnet"},
		"UpperCase":    {reason: "Schemes are lower case (the XRD pattern says so).", uri: "S3://models/resnet"},
		"SingleSlash":  {reason: "s3:/x is a typo.", uri: "s3:/models"},
		"LocalPath":    {reason: "Local paths need a volume the server does not have.", uri: "/models"},
		"NothingAtAll": {reason: "Empty is refused.", uri: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := storageScheme(tc.uri)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "spec.storageUri: \""+tc.uri+"\"") {
					t.Fatalf("%s\nwant an error naming spec.storageUri and the URI, got %q, %v", tc.reason, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%s\nstorageScheme(%q): want %q, got %q, %v", tc.reason, tc.uri, tc.want, got, err)
			}
		})
	}
}

func TestModelURI(t *testing.T) {
	cases := map[string]struct {
		reason   string
		uri      string
		endpoint string
		want     string
		wantErr  string
	}{
		"NoEndpoint":         {reason: "AWS S3: the URI as given.", uri: "s3://models/resnet", want: "s3://models/resnet"},
		"HTTPEndpoint":       {reason: "Triton's grammar for a custom endpoint: s3://host:port/bucket/path.", uri: "s3://models/resnet", endpoint: "http://minio.minio.svc:9000", want: "s3://minio.minio.svc:9000/models/resnet"},
		"HTTPSEndpoint":      {reason: "https is spelt inside the URI: s3://https://host:port/....", uri: "s3://models/resnet", endpoint: "https://minio.example.com:9443", want: "s3://https://minio.example.com:9443/models/resnet"},
		"HTTPDefaultPort":    {reason: "Triton needs the port: http means 80.", uri: "s3://models/resnet", endpoint: "http://minio.minio.svc", want: "s3://minio.minio.svc:80/models/resnet"},
		"HTTPSDefaultPort":   {reason: "Triton needs the port: https means 443.", uri: "s3://models/resnet", endpoint: "https://s3.eu-west-1.amazonaws.com", want: "s3://https://s3.eu-west-1.amazonaws.com:443/models/resnet"},
		"TrailingSlash":      {reason: "A trailing slash on the endpoint is not a path.", uri: "s3://models", endpoint: "http://minio:9000/", want: "s3://minio:9000/models"},
		"IPv6":               {reason: "IPv6 hosts keep their brackets.", uri: "s3://models/resnet", endpoint: "http://[fd00::1]", want: "s3://[fd00::1]:80/models/resnet"},
		"URIHasHost":         {reason: "A URI that already names host:port is used as given.", uri: "s3://minio.other:9000/models/resnet", endpoint: "http://minio.minio.svc:9000", want: "s3://minio.other:9000/models/resnet"},
		"URIHasHTTPS":        {reason: "A URI that already says https is used as given.", uri: "s3://https://minio.other:9443/models/resnet", endpoint: "http://minio.minio.svc:9000", want: "s3://https://minio.other:9443/models/resnet"},
		"GCSUnchanged":       {reason: "An S3 endpoint means nothing to GCS.", uri: "gs://models/resnet", endpoint: "http://minio:9000", want: "gs://models/resnet"},
		"AzureUnchanged":     {reason: "An S3 endpoint means nothing to Azure.", uri: "as://acct/models/resnet", endpoint: "http://minio:9000", want: "as://acct/models/resnet"},
		"EndpointNoScheme":   {reason: "host:port alone is ambiguous (http or https?).", uri: "s3://models/resnet", endpoint: "minio:9000", wantErr: `the application's spec.storage.endpoint "minio:9000"`},
		"EndpointWithPath":   {reason: "Triton's grammar has no room for an endpoint path.", uri: "s3://models/resnet", endpoint: "http://gw.example.com/s3", wantErr: `spec.storage.endpoint "http://gw.example.com/s3"`},
		"EndpointFTP":        {reason: "Only http(s).", uri: "s3://models/resnet", endpoint: "ftp://minio:21", wantErr: `spec.storage.endpoint "ftp://minio:21"`},
		"EndpointUnparsable": {reason: "A URL that does not parse.", uri: "s3://models/resnet", endpoint: "http://minio:port", wantErr: `spec.storage.endpoint "http://minio:port"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := modelURI(tc.uri, tc.endpoint)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nwant error containing %q, got %q, %v", tc.reason, tc.wantErr, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%s\nmodelURI(%q, %q): want %q, got %q, %v", tc.reason, tc.uri, tc.endpoint, tc.want, got, err)
			}
		})
	}
}

func TestImageRelease(t *testing.T) {
	cases := map[string]struct {
		reason      string
		tc          *v1alpha1.TritonConfig
		platformTag string
		want        tritonRelease
		wantErr     string
	}{
		"PlatformTag":      {reason: "The platform's tag names the release.", platformTag: "24.12-py3", want: tritonRelease{24, 12}},
		"ServerTag":        {reason: "The server's tag wins over the platform's.", tc: &v1alpha1.TritonConfig{Tag: "26.05-py3"}, platformTag: "24.12-py3", want: tritonRelease{26, 5}},
		"VariantTag":       {reason: "Every NGC variant starts with the release.", tc: &v1alpha1.TritonConfig{Tag: "26.06-vllm-python-py3"}, platformTag: "24.12-py3", want: tritonRelease{26, 6}},
		"BareRelease":      {reason: "A tag that is only the release.", tc: &v1alpha1.TritonConfig{Tag: "26.05"}, want: tritonRelease{26, 5}},
		"CustomTag":        {reason: "A custom image's own tag says nothing: unknown.", tc: &v1alpha1.TritonConfig{Image: "registry.example.com/ml/triton", Tag: "v3"}, platformTag: "24.12-py3"},
		"NotAMonth":        {reason: "26.13 is not a release.", tc: &v1alpha1.TritonConfig{Tag: "26.13-py3"}},
		"FourDigits":       {reason: "2605 is not YY.MM.", tc: &v1alpha1.TritonConfig{Tag: "2605-py3"}},
		"LongYear":         {reason: "2026.05 is not YY.MM.", tc: &v1alpha1.TritonConfig{Tag: "2026.05-py3"}},
		"NoSeparator":      {reason: "26.05py3 is not a release followed by a variant.", tc: &v1alpha1.TritonConfig{Tag: "26.05py3"}},
		"VersionForCustom": {reason: "The version field names the release of a custom image.", tc: &v1alpha1.TritonConfig{Image: "registry.example.com/ml/triton", Tag: "v3", Version: "26.05"}, want: tritonRelease{26, 5}},
		"VersionAgrees":    {reason: "A version that repeats the tag is fine.", tc: &v1alpha1.TritonConfig{Tag: "26.05-py3", Version: "26.05"}, want: tritonRelease{26, 5}},
		"VersionDisagrees": {
			reason: "A version that contradicts the tag is refused: one of them is wrong.",
			tc:     &v1alpha1.TritonConfig{Tag: "24.12-py3", Version: "26.05"}, platformTag: "24.12-py3",
			wantErr: `spec.tritonConfig.version "26.05" disagrees with the image tag "24.12-py3" (Triton 24.12)`,
		},
		"VersionDisagreesWithPlatformTag": {
			reason: "The platform's tag counts when the server sets none.",
			tc:     &v1alpha1.TritonConfig{Version: "26.05"}, platformTag: "24.12-py3",
			wantErr: `spec.tritonConfig.version "26.05" disagrees with the image tag "24.12-py3"`,
		},
		"VersionMalformed": {
			reason:  "A stored object from before the XRD's pattern: refused with the format.",
			tc:      &v1alpha1.TritonConfig{Tag: "v3", Version: "26.5"},
			wantErr: `spec.tritonConfig.version "26.5" must be a Triton release YY.MM, e.g. 26.05`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := imageRelease(tc.tc, tc.platformTag)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nwant error containing %q, got %v, %v", tc.reason, tc.wantErr, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%s\nimageRelease: want %v, got %v, %v", tc.reason, tc.want, got, err)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	mountEnv := func(provider string) corev1.EnvVar {
		return corev1.EnvVar{Name: mountDirEnv[provider], Value: modelCacheDir}
	}
	optionalSecretEnv := func(name, secret, key string) corev1.EnvVar {
		e := secretEnv(name, secret, key)
		e.ValueFrom.SecretKeyRef.Optional = ptr.To(true)
		return e
	}
	const image = "nvcr.io/nvidia/tritonserver:26.05-py3"
	r2412, r2605 := tritonRelease{24, 12}, tritonRelease{26, 5}
	caInit := func(source corev1.VolumeSource) storageAccess {
		return storageAccess{
			initContainers: []corev1.Container{{
				Name:    "storage-ca-bundle",
				Image:   image,
				Command: []string{"/bin/sh", "-ec", "{ cat /etc/ssl/certs/ca-certificates.crt; echo; cat /var/run/kalypso/storage-ca/ca.crt; } > /var/run/kalypso/storage-ca-bundle/ca-certificates.crt"},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "storage-ca", MountPath: "/var/run/kalypso/storage-ca", ReadOnly: true},
					{Name: "storage-ca-bundle", MountPath: "/var/run/kalypso/storage-ca-bundle"},
				},
				SecurityContext: restrictedContainer(),
			}},
			volumes: []corev1.Volume{
				{Name: "storage-ca", VolumeSource: source},
				{Name: "storage-ca-bundle", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			mounts: []corev1.VolumeMount{{Name: "storage-ca-bundle", MountPath: "/etc/ssl/certs/ca-certificates.crt", SubPath: "ca-certificates.crt", ReadOnly: true}},
		}
	}
	withEnv := func(a storageAccess, env ...corev1.EnvVar) storageAccess {
		a.env = env
		return a
	}
	cases := map[string]struct {
		reason  string
		in      accessInput
		want    storageAccess
		problem string // "Reason: message substring"
	}{
		"S3Secret": {
			reason: "Keys come from the secret by reference, under the default key names; the session token if the Secret has it; the region is plain.",
			in:     accessInput{provider: v1alpha1.StorageS3, storage: &v1alpha1.StorageSpec{Provider: "s3", SecretName: "models-creds", Region: "eu-west-1"}},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageS3),
				secretEnv("AWS_ACCESS_KEY_ID", "models-creds", "AWS_ACCESS_KEY_ID"),
				secretEnv("AWS_SECRET_ACCESS_KEY", "models-creds", "AWS_SECRET_ACCESS_KEY"),
				optionalSecretEnv("AWS_SESSION_TOKEN", "models-creds", "AWS_SESSION_TOKEN"),
				{Name: "AWS_DEFAULT_REGION", Value: "eu-west-1"},
			}},
		},
		"S3CustomKeys": {
			reason: "Custom key names (a MinIO secret) are read under Triton's variable names.",
			in:     accessInput{provider: v1alpha1.StorageS3, storage: &v1alpha1.StorageSpec{SecretName: "minio", Keys: &v1alpha1.StorageKeys{AccessKeyID: "rootUser", SecretAccessKey: "rootPassword"}}},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageS3),
				secretEnv("AWS_ACCESS_KEY_ID", "minio", "rootUser"),
				secretEnv("AWS_SECRET_ACCESS_KEY", "minio", "rootPassword"),
				optionalSecretEnv("AWS_SESSION_TOKEN", "minio", "AWS_SESSION_TOKEN"),
			}},
		},
		"S3SessionTokenKey": {
			reason: "A named session token key is required: the application checks the Secret has it, and the pod does not start without it.",
			in: accessInput{provider: v1alpha1.StorageS3, storage: &v1alpha1.StorageSpec{SecretName: "sts", Region: "us-east-1",
				Keys: &v1alpha1.StorageKeys{SessionToken: "token"}}},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageS3),
				secretEnv("AWS_ACCESS_KEY_ID", "sts", "AWS_ACCESS_KEY_ID"),
				secretEnv("AWS_SECRET_ACCESS_KEY", "sts", "AWS_SECRET_ACCESS_KEY"),
				secretEnv("AWS_SESSION_TOKEN", "sts", "token"),
				{Name: "AWS_DEFAULT_REGION", Value: "us-east-1"},
			}},
		},
		"S3Keyless": {
			reason: "IRSA: no secret, only the mount folder and the region; the service account's token does the rest.",
			in:     accessInput{provider: v1alpha1.StorageS3, storage: &v1alpha1.StorageSpec{ServiceAccountName: "models-reader", Region: "us-east-1"}, serviceAccount: "models-reader"},
			want:   storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageS3), {Name: "AWS_DEFAULT_REGION", Value: "us-east-1"}}},
		},
		"S3PrivateCAFromSecret": {
			reason: "A CA from a Secret: an init container of the same image writes the system bundle plus the CA into an emptyDir, mounted over the system bundle.",
			in: accessInput{provider: v1alpha1.StorageS3, image: image, storage: &v1alpha1.StorageSpec{ServiceAccountName: "models-reader",
				CABundle: &v1alpha1.StorageCABundle{SecretName: "minio-ca", Key: "ca.crt"}}, serviceAccount: "models-reader"},
			want: withEnv(caInit(corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "minio-ca", Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}}),
				mountEnv(v1alpha1.StorageS3)),
		},
		"S3PrivateCAFromConfigMap": {
			reason: "A CA from a ConfigMap (a trust-manager bundle), under its own key.",
			in: accessInput{provider: v1alpha1.StorageS3, image: image, storage: &v1alpha1.StorageSpec{SecretName: "minio",
				CABundle: &v1alpha1.StorageCABundle{ConfigMapName: "corp-ca", Key: "bundle.pem"}}},
			want: withEnv(caInit(corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "corp-ca"}, Items: []corev1.KeyToPath{{Key: "bundle.pem", Path: "ca.crt"}}}}),
				mountEnv(v1alpha1.StorageS3),
				secretEnv("AWS_ACCESS_KEY_ID", "minio", "AWS_ACCESS_KEY_ID"),
				secretEnv("AWS_SECRET_ACCESS_KEY", "minio", "AWS_SECRET_ACCESS_KEY"),
				optionalSecretEnv("AWS_SESSION_TOKEN", "minio", "AWS_SESSION_TOKEN")),
		},
		"S3PrivateCADefaultKey": {
			reason: "A stored object without the defaulted key reads ca.crt.",
			in: accessInput{provider: v1alpha1.StorageS3, image: image, storage: &v1alpha1.StorageSpec{ServiceAccountName: "models-reader",
				CABundle: &v1alpha1.StorageCABundle{SecretName: "minio-ca"}}, serviceAccount: "models-reader"},
			want: withEnv(caInit(corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "minio-ca", Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}}),
				mountEnv(v1alpha1.StorageS3)),
		},
		"GCSSecret": {
			reason: "GCS reads a credentials file: the secret is mounted read-only and GOOGLE_APPLICATION_CREDENTIALS points at it.",
			in:     accessInput{provider: v1alpha1.StorageGCS, storage: &v1alpha1.StorageSpec{Provider: "gcs", SecretName: "gcs-sa"}},
			want: storageAccess{
				env: []corev1.EnvVar{mountEnv(v1alpha1.StorageGCS), {Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/var/run/secrets/kalypso/gcs/credentials.json"}},
				volumes: []corev1.Volume{{Name: "gcs-credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "gcs-sa", Items: []corev1.KeyToPath{{Key: "gcs-credentials.json", Path: "credentials.json"}},
				}}}},
				mounts: []corev1.VolumeMount{{Name: "gcs-credentials", MountPath: "/var/run/secrets/kalypso/gcs", ReadOnly: true}},
			},
		},
		"GCSCustomKey": {
			reason: "A custom key is projected to the fixed file name.",
			in:     accessInput{provider: v1alpha1.StorageGCS, storage: &v1alpha1.StorageSpec{SecretName: "gcs-sa", Keys: &v1alpha1.StorageKeys{GCSCredentials: "key.json"}}},
			want: storageAccess{
				env: []corev1.EnvVar{mountEnv(v1alpha1.StorageGCS), {Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/var/run/secrets/kalypso/gcs/credentials.json"}},
				volumes: []corev1.Volume{{Name: "gcs-credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "gcs-sa", Items: []corev1.KeyToPath{{Key: "key.json", Path: "credentials.json"}},
				}}}},
				mounts: []corev1.VolumeMount{{Name: "gcs-credentials", MountPath: "/var/run/secrets/kalypso/gcs", ReadOnly: true}},
			},
		},
		"GCSKeyless": {
			reason: "Workload Identity: nothing but the mount folder.",
			in:     accessInput{provider: v1alpha1.StorageGCS, storage: &v1alpha1.StorageSpec{Provider: "gcs", ServiceAccountName: "models-reader", Region: "ignored"}, serviceAccount: "models-reader"},
			want:   storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageGCS)}},
		},
		"AzureSecret": {
			reason: "Account and key by reference: every release authenticates with the key (as.h infers auth type key from it).",
			in:     accessInput{provider: v1alpha1.StorageAzure, storage: &v1alpha1.StorageSpec{Provider: "azure", SecretName: "az"}, release: r2412},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageAzure),
				secretEnv("AZURE_STORAGE_ACCOUNT", "az", "AZURE_STORAGE_ACCOUNT"),
				secretEnv("AZURE_STORAGE_KEY", "az", "AZURE_STORAGE_KEY"),
			}},
		},
		"AzureCustomKeys": {
			reason: "Custom key names for Azure.",
			in:     accessInput{provider: v1alpha1.StorageAzure, storage: &v1alpha1.StorageSpec{SecretName: "az", Keys: &v1alpha1.StorageKeys{AzureStorageAccount: "account", AzureStorageKey: "key"}}},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageAzure),
				secretEnv("AZURE_STORAGE_ACCOUNT", "az", "account"),
				secretEnv("AZURE_STORAGE_KEY", "az", "key"),
			}},
		},
		"AzureKeyless2605": {
			reason: "Azure workload identity on 26.05: Triton needs AZURE_STORAGE_AUTH_TYPE=default to use the DefaultAzureCredential chain (workload identity, then managed identity).",
			in:     accessInput{provider: v1alpha1.StorageAzure, storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}, serviceAccount: "models-reader", release: r2605},
			want:   storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageAzure), {Name: "AZURE_STORAGE_AUTH_TYPE", Value: "default"}}},
		},
		"AzureKeylessLater": {
			reason: "Later releases too.",
			in:     accessInput{provider: v1alpha1.StorageAzure, storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}, serviceAccount: "models-reader", release: tritonRelease{27, 1}},
			want:   storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageAzure), {Name: "AZURE_STORAGE_AUTH_TYPE", Value: "default"}}},
		},
		"AzureServerServiceAccount": {
			reason: "A service account of the server's own, with no storage settings at all, is keyless access too.",
			in:     accessInput{provider: v1alpha1.StorageAzure, serviceAccount: "resnet-runner", release: r2605},
			want:   storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageAzure), {Name: "AZURE_STORAGE_AUTH_TYPE", Value: "default"}}},
		},
		"AzureKeylessBefore2605": {
			reason:  "Before 26.05 Triton connects anonymously whatever the pod's identity: refused, not silently anonymous.",
			in:      accessInput{provider: v1alpha1.StorageAzure, image: "nvcr.io/nvidia/tritonserver:24.12-py3", storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}, serviceAccount: "models-reader", release: r2412},
			problem: "StorageIdentityUnsupported: Azure storage through ServiceAccount models-reader (keyless) needs Triton 26.05 or later, and image nvcr.io/nvidia/tritonserver:24.12-py3 is Triton 24.12, which connects to Azure anonymously: use spec.tritonConfig.tag 26.05-py3 or later, or an account key Secret in the application's spec.storage.secretName",
		},
		"AzureKeylessMonthBefore": {
			reason:  "26.04 is the last release without it.",
			in:      accessInput{provider: v1alpha1.StorageAzure, storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}, serviceAccount: "models-reader", release: tritonRelease{26, 4}},
			problem: "StorageIdentityUnsupported: ",
		},
		"AzureKeylessUnknownRelease": {
			reason:  "A custom image whose tag does not name a release, without spec.tritonConfig.version: refused with what to set.",
			in:      accessInput{provider: v1alpha1.StorageAzure, image: "registry.example.com/ml/triton:v3", storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}, serviceAccount: "models-reader"},
			problem: "TritonVersionUnknown: Azure storage through ServiceAccount models-reader (keyless) needs Triton 26.05 or later, and the tag of image registry.example.com/ml/triton:v3 does not say which Triton release it is: set spec.tritonConfig.version (YY.MM, e.g. 26.05)",
		},
		"AzureAnonymous": {
			reason: "No secret and no service account: a public container, anonymous on purpose, whatever the release.",
			in:     accessInput{provider: v1alpha1.StorageAzure, release: r2412},
			want:   storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageAzure)}},
		},
		"AzureSecretAndServiceAccount": {
			reason: "A key Secret wins: the service account is for something else, and every release uses the key.",
			in:     accessInput{provider: v1alpha1.StorageAzure, storage: &v1alpha1.StorageSpec{Provider: "azure", SecretName: "az", ServiceAccountName: "models-reader"}, serviceAccount: "models-reader", release: r2412},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageAzure),
				secretEnv("AZURE_STORAGE_ACCOUNT", "az", "AZURE_STORAGE_ACCOUNT"),
				secretEnv("AZURE_STORAGE_KEY", "az", "AZURE_STORAGE_KEY"),
			}},
		},
		"NoStorage": {
			reason: "No storage settings at all: only the mount folder.",
			in:     accessInput{provider: v1alpha1.StorageS3},
			want:   storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageS3)}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, problem := access(tc.in)
			if tc.problem != "" {
				if problem == nil {
					t.Fatalf("%s\nwant problem %q, got none: %+v", tc.reason, tc.problem, got)
				}
				reason, msg, _ := strings.Cut(tc.problem, ": ")
				if problem.Type != ConditionApplicationReady || problem.Status || problem.Reason != reason || !strings.Contains(problem.Message, msg) {
					t.Errorf("%s\nwant ApplicationReady=False %s containing %q, got %+v", tc.reason, reason, msg, problem)
				}
				return
			}
			if problem != nil {
				t.Fatalf("%s\nunexpected problem: %+v", tc.reason, problem)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(storageAccess{})); diff != "" {
				t.Errorf("%s\naccess: -want, +got:\n%s", tc.reason, diff)
			}
			// Credentials are only ever referenced: a literal value is one
			// of the few non-secret settings.
			for _, e := range got.env {
				switch {
				case e.ValueFrom != nil:
					if e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
						t.Errorf("%s: %s must come from a secretKeyRef only", name, e.Name)
					}
				case !strings.HasPrefix(e.Name, "TRITON_") && e.Name != "AWS_DEFAULT_REGION" && e.Name != "GOOGLE_APPLICATION_CREDENTIALS" && e.Name != "AZURE_STORAGE_AUTH_TYPE":
					t.Errorf("%s: %s carries a literal value %q; credentials must be references", name, e.Name, e.Value)
				}
			}
		})
	}
}

// TestComposeStorageIdentity runs the storage wiring through the composer:
// what the server's image and the application's storage decide together.
func TestComposeStorageIdentity(t *testing.T) {
	azureKeyless := appWith("storage: {provider: s3, secretName: models-creds, region: eu-west-1}", "storage: {provider: azure, serviceAccountName: models-reader}")
	azureSnapshot := `application: {name: classifier, project: vision, environment: dev, storage: {provider: azure, serviceAccountName: models-reader}}`
	azureURI := "as://account/models/resnet"
	azureServer := func(spec, status string) string { return withURI(serverXR(spec, status), azureURI) }
	running := created(t, "", deployAvailable)
	azureCond := func(reason string) map[string]cond {
		return composedConds(map[string]cond{ConditionApplicationReady: {false, reason}, ConditionServerAvailable: {true, "AllReplicasAvailable"}})
	}

	cases := map[string]struct {
		reason string
		scene  scene
		want   want
	}{
		"Azure2605": {
			reason: "26.05 composes AZURE_STORAGE_AUTH_TYPE=default.",
			scene:  scene{xr: azureServer("tritonConfig: {tag: 26.05-py3}\n", ""), required: map[string][]string{reqApplication: {azureKeyless}}},
			want: want{
				resources: all(resource.ReadyFalse, resDeployment, resService, resUsage), conditions: composedConds(nil),
				phase: PhasePending, ttl: compose.PollTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev", Storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}},
				check: func(t *testing.T, r compose.Result) {
					d := decodeStrict[appsv1.Deployment](t, r, resDeployment)
					c := tritonContainer(t, d)
					if !slicesContainsEnv(c.Env, corev1.EnvVar{Name: "AZURE_STORAGE_AUTH_TYPE", Value: "default"}) {
						t.Errorf("want AZURE_STORAGE_AUTH_TYPE=default, got %+v", c.Env)
					}
					if d.Spec.Template.Spec.ServiceAccountName != "models-reader" {
						t.Errorf("want the application's service account, got %q", d.Spec.Template.Spec.ServiceAccountName)
					}
				},
			},
		},
		"AzurePlatformTagBeforeCreate": {
			reason: "The platform's default 24.12 cannot use the identity: nothing is created, the condition says what to change.",
			scene:  scene{xr: azureServer("", ""), required: map[string][]string{reqApplication: {azureKeyless}}},
			want: want{
				resources: map[string]resource.Ready{}, conditions: appPending("StorageIdentityUnsupported"), phase: PhasePending, ttl: compose.WaitTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev", Storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}},
				messages:    map[string]string{ConditionApplicationReady: "image nvcr.io/nvidia/tritonserver:24.12-py3 is Triton 24.12, which connects to Azure anonymously"},
			},
		},
		"AzureCustomImageBeforeCreate": {
			reason: "A custom image whose tag does not parse: nothing is created until spec.tritonConfig.version says the release.",
			scene:  scene{xr: azureServer("tritonConfig: {image: registry.example.com/ml/triton, tag: v3}\n", ""), required: map[string][]string{reqApplication: {azureKeyless}}},
			want: want{
				resources: map[string]resource.Ready{}, conditions: appPending("TritonVersionUnknown"), phase: PhasePending, ttl: compose.WaitTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev", Storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}},
				messages:    map[string]string{ConditionApplicationReady: "set spec.tritonConfig.version (YY.MM, e.g. 26.05)"},
			},
		},
		"AzureCustomImageWithVersion": {
			reason: "The version field makes a custom image usable.",
			scene:  scene{xr: azureServer("tritonConfig: {image: registry.example.com/ml/triton, tag: v3, version: \"26.06\"}\n", ""), required: map[string][]string{reqApplication: {azureKeyless}}},
			want: want{
				resources: all(resource.ReadyFalse, resDeployment, resService, resUsage), conditions: composedConds(nil),
				phase: PhasePending, ttl: compose.PollTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev", Storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}},
			},
		},
		"AzureAfterCreateKept": {
			reason: "A running server whose application turns to Azure keyless storage it cannot use keeps its Deployment as it is and says why.",
			scene:  scene{xr: azureServer("", azureSnapshot), observed: running, required: map[string][]string{reqApplication: {azureKeyless}}},
			want: want{
				resources: all(resource.ReadyTrue, resDeployment, resService, resUsage), conditions: azureCond("StorageIdentityUnsupported"),
				phase: PhaseRunning, ready: true, ttl: compose.WaitTTL,
				application: &v1alpha1.ServerApplicationStatus{Name: "classifier", Project: "vision", Environment: "dev", Storage: &v1alpha1.StorageSpec{Provider: "azure", ServiceAccountName: "models-reader"}},
				messages:    map[string]string{ConditionApplicationReady: "the Deployment is kept as it is until this is fixed"},
				check: func(t *testing.T, r compose.Result) {
					if diff := cmp.Diff(carried(t, running[string(resDeployment)]), r.Desired[resDeployment].Resource.Object); diff != "" {
						t.Errorf("the Deployment must be carried as observed: -want, +got:\n%s", diff)
					}
				},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.want.verify(t, tc.reason, tc.scene.run(t, int64s, platform(t)))
		})
	}
}

func slicesContainsEnv(env []corev1.EnvVar, e corev1.EnvVar) bool {
	for _, have := range env {
		if cmp.Equal(have, e) {
			return true
		}
	}
	return false
}

// TestComposeVersionFatal: a version that contradicts the tag is a spec
// mistake, refused whatever the storage.
func TestComposeVersionFatal(t *testing.T) {
	r := scene{xr: serverXR("tritonConfig: {tag: 24.12-py3, version: \"26.05\"}\n", ""), required: map[string][]string{reqApplication: {readyApp}}}.run(t, int64s, platform(t))
	want := `spec.tritonConfig.version "26.05" disagrees with the image tag "24.12-py3" (Triton 24.12): remove spec.tritonConfig.version, or fix it`
	if r.Fatal == nil || r.Fatal.Error() != want {
		t.Errorf("want Fatal %q, got %v", want, r.Fatal)
	}
}

// TestComposePrivateCA: the CA bundle wiring in the composed pod, and
// nothing of it for servers that do not ask.
func TestComposePrivateCA(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	withCA := appWith("storage: {provider: s3, secretName: models-creds, region: eu-west-1}",
		"storage: {provider: s3, secretName: models-creds, endpoint: https://minio.internal:9443, caBundle: {secretName: minio-ca, key: ca.crt}}")

	t.Run("Wired", func(t *testing.T) {
		d := composeDeployment(t, "tritonConfig: {tag: 25.01-py3}\n", withCA, platform(t))
		pod := d.Spec.Template.Spec
		c := tritonContainer(t, d)
		if len(pod.InitContainers) != 1 {
			t.Fatalf("want one init container, got %+v", pod.InitContainers)
		}
		ic := pod.InitContainers[0]
		if ic.Image != c.Image {
			t.Errorf("the init container must run the server's own image (nothing new pulled): %q vs %q", ic.Image, c.Image)
		}
		if diff := cmp.Diff(c.SecurityContext, ic.SecurityContext); diff != "" {
			t.Errorf("the init container's security context must be the server's: -server, +init:\n%s", diff)
		}
		wantMount := corev1.VolumeMount{Name: "storage-ca-bundle", MountPath: "/etc/ssl/certs/ca-certificates.crt", SubPath: "ca-certificates.crt", ReadOnly: true}
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return cmp.Equal(wantMount, m) }) {
			t.Errorf("want the bundle mounted read-only over the system bundle: %+v, got %+v", wantMount, c.VolumeMounts)
		}
		for _, res := range evaluator.EvaluatePod(restricted, &d.Spec.Template.ObjectMeta, &pod) {
			if !res.Allowed {
				t.Errorf("the pod is not Pod Security restricted: %s: %s", res.ForbiddenReason, res.ForbiddenDetail)
			}
		}
		var names []string
		for _, v := range pod.Volumes {
			if strings.HasPrefix(v.Name, "storage-ca") {
				names = append(names, v.Name)
			}
		}
		if diff := cmp.Diff([]string{"storage-ca", "storage-ca-bundle"}, names); diff != "" {
			t.Errorf("CA volumes: -want, +got:\n%s", diff)
		}
	})
	t.Run("Unset", func(t *testing.T) {
		d := composeDeployment(t, "", readyApp, platform(t))
		if d.Spec.Template.Spec.InitContainers != nil {
			t.Errorf("a server without a CA bundle has no init container, got %+v", d.Spec.Template.Spec.InitContainers)
		}
		for _, m := range tritonContainer(t, d).VolumeMounts {
			if strings.HasPrefix(m.Name, "storage-ca") {
				t.Errorf("a server without a CA bundle mounts none: %+v", m)
			}
		}
	})
}
