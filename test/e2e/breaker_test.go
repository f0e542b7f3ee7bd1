//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// TestServerChangeBurst: a tenant creates a server and changes it three
// times, each change as soon as the last one shows, as a GitOps sync of
// several commits does. Each change takes effect, and the server stays
// Ready through its scale-ups (the autoscaler's included): a server that
// turned not Ready at every scale would take its application's ready count
// and every alert on them along. The scenario also counts the watch events
// Crossplane core charges to the server's circuit breaker: its own and its
// composed objects'. Core opening it is a finding: it then drops the
// server's own spec changes until the server's next poll.
func TestServerChangeBurst(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project, ns = "burst", "burst-dev"
		app, name   = "burst", "burst-srv"
	)
	teardown(t, project, ns)
	var k *kube
	step(t, "Setup", func(t *testing.T) {
		k = tenantEnvironment(t, project, ns, "hana")
		if err := k.create(t.Context(), applicationYAML(app, ns, project)); err != nil {
			t.Fatal(err)
		}
		waitReady(t, kindApplication, ns, app, 60*time.Second)
	})

	srv := newServer(name, ns, app)
	srv.Spec["resources"] = map[string]any{"requests": map[string]any{"cpu": "2"}}
	change := func(t *testing.T, what string, wait func()) {
		t.Helper()
		applied := time.Now()
		if _, err := k.apply(t.Context(), srv.object()); err != nil {
			t.Fatal(err)
		}
		wait()
		slowSpecChange(t, what, applied)
	}
	step(t, "Burst", func(t *testing.T) {
		meter := startBreakerMeter(t, ns, name)
		start := time.Now()
		change(t, "the new server was Ready", func() { waitServerReplicas(t, ns, name, 1) })
		created := time.Since(start)
		srv.Spec["replicas"] = int64(2)
		change(t, "2 replicas were available", func() { waitServerReplicas(t, ns, name, 2) })
		srv.Spec["replicas"] = int64(3)
		change(t, "3 replicas were available", func() { waitServerReplicas(t, ns, name, 3) })
		srv.Spec["autoscaling"] = map[string]any{"enabled": true, "metric": "cpu", "minReplicas": int64(2), "maxReplicas": int64(4)}
		change(t, "the autoscaler was composed", func() {
			waitXRCondition(t, kindServer, ns, name, "Autoscaling", "True", "HorizontalPodAutoscalerComposed", specChangeWait)
		})
		// The events the last change starts (the autoscaler's first sync),
		// then a quiet window: nothing changes, so nothing of ours may.
		time.Sleep(5 * time.Second)
		meter.settle()
		time.Sleep(quietWindow)
		r := meter.stop(t)
		measure(t, "server created, scaled to 2 and 3, autoscaling on: %s (created in %s); core's circuit breaker charged it %.0f tokens of %.0f (+%.0f/s); watch events seen, in tokens: %v; %d moments not Ready were core putting earlier conditions back",
			time.Since(start).Round(100*time.Millisecond), created.Round(100*time.Millisecond), r.charged, breakerBurst, breakerRefill, r.bySrc, r.replays)
		if r.notReady != "" {
			t.Errorf("the server turned not Ready after it was Ready once: %s", r.notReady)
		}
		if len(r.churn) > 0 {
			t.Errorf("in %s without a change the server's status changed %d times in fields the function returns (its answer moves while nothing it reads does): %s",
				quietWindow, len(r.churn), strings.Join(r.churn, "; "))
		}
		if r.opened != "" || r.opens > 0 {
			// Each reconcile writes the server twice: core's status apply,
			// which carries the conditions of its cached, possibly stale,
			// read (v2.2.1 composition_functions.go, "Include any pending
			// conditions"), then its status update with the function's
			// conditions; each write is an event on the server itself.
			for _, l := range r.timeline {
				t.Log("server update: " + l)
			}
			finding(t, "Crossplane opened a server's circuit breaker %.0f times during the burst (%s Responsive: %q); the server was updated %d times (timeline above)", r.opens, name, r.opened, len(r.timeline))
		}
	})
}

// Crossplane core's circuit breaker per composite (v2.2.1 and v2.3.4
// internal/circuit/token_bucket.go NewTokenBucketBreaker): a bucket of 100
// tokens, one back per second. Each watch event that maps to the composite
// takes one token per call of the map function, and controller-runtime
// calls it with both the old and the new object of an update
// (pkg/handler/enqueue_mapped.go Update), so an update takes two. Events
// of objects being deleted pass free (internal/circuit/mapfunc.go).
const (
	quietWindow   = 20 * time.Second
	breakerBurst  = 100.0
	breakerRefill = 1.0 // tokens per second
)

