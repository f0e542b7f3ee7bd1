package compose

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

var (
	ksmInvalidRE = regexp.MustCompile(`[^a-zA-Z0-9_]`)
	ksmCamelRE   = regexp.MustCompile(`([a-z0-9])([A-Z])`)
)

// KSMLabel is the label kube-state-metrics gives a Kubernetes label in
// kube_namespace_labels and kube_pod_labels: label_, then the key with
// every character but letters, digits and _ as _, camelCase as snake_case,
// in lower case (its internal/store/utils.go SanitizeLabelName and
// toSnakeCase). Two keys with the same result collide: kube-state-metrics
// renames one (_conflictN).
func KSMLabel(key string) string {
	return "label_" + strings.ToLower(ksmCamelRE.ReplaceAllString(ksmInvalidRE.ReplaceAllString(key, "_"), "${1}_${2}"))
}

// KSMResource is an extended resource's name as kube-state-metrics writes
// it in kube_pod_container_resource_requests' resource label
// (SanitizeLabelName: nvidia.com/gpu is nvidia_com_gpu); kube_resourcequota
// keeps it as it is.
func KSMResource(name corev1.ResourceName) string {
	return ksmInvalidRE.ReplaceAllString(string(name), "_")
}
