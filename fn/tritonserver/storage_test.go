package tritonserver

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
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

func TestAccess(t *testing.T) {
	mountEnv := func(provider string) corev1.EnvVar {
		return corev1.EnvVar{Name: mountDirEnv[provider], Value: modelCacheDir}
	}
	cases := map[string]struct {
		reason   string
		provider string
		storage  *v1alpha1.StorageSpec
		want     storageAccess
	}{
		"S3Secret": {
			reason:   "Keys come from the secret by reference, under the default key names; the region is plain.",
			provider: v1alpha1.StorageS3,
			storage:  &v1alpha1.StorageSpec{Provider: "s3", SecretName: "models-creds", Region: "eu-west-1"},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageS3),
				secretEnv("AWS_ACCESS_KEY_ID", "models-creds", "AWS_ACCESS_KEY_ID"),
				secretEnv("AWS_SECRET_ACCESS_KEY", "models-creds", "AWS_SECRET_ACCESS_KEY"),
				{Name: "AWS_DEFAULT_REGION", Value: "eu-west-1"},
			}},
		},
		"S3CustomKeys": {
			reason:   "Custom key names (a MinIO secret) are read under Triton's variable names.",
			provider: v1alpha1.StorageS3,
			storage:  &v1alpha1.StorageSpec{SecretName: "minio", Keys: &v1alpha1.StorageKeys{AccessKeyID: "rootUser", SecretAccessKey: "rootPassword"}},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageS3),
				secretEnv("AWS_ACCESS_KEY_ID", "minio", "rootUser"),
				secretEnv("AWS_SECRET_ACCESS_KEY", "minio", "rootPassword"),
			}},
		},
		"S3Keyless": {
			reason:   "IRSA / Pod Identity: no secret, only the mount folder and the region; the service account's token does the rest.",
			provider: v1alpha1.StorageS3,
			storage:  &v1alpha1.StorageSpec{ServiceAccountName: "models-reader", Region: "us-east-1"},
			want:     storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageS3), {Name: "AWS_DEFAULT_REGION", Value: "us-east-1"}}},
		},
		"GCSSecret": {
			reason:   "GCS reads a credentials file: the secret is mounted read-only and GOOGLE_APPLICATION_CREDENTIALS points at it.",
			provider: v1alpha1.StorageGCS,
			storage:  &v1alpha1.StorageSpec{Provider: "gcs", SecretName: "gcs-sa"},
			want: storageAccess{
				env: []corev1.EnvVar{mountEnv(v1alpha1.StorageGCS), {Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/var/run/secrets/kalypso/gcs/credentials.json"}},
				volumes: []corev1.Volume{{Name: "gcs-credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "gcs-sa", Items: []corev1.KeyToPath{{Key: "gcs-credentials.json", Path: "credentials.json"}},
				}}}},
				mounts: []corev1.VolumeMount{{Name: "gcs-credentials", MountPath: "/var/run/secrets/kalypso/gcs", ReadOnly: true}},
			},
		},
		"GCSCustomKey": {
			reason:   "A custom key is projected to the fixed file name.",
			provider: v1alpha1.StorageGCS,
			storage:  &v1alpha1.StorageSpec{SecretName: "gcs-sa", Keys: &v1alpha1.StorageKeys{GCSCredentials: "key.json"}},
			want: storageAccess{
				env: []corev1.EnvVar{mountEnv(v1alpha1.StorageGCS), {Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/var/run/secrets/kalypso/gcs/credentials.json"}},
				volumes: []corev1.Volume{{Name: "gcs-credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "gcs-sa", Items: []corev1.KeyToPath{{Key: "key.json", Path: "credentials.json"}},
				}}}},
				mounts: []corev1.VolumeMount{{Name: "gcs-credentials", MountPath: "/var/run/secrets/kalypso/gcs", ReadOnly: true}},
			},
		},
		"GCSKeyless": {
			reason:   "Workload Identity: nothing but the mount folder.",
			provider: v1alpha1.StorageGCS,
			storage:  &v1alpha1.StorageSpec{Provider: "gcs", ServiceAccountName: "models-reader", Region: "ignored"},
			want:     storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageGCS)}},
		},
		"AzureSecret": {
			reason:   "Account and key by reference.",
			provider: v1alpha1.StorageAzure,
			storage:  &v1alpha1.StorageSpec{Provider: "azure", SecretName: "az"},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageAzure),
				secretEnv("AZURE_STORAGE_ACCOUNT", "az", "AZURE_STORAGE_ACCOUNT"),
				secretEnv("AZURE_STORAGE_KEY", "az", "AZURE_STORAGE_KEY"),
			}},
		},
		"AzureCustomKeys": {
			reason:   "Custom key names for Azure.",
			provider: v1alpha1.StorageAzure,
			storage:  &v1alpha1.StorageSpec{SecretName: "az", Keys: &v1alpha1.StorageKeys{AzureStorageAccount: "account", AzureStorageKey: "key"}},
			want: storageAccess{env: []corev1.EnvVar{
				mountEnv(v1alpha1.StorageAzure),
				secretEnv("AZURE_STORAGE_ACCOUNT", "az", "account"),
				secretEnv("AZURE_STORAGE_KEY", "az", "key"),
			}},
		},
		"AzureKeyless": {
			reason:   "Azure workload identity: only the mount folder.",
			provider: v1alpha1.StorageAzure,
			storage:  &v1alpha1.StorageSpec{ServiceAccountName: "models-reader"},
			want:     storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageAzure)}},
		},
		"NoStorage": {
			reason:   "No storage settings at all: only the mount folder.",
			provider: v1alpha1.StorageS3,
			want:     storageAccess{env: []corev1.EnvVar{mountEnv(v1alpha1.StorageS3)}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := access(tc.provider, tc.storage)
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
				case !strings.HasPrefix(e.Name, "TRITON_") && e.Name != "AWS_DEFAULT_REGION" && e.Name != "GOOGLE_APPLICATION_CREDENTIALS":
					t.Errorf("%s: %s carries a literal value %q; credentials must be references", name, e.Name, e.Value)
				}
			}
		})
	}
}
