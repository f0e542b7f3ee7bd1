package tritonserver

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
)

// Where a GCS credentials file is mounted.
const (
	gcsCredentialsDir  = "/var/run/secrets/kalypso/gcs"
	gcsCredentialsFile = "credentials.json"
	modelCacheDir      = "/var/lib/triton/model-cache"
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
	return k
}

// storageAccess is how the Triton container reaches its model storage:
// environment, volumes and mounts. Credentials are only ever referenced
// (secretKeyRef, a mounted secret), never copied.
type storageAccess struct {
	env     []corev1.EnvVar
	volumes []corev1.Volume
	mounts  []corev1.VolumeMount
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
	}}}
}

// access builds the storage wiring for a provider. Without a secret
// (keyless: IRSA, Pod Identity, Workload Identity) nothing but the mount
// folder and region is set: the service account's token does the rest.
func access(provider string, s *v1alpha1.StorageSpec) storageAccess {
	a := storageAccess{env: []corev1.EnvVar{{Name: mountDirEnv[provider], Value: modelCacheDir}}}
	if s == nil {
		return a
	}
	keys := storageKeys(s)
	switch provider {
	case v1alpha1.StorageS3:
		if s.SecretName != "" {
			a.env = append(a.env,
				secretEnv("AWS_ACCESS_KEY_ID", s.SecretName, keys.AccessKeyID),
				secretEnv("AWS_SECRET_ACCESS_KEY", s.SecretName, keys.SecretAccessKey))
		}
		if s.Region != "" {
			a.env = append(a.env, corev1.EnvVar{Name: "AWS_DEFAULT_REGION", Value: s.Region})
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
		if s.SecretName != "" {
			a.env = append(a.env,
				secretEnv("AZURE_STORAGE_ACCOUNT", s.SecretName, keys.AzureStorageAccount),
				secretEnv("AZURE_STORAGE_KEY", s.SecretName, keys.AzureStorageKey))
		}
	}
	return a
}
