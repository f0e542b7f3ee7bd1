//go:build tools

// Package tools pins controller-gen, which writes the CRD schemas the XRDs are built from.
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
