//go:build tools

// Package tools pins the crossplane CLI (crank) that render, validate and xpkg use.
package tools

import _ "github.com/crossplane/crossplane/v2/cmd/crank"
