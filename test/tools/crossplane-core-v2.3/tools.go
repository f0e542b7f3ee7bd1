//go:build tools

// Package tools pins Crossplane core, which the e2e lab runs out of cluster.
package tools

import _ "github.com/crossplane/crossplane/v2/cmd/crossplane"
