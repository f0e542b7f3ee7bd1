//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// fieldManager is the server-side apply field manager of everything the
// lab and the tests apply.
const fieldManager = "kalypso-e2e"

// kube is a client of the lab's API server with a RESTMapper that learns
// about CRDs as they are installed.
type kube struct {
	cfg    *rest.Config
	Typed  kubernetes.Interface
	Dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newKube(cfg *rest.Config) (*kube, error) {
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &kube{cfg: cfg, Typed: typed, Dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// resourceFor maps a kind to its resource, refreshing discovery while a
// freshly created CRD is not served yet.
func (k *kube) resourceFor(ctx context.Context, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			return m, nil
		}
		if !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return nil, fmt.Errorf("no resource for %s: %w", gvk, err)
		}
		k.mapper.Reset()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// client returns the dynamic client for the object's kind and namespace.
func (k *kube) client(ctx context.Context, gvk schema.GroupVersionKind, namespace string) (dynamic.ResourceInterface, error) {
	m, err := k.resourceFor(ctx, gvk)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if namespace == "" {
			namespace = "default"
		}
		return k.Dyn.Resource(m.Resource).Namespace(namespace), nil
	}
	return k.Dyn.Resource(m.Resource), nil
}

// decodeYAML splits a multi-document YAML stream into objects.
func decodeYAML(b []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

// apply server-side applies every object (forcing conflicts) and returns
// them as the API server answered.
func (k *kube) apply(ctx context.Context, objs ...*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		c, err := k.client(ctx, o.GroupVersionKind(), o.GetNamespace())
		if err != nil {
			return nil, err
		}
		got, err := c.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
		if err != nil {
			return nil, fmt.Errorf("apply %s %s: %w", o.GetKind(), nsName(o.GetNamespace(), o.GetName()), err)
		}
		out = append(out, got)
	}
	return out, nil
}

// get returns an object, or nil when it does not exist.
func (k *kube) get(ctx context.Context, apiVersion, kind, namespace, name string) (*unstructured.Unstructured, error) {
	c, err := k.client(ctx, schema.FromAPIVersionAndKind(apiVersion, kind), namespace)
	if err != nil {
		return nil, err
	}
	u, err := c.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// list returns the objects of a kind in a namespace ("" for all or cluster scoped).
func (k *kube) list(ctx context.Context, apiVersion, kind, namespace string) ([]unstructured.Unstructured, error) {
	m, err := k.resourceFor(ctx, schema.FromAPIVersionAndKind(apiVersion, kind))
	if err != nil {
		return nil, err
	}
	var c dynamic.ResourceInterface = k.Dyn.Resource(m.Resource)
	if namespace != "" {
		c = k.Dyn.Resource(m.Resource).Namespace(namespace)
	}
	l, err := c.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// del deletes an object; a missing object is not an error.
func (k *kube) del(ctx context.Context, apiVersion, kind, namespace, name string) error {
	c, err := k.client(ctx, schema.FromAPIVersionAndKind(apiVersion, kind), namespace)
	if err != nil {
		return err
	}
	err = c.Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// ---- helpers for tests --------------------------------------------------

// applyYAML applies a multi-document YAML string.
func applyYAML(t testing.TB, y string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decodeYAML([]byte(y))
	if err != nil {
		t.Fatalf("decode YAML: %v", err)
	}
	out, err := lab.Kube.apply(t.Context(), objs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// applyFile applies a YAML file; relative paths are relative to the
// repository root.
func applyFile(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(lab.repoPath(path))
	if err != nil {
		t.Fatal(err)
	}
	return applyYAML(t, string(b))
}

// mustGet returns an object that must exist.
func mustGet(t testing.TB, apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := lab.Kube.get(t.Context(), apiVersion, kind, namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	if u == nil {
		t.Fatalf("%s %s does not exist", kind, nsName(namespace, name))
	}
	return u
}

// mustDelete deletes an object (missing is fine).
func mustDelete(t testing.TB, apiVersion, kind, namespace, name string) {
	t.Helper()
	if err := lab.Kube.del(t.Context(), apiVersion, kind, namespace, name); err != nil {
		t.Fatalf("delete %s %s: %v", kind, nsName(namespace, name), err)
	}
}

// waitFor polls cond until it reports done, failing the test after timeout
// with what cond last said. It returns how long it took.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (done bool, status string, err error)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		done, status, err := cond()
		if err != nil {
			status = "error: " + err.Error()
		}
		if done {
			t.Logf("%s: after %s", what, time.Since(start).Round(10*time.Millisecond))
			return time.Since(start)
		}
		last = status
		if time.Since(start) > timeout {
			t.Fatalf("%s: not done after %s; last seen: %s", what, timeout, last)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v; last seen: %s", what, t.Context().Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitGone waits until an object no longer exists.
func waitGone(t testing.TB, apiVersion, kind, namespace, name string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, fmt.Sprintf("%s %s is gone", kind, nsName(namespace, name)), timeout, func() (bool, string, error) {
		u, err := lab.Kube.get(t.Context(), apiVersion, kind, namespace, name)
		if err != nil || u == nil {
			return u == nil, "", err
		}
		return false, fmt.Sprintf("still exists (deletionTimestamp %v, finalizers %v)", u.GetDeletionTimestamp(), u.GetFinalizers()), nil
	})
}

// condition is one entry of status.conditions.
type condition struct {
	Type, Status, Reason, Message string
}

// getCondition returns the condition of the given type (Status "" when absent).
func getCondition(u *unstructured.Unstructured, typ string) condition {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s := func(k string) string { v, _ := m[k].(string); return v }
			return condition{Type: typ, Status: s("status"), Reason: s("reason"), Message: s("message")}
		}
	}
	return condition{Type: typ}
}

// getXRCondition reads a composite's condition from the API server.
func getXRCondition(t testing.TB, kind, namespace, name, typ string) condition {
	t.Helper()
	return getCondition(mustGet(t, apiVersionKalypso, kind, namespace, name), typ)
}

// conditionsSummary prints every condition, for failure messages.
func conditionsSummary(u *unstructured.Unstructured) string {
	if u == nil {
		return "<absent>"
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var parts []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		parts = append(parts, fmt.Sprintf("%v=%v(%v: %v)", m["type"], m["status"], m["reason"], m["message"]))
	}
	return strings.Join(parts, "; ")
}

// waitXRCondition waits until a composite's condition has the given status
// (and reason, when not empty) and returns it.
func waitXRCondition(t testing.TB, kind, namespace, name, typ, status, reason string, timeout time.Duration) condition {
	t.Helper()
	var got condition
	waitFor(t, fmt.Sprintf("%s %s %s=%s %s", kind, nsName(namespace, name), typ, status, reason), timeout, func() (bool, string, error) {
		u, err := lab.Kube.get(t.Context(), apiVersionKalypso, kind, namespace, name)
		if err != nil || u == nil {
			return false, "absent", err
		}
		got = getCondition(u, typ)
		return got.Status == status && (reason == "" || got.Reason == reason), conditionsSummary(u), nil
	})
	return got
}

// toYAML renders an object for logs.
func toYAML(o any) string {
	b, err := yaml.Marshal(o)
	if err != nil {
		return fmt.Sprint(o)
	}
	return string(b)
}

// served reports whether the API server serves a kind now (one discovery
// refresh, no waiting).
func (k *kube) served(gvk schema.GroupVersionKind) bool {
	if _, err := k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
		return true
	}
	k.mapper.Reset()
	_, err := k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}