// breakerMeter watches what core's watches see for one server: the server
// itself and the objects it composes (core labels them with
// crossplane.io/composite), in core's tokens. It over-counts a little:
// core charges a composed object's events only once the object is among
// the server's resourceRefs. Core's own count of all servers comes from
// its metrics.
type breakerMeter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// core's circuit_breaker_opens_total and events_total of servers at
	// the start.
	opens, events float64

	mu       sync.Mutex
	bySrc    map[string]int
	seen     seenConditions
	ready    bool
	notReady string
	replays  int
	opened   string
	last     *unstructured.Unstructured
	timeline []string // each server update, in order
	quiet    bool     // no change is being made: nothing of ours may change
	churn    []string // server updates in the quiet window beyond core's own
}

type breakerReport struct {
	// opens and charged: core's circuit_breaker_opens_total and
	// events_total of servers over the meter's time (no other server
	// changes meanwhile).
	opens, charged float64
	bySrc          map[string]int
	notReady       string // the first server event not Ready after Ready
	replays        int    // events not Ready after Ready with earlier conditions
	opened         string // the server's Responsive=False condition
	timeline       []string
	churn          []string
}

func startBreakerMeter(t *testing.T, ns, name string) *breakerMeter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &breakerMeter{cancel: cancel, bySrc: map[string]int{}, seen: seenConditions{}}
	m.opens, m.events = serverBreakerCounts(t)
	watchKind := func(gvk schema.GroupVersionKind, opts metav1.ListOptions) {
		c, err := lab.Kube.client(ctx, gvk, ns)
		if err != nil {
			t.Logf("not watching %s: %v", gvk.Kind, err)
			return
		}
		w, err := c.Watch(ctx, opts)
		if err != nil {
			t.Fatalf("watch %s: %v", gvk.Kind, err)
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer w.Stop()
			for ev := range w.ResultChan() {
				m.record(gvk.Kind, ev)
			}
		}()
	}
	watchKind(schema.FromAPIVersionAndKind(apiVersionKalypso, kindServer), metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Version: "v1", Kind: "Service"},
		{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"},
		{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
		{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
		schema.FromAPIVersionAndKind(apiVersionProtection, "Usage"),
	} {
		watchKind(gvk, metav1.ListOptions{LabelSelector: "crossplane.io/composite=" + name})
	}
	return m
}

func (m *breakerMeter) record(kind string, ev watch.Event) {
	u, ok := ev.Object.(*unstructured.Unstructured)
	if !ok || u.GetDeletionTimestamp() != nil {
		return
	}
	cost := 0
	switch ev.Type {
	case watch.Added, watch.Deleted:
		cost = 1
	case watch.Modified:
		cost = 2
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bySrc[kind] += cost
	if kind != kindServer {
		return
	}
	if ev.Type == watch.Modified && m.last != nil {
		changed := xrChanges(m.last, u)
		change := strings.Join(writers(m.last, u), "+") + ": " + strings.Join(changed, ",")
		m.timeline = append(m.timeline, fmt.Sprintf("%s rv %s generation %d: %s", time.Now().Format("15:04:05.000"), u.GetResourceVersion(), u.GetGeneration(), change))
		if m.quiet && slices.ContainsFunc(changed, func(c string) bool { return !coreOwned(c) }) {
			m.churn = append(m.churn, change)
		}
	}
	m.last = u
	if c := getCondition(u, "Responsive"); c.Status == "False" && m.opened == "" {
		m.opened = c.Reason + ": " + c.Message
	}
	// Core may put back, for a moment, conditions the server had before
	// (seenConditions): only conditions never seen before are the
	// function's answer.
	_, replay := m.seen.add(u)
	switch c := getCondition(u, "Ready"); {
	case c.Status == "True":
		m.ready = true
	case !m.ready:
	case replay:
		m.replays++
	case m.notReady == "":
		m.notReady = fmt.Sprintf("generation %d: Ready=%s %s; %s", u.GetGeneration(), c.Status, c.Reason, conditionsSummary(u))
	}
}

func (m *breakerMeter) stop(t *testing.T) breakerReport {
	t.Helper()
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	opens, events := serverBreakerCounts(t)
	return breakerReport{opens: opens - m.opens, charged: events - m.events, bySrc: m.bySrc, notReady: m.notReady, replays: m.replays, opened: m.opened,
		timeline: m.timeline, churn: m.churn}
}

// settle starts the quiet window: from now on no spec changes, so a
// server update that changes a status field the function returns is the
// function's answer moving while nothing it reads did.
func (m *breakerMeter) settle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.quiet = true
}

// managedFieldsOnly: an update that moved field ownership and changed no
// value (core's status apply taking over fields its status update wrote).
const managedFieldsOnly = "managedFields only"

// coreOwned: a change (of xrChanges) that is not the function's answer
// moving. Only the status fields the function returns count: core applies
// them as returned. Conditions do not: core's status apply re-sends the
// conditions of its cached read, which may be older than the live ones
// (v2.2.1 and v2.3.4 composition_functions.go, "Include any pending
// conditions"), and its status update then writes the current ones back;
// the lab saw that pair inside a quiet window with core v2.3.4. Spec and
// metadata are the test's and core's (resourceRefs, finalizers, labels).
func coreOwned(change string) bool {
	return change == managedFieldsOnly || !strings.HasPrefix(change, "status.")
}

// xrChanges names what an update of a composite changed: spec, metadata
// lists, each status field, and each condition whose status, reason or
// message changed, with its new status and reason (a condition whose only
// change is its transition time or observed generation is "<type>~").
func xrChanges(old, cur *unstructured.Unstructured) []string {
	var out []string
	if !equality.Semantic.DeepEqual(old.Object["spec"], cur.Object["spec"]) {
		out = append(out, "spec")
	}
	for _, f := range []string{"labels", "annotations", "finalizers", "ownerReferences"} {
		a, _, _ := unstructured.NestedFieldNoCopy(old.Object, "metadata", f)
		b, _, _ := unstructured.NestedFieldNoCopy(cur.Object, "metadata", f)
		if !equality.Semantic.DeepEqual(a, b) {
			out = append(out, "metadata."+f)
		}
	}
	oldStatus, _, _ := unstructured.NestedMap(old.Object, "status")
	curStatus, _, _ := unstructured.NestedMap(cur.Object, "status")
	for _, k := range slices.Sorted(maps.Keys(mergeKeys(oldStatus, curStatus))) {
		if k != "conditions" && !equality.Semantic.DeepEqual(oldStatus[k], curStatus[k]) {
			out = append(out, fmt.Sprintf("status.%s→%.40v", k, curStatus[k]))
		}
	}
	byType := func(u *unstructured.Unstructured) map[string]map[string]any {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		m := map[string]map[string]any{}
		for _, c := range conds {
			if c, ok := c.(map[string]any); ok {
				m[fmt.Sprint(c["type"])] = c
			}
		}
		return m
	}
	oc, cc := byType(old), byType(cur)
	for _, typ := range slices.Sorted(maps.Keys(mergeKeys(oc, cc))) {
		a, b := oc[typ], cc[typ]
		switch {
		case b == nil:
			out = append(out, typ+"→gone")
		case a == nil || a["status"] != b["status"] || a["reason"] != b["reason"] || a["message"] != b["message"]:
			out = append(out, fmt.Sprintf("%s→%v/%v %.60q (was %.60q)", typ, b["status"], b["reason"], b["message"], a["message"]))
		case !equality.Semantic.DeepEqual(a, b):
			out = append(out, typ+"~")
		}
	}
	if len(out) == 0 {
		return []string{managedFieldsOnly}
	}
	return out
}

// writers names the field managers whose managedFields entry an update
// added or moved on: who wrote it.
func writers(old, cur *unstructured.Unstructured) []string {
	before := map[string]string{}
	for _, e := range old.GetManagedFields() {
		before[e.Manager+"/"+string(e.Operation)+"/"+e.Subresource] = fmt.Sprint(e.Time, e.FieldsV1)
	}
	var out []string
	for _, e := range cur.GetManagedFields() {
		key := e.Manager + "/" + string(e.Operation) + "/" + e.Subresource
		if before[key] != fmt.Sprint(e.Time, e.FieldsV1) {
			out = append(out, key)
		}
	}
	if len(out) == 0 {
		return []string{"?"}
	}
	return out
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

// serverBreakerCounts: how many times core opened a server's circuit
// breaker, and the events it charged to servers, since it started (one
// controller per XRD, named after it).
func serverBreakerCounts(t *testing.T) (opens, events float64) {
	t.Helper()
	metrics, err := scrape(lab.CoreMetrics)
	if err != nil {
		t.Fatalf("core metrics: %v", err)
	}
	opens, _ = sum(metrics, "circuit_breaker_opens_total", "kalypsotritonservers")
	events, _ = sum(metrics, "circuit_breaker_events_total", "kalypsotritonservers")
	return opens, events
}

// assertStill watches one composite for the window while nothing changes,
// and fails the test when a status field the function returns changes:
// the function's answer moving while nothing it reads does (churn). Each
// update is a watch event on the composite that spends its circuit
// breaker's tokens and triggers another reconcile.
func assertStill(t *testing.T, kind, ns, name string, window time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), window)
	defer cancel()
	c, err := lab.Kube.client(ctx, schema.FromAPIVersionAndKind(apiVersionKalypso, kind), ns)
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var last *unstructured.Unstructured
	var churn []string
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		if ev.Type == watch.Modified && last != nil {
			changed := xrChanges(last, u)
			if slices.ContainsFunc(changed, func(c string) bool { return !coreOwned(c) }) {
				churn = append(churn, strings.Join(writers(last, u), "+")+": "+strings.Join(changed, ","))
			}
		}
		last = u
	}
	if len(churn) > 0 {
		t.Errorf("%s %s changed a status field the function returns %d times in %s while nothing changed: %s", kind, nsName(ns, name), len(churn), window, strings.Join(churn, "; "))
	}
}
