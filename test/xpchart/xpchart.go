// Package xpchart reads Crossplane's Helm chart from the module cache: the
// RBAC rules a real installation gives Crossplane core, which the lab
// installs and the kind table's RBAC test checks against.
package xpchart

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// The Crossplane release the lab runs (test/tools/crossplane-core).
const (
	Module  = "github.com/crossplane/crossplane/v2"
	Version = "v2.2.1"
)

// ModuleDir downloads (when missing) a module version through the module
// proxy and returns its directory in the module cache. toolDir is a module
// that requires it, so the download is checked against its go.sum.
func ModuleDir(ctx context.Context, toolDir, module, version string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = toolDir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s gave no directory: %v", module, version, err)
	}
	return m.Dir, nil
}

// Rules reads the rules of a ClusterRole template of the chart: its
// top-level `rules:` block, which holds no template directives.
func Rules(moduleDir, file string) ([]rbacv1.PolicyRule, error) {
	f, err := os.Open(filepath.Join(moduleDir, "cluster", "charts", "crossplane", "templates", file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b strings.Builder
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		switch {
		case line == "rules:":
			in = true
		case in && (line == "---" || strings.HasPrefix(strings.TrimSpace(line), "{{")):
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	var r struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}
	if err := yaml.UnmarshalStrict([]byte(b.String()), &r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(r.Rules) == 0 {
		return nil, fmt.Errorf("%s: no rules found", file)
	}
	return r.Rules, nil
}
