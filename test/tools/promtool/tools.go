//go:build tools

// Package tools pins promtool, which checks every PromQL expression the
// function ships (make promql-check). It lives in its own module because
// prometheus v0.316.0 requires k8s.io v0.37.1, and the main module stays on
// v0.35.4.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
