//go:build tools

// Package tools pins the Kubernetes control plane binaries the e2e lab runs:
// kube-apiserver, kube-controller-manager, kube-scheduler (and kubectl).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
