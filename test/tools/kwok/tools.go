//go:build tools

// Package tools pins kwok, which runs the e2e lab's fake GPU nodes.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
