//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// as is a client acting as a user through impersonation: the API server
// authorises every request against that user's RBAC (and the implicit
// group system:authenticated), exactly as for a kubectl of that user.
func (k *kube) as(user string) (*kube, error) {
	cfg := rest.CopyConfig(k.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return newKube(cfg)
}

// asMember is as for a user in groups (a project's access lists name
// groups as often as users).
func (k *kube) asMember(user string, groups ...string) (*kube, error) {
	cfg := rest.CopyConfig(k.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append([]string{"system:authenticated"}, groups...)}
	return newKube(cfg)
}

// create creates an object (no apply: a refusal must not depend on the
// apply path), returning the API server's error.
func (k *kube) create(ctx context.Context, y string) error {
	objs, err := decodeYAML([]byte(y))
	if err != nil {
		return err
	}
	for _, o := range objs {
		c, err := k.client(ctx, o.GroupVersionKind(), o.GetNamespace())
		if err != nil {
			return err
		}
		if _, err := c.Create(ctx, o, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
			return fmt.Errorf("create %s %s: %w", o.GetKind(), nsName(o.GetNamespace(), o.GetName()), err)
		}
	}
	return nil
}

// delWith deletes an object with a propagation policy, as
// `kubectl delete --cascade=foreground|background|orphan` does.
func (k *kube) delWith(ctx context.Context, apiVersion, kind, namespace, name string, policy metav1.DeletionPropagation) error {
	c, err := k.client(ctx, schema.FromAPIVersionAndKind(apiVersion, kind), namespace)
	if err != nil {
		return err
	}
	return c.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
}

// tenantProjectYAML is a project of one environment whose access names
// editors and viewers (Users).
func tenantProjectYAML(name, envName, ns string, editors, viewers []string) string {
	list := func(users []string) string {
		var parts []string
		for _, u := range users {
			parts = append(parts, fmt.Sprintf("{kind: User, name: %s}", u))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf(`apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: %s}
spec:
  owner: e2e
  access: {editors: %s, viewers: %s}
  environments:
    %s: {namespace: %s}
`, name, list(editors), list(viewers), envName, ns)
}

// storageSecretYAML is the S3 credentials Secret an application team
// creates in its environment (applicationYAML names it).
func storageSecretYAML(ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: models-s3, namespace: %s}
stringData: {AWS_ACCESS_KEY_ID: e2e-marker-id, AWS_SECRET_ACCESS_KEY: e2e-marker-secret}
`, ns)
}

// apiKeySecretYAML is the Triton API key Secret the platform provisions in
// every environment namespace.
func apiKeySecretYAML(ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: kalypso-triton-api-key, namespace: %s}
stringData: {api-key: e2e-marker-api-key}
`, ns)
}

// tenantEnvironment sets up, as the platform team, a project of one
// environment whose only editor is user, with the platform's API key Secret;
// then, as user, the storage Secret. It returns the user's client.
func tenantEnvironment(t *testing.T, project, ns, user string) *kube {
	t.Helper()
	k, err := lab.Kube.as(user)
	if err != nil {
		t.Fatal(err)
	}
	applyYAML(t, tenantProjectYAML(project, "dev", ns, []string{user}, nil))
	waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
	applyYAML(t, apiKeySecretYAML(ns))
	// RoleBindings reach the authorizer through its informer: allow a
	// moment after the project is Ready.
	waitFor(t, user+" may create Secrets in "+ns, 30*time.Second, func() (bool, string, error) {
		err := k.create(t.Context(), storageSecretYAML(ns))
		return err == nil || apierrors.IsAlreadyExists(err), errString(err), nil
	})
	return k
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
