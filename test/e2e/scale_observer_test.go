//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// objKey names an object: its group-qualified kind ("Deployment.apps"),
// namespace and name.
type objKey struct{ kind, ns, name string }

func keyOf(apiVersion, kind, ns, name string) objKey {
	return objKey{schema.FromAPIVersionAndKind(apiVersion, kind).GroupKind().String(), ns, name}
}

func (k objKey) String() string { return k.kind + " " + nsName(k.ns, k.name) }

// scaleWatchedKinds are the kinds the observer follows besides Deployments
// and the composites: whatever a Kalypso composite may compose, and pods.
// Kinds the API server does not serve are skipped.
var scaleWatchedKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "Service"},
	{Version: "v1", Kind: "Pod"},
	{Version: "v1", Kind: "ResourceQuota"},
	{Version: "v1", Kind: "LimitRange"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"},
	{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
	{Group: "protection.crossplane.io", Version: "v1beta1", Kind: "Usage"},
	{Group: "protection.crossplane.io", Version: "v1beta1", Kind: "ClusterUsage"},
}

// observer follows through informers every object the scale scenario waits
// for, and records when each was created, became available (Deployments)
// or Ready (composites). Phases are timed to the watch event rather than to
// a polling interval, and the test adds only a LIST and a WATCH per kind to
// the API server's load; its client counts them so that they can be taken
// out of the API server's figures.
type observer struct {
	kube    *kube
	counter *requestCounter
	stop    chan struct{}
	stores  map[string]cache.Store // by objKey.kind

	mu           sync.Mutex
	created      map[objKey]time.Time      // latest Add
	available    map[objKey]time.Time      // Deployments: available since
	ready        map[objKey]time.Time      // composites: Ready since
	unresponsive map[objKey]seen           // composites seen Responsive≠True
	lostReady    map[objKey][]lostReady    // composites: each time they went from Ready to not Ready
	conditions   map[objKey]seenConditions // composites: every state of their conditions seen
	composite    time.Time                 // the latest event of a composite

	audit auditReader
}

// startObserver starts the informers and waits until they have synced;
// close stops them.
func startObserver(ctx context.Context) (*observer, error) {
	o := &observer{
		counter: &requestCounter{n: map[string]float64{}}, stop: make(chan struct{}),
		stores: map[string]cache.Store{}, created: map[objKey]time.Time{}, available: map[objKey]time.Time{},
		ready: map[objKey]time.Time{}, unresponsive: map[objKey]seen{}, lostReady: map[objKey][]lostReady{},
		conditions: map[objKey]seenConditions{}, audit: auditReader{path: lab.AuditLog},
	}
	cfg := rest.CopyConfig(lab.Kube.cfg)
	cfg.Wrap(o.counter.wrap)
	var err error
	if o.kube, err = newKube(cfg); err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(o.kube.Dyn, 0)
	typed := informers.NewSharedInformerFactory(o.kube.Typed, 0)
	metaF := metadatainformer.NewSharedInformerFactory(mc, 0)

	var synced []cache.InformerSynced
	track := func(kind string, inf cache.SharedIndexInformer) error {
		o.stores[kind] = inf.GetStore()
		synced = append(synced, inf.HasSynced)
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { o.saw(kind, obj, true) },
			UpdateFunc: func(_, obj any) { o.saw(kind, obj, false) },
			DeleteFunc: func(obj any) { o.gone(kind, obj) },
		})
		return err
	}
	for _, kind := range []string{kindProject, kindApplication, kindServer} {
		m, err := lab.Kube.resourceFor(ctx, schema.FromAPIVersionAndKind(apiVersionKalypso, kind))
		if err != nil {
			return nil, err
		}
		if err := track(m.GroupVersionKind.GroupKind().String(), dyn.ForResource(m.Resource).Informer()); err != nil {
			return nil, err
		}
	}
	if err := track("Deployment.apps", typed.Apps().V1().Deployments().Informer()); err != nil {
		return nil, err
	}
	for _, gvk := range scaleWatchedKinds {
		if !lab.Kube.served(gvk) {
			continue
		}
		m, err := lab.Kube.resourceFor(ctx, gvk)
		if err != nil {
			return nil, err
		}
		if err := track(gvk.GroupKind().String(), metaF.ForResource(m.Resource).Informer()); err != nil {
			return nil, err
		}
	}
	dyn.Start(o.stop)
	typed.Start(o.stop)
	metaF.Start(o.stop)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		o.close()
		return nil, errors.New("the observer's informers did not sync within a minute")
	}
	return o, nil
}

func (o *observer) close() { close(o.stop) }

// lastComposite is when a composite last changed (or appeared).
func (o *observer) lastComposite() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.composite
}

// saw records an object's creation, availability and readiness.
func (o *observer) saw(kind string, obj any, added bool) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	k := objKey{kind, m.GetNamespace(), m.GetName()}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.created[k]; added || !ok {
		o.created[k] = now
	}
	since := func(m map[objKey]time.Time, ok bool) {
		_, was := m[k]
		switch {
		case ok && !was:
			m[k] = now
		case !ok:
			delete(m, k)
		}
	}
	switch v := obj.(type) {
	case *appsv1.Deployment:
		since(o.available, deploymentAvailable(v))
	case *unstructured.Unstructured:
		o.composite = now
		c := getCondition(v, "Ready")
		ready := c.Status == "True"
		if o.conditions[k] == nil {
			o.conditions[k] = seenConditions{}
		}
		fresh, replay := o.conditions[k].add(v)
		if _, was := o.ready[k]; was && !ready && v.GetDeletionTimestamp() == nil {
			l := lostReady{at: now, reason: c.Reason}
			if replay {
				l.reason += " (core put earlier conditions back)"
			} else {
				// What was new tells the function's answer from core's.
				l.reason += " (new: " + strings.Join(fresh, ", ") + ")"
				l.conditions = conditionsSummary(v)
			}
			o.lostReady[k] = append(o.lostReady[k], l)
		}
		since(o.ready, ready)
		if _, was := o.unresponsive[k]; !was {
			if c := getCondition(v, "Responsive"); c.Status != "" && c.Status != "True" {
				o.unresponsive[k] = seen{at: now, reason: c.Reason}
			}
		}
	}
}

func (o *observer) gone(kind string, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	k := objKey{kind, m.GetNamespace(), m.GetName()}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.created, k)
	delete(o.available, k)
	delete(o.ready, k)
	delete(o.conditions, k)
}

// deploymentAvailable is the function's readiness rule for a Deployment
// (ARCHITECTURE.md §4): its current generation observed, every replica
// updated and available, and the Available condition True.
func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.AvailableReplicas != want {
		return false
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// latest returns the latest time in m of the given objects, and those
// missing from m.
func (o *observer) latest(m map[objKey]time.Time, keys []objKey) (time.Time, []objKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Time
	var missing []objKey
	for _, k := range keys {
		at, ok := m[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		if at.After(last) {
			last = at
		}
	}
	return last, missing
}

// exists reports whether the observer has an object.
func (o *observer) exists(k objKey) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.created[k]
	return ok
}

// list returns the observer's objects of a kind (metadata only, except for
// composites and Deployments) that match keep.
func (o *observer) list(kind string, keep func(metav1.Object) bool) []metav1.Object {
	var out []metav1.Object
	for _, obj := range o.stores[kind].List() {
		if m, err := meta.Accessor(obj); err == nil && keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// seen is when a condition was first seen, and its reason.
type seen struct {
	at     time.Time
	reason string
}

// unresponsiveOf lists the composites keep selects that were seen with a
// Responsive condition that was not True.
func (o *observer) unresponsiveOf(keep func(objKey) bool) map[objKey]seen {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[objKey]seen{}
	for k, r := range o.unresponsive {
		if keep(k) {
			out[k] = r
		}
	}
	return out
}

// lostReady is one time a composite went from Ready to not Ready.
type lostReady struct {
	at     time.Time
	reason string // Ready's reason, and whether core put the state back
	// conditions: every condition then, when the state was new
	conditions string
}

// lostReadyOf counts how often the composites keep selects went from Ready
// to not Ready before the time given (the deletion's start: releasing a
// project closes its quotas first), and lists how often by kind and
// reason; details lists the first few states that were new in full.
func (o *observer) lostReadyOf(keep func(objKey) bool, before time.Time) (composites, times int, reasons string, details []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	count := map[string]int{}
	for _, k := range slices.SortedFunc(maps.Keys(o.lostReady), func(a, b objKey) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }) {
		if !keep(k) {
			continue
		}
		kind, _, _ := strings.Cut(k.kind, ".")
		lost := false
		for _, l := range o.lostReady[k] {
			if !l.at.Before(before) {
				continue
			}
			lost = true
			times++
			count[kind+" "+l.reason]++
			if l.conditions != "" && len(details) < 10 {
				details = append(details, fmt.Sprintf("%s %s at %s: %s", kind, nsName(k.ns, k.name), l.at.Format("15:04:05.000"), l.conditions))
			}
		}
		if lost {
			composites++
		}
	}
	var rs []string
	for _, r := range slices.Sorted(maps.Keys(count)) {
		rs = append(rs, fmt.Sprintf("%s %d", r, count[r]))
	}
	return composites, times, strings.Join(rs, ", "), details
}

// requestCounter counts a client's requests by requestKey.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]float64
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.n[requestKey(r)]++
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (c *requestCounter) snapshot() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]float64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// nonResource stands for the resource of a request outside the resource
// API (/metrics, discovery, health checks).
const nonResource = "(non-resource)"

// requestKey names a request as kube-apiserver's apiserver_request_total
// labels it (see metricKey): the verb as the API server reports it (LIST,
// WATCH and APPLY told from GET and PATCH), then resource.group/subresource.
func requestKey(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var group string
	switch {
	case len(parts) > 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) > 3 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return r.Method + " " + nonResource
	}
	// namespaces/<ns>/<resource>/…, except a namespace's own subresources.
	if len(parts) > 2 && parts[0] == "namespaces" && parts[2] != "status" && parts[2] != "finalize" {
		parts = parts[2:]
	}
	var sub string
	if len(parts) > 2 {
		sub = parts[2]
	}
	verb := r.Method
	switch w := strings.ToLower(r.URL.Query().Get("watch")); {
	case verb == http.MethodGet && w != "" && w != "0" && w != "false":
		verb = "WATCH"
	case verb == http.MethodGet && len(parts) == 1:
		verb = "LIST"
	case verb == http.MethodPatch && r.Header.Get("Content-Type") == string(types.ApplyPatchType):
		verb = "APPLY"
	}
	return verb + " " + resourceName(group, parts[0], sub)
}

func resourceName(group, resource, sub string) string {
	if resource == "" {
		return nonResource
	}
	if group != "" {
		resource += "." + group
	}
	if sub != "" {
		resource += "/" + sub
	}
	return resource
}

// apiRequests scrapes kube-apiserver's apiserver_request_total, summed by
// verb, resource and subresource.
func (o *observer) apiRequests(ctx context.Context) (map[string]float64, error) {
	b, err := o.kube.Typed.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	samples, err := parseSamples(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range samples {
		if s.name == "apiserver_request_total" {
			l := s.labels
			out[labelValue(l, "verb")+" "+resourceName(labelValue(l, "group"), labelValue(l, "resource"), labelValue(l, "subresource"))] += s.value
		}
	}
	if len(out) == 0 {
		return nil, errors.New("kube-apiserver's /metrics has no apiserver_request_total")
	}
	return out, nil
}

// labelValue reads one label of a Prometheus sample's {…}.
func labelValue(labels, name string) string {
	for _, prefix := range []string{"{" + name + `="`, "," + name + `="`} {
		if i := strings.Index(labels, prefix); i >= 0 {
			v := labels[i+len(prefix):]
			return v[:strings.IndexByte(v, '"')]
		}
	}
	return ""
}

// auditReader reads the audit log (Crossplane core's requests only, see
// auditPolicy) from where it last stopped.
type auditReader struct {
	path string
	off  int64
}

// auditVerbs maps the audit log's verbs to apiserver_request_total's. The
// audit log does not tell a server-side apply from another patch.
var auditVerbs = map[string]string{"create": "POST", "update": "PUT", "patch": "PATCH|APPLY"}

// auditEntry is what the readers use of one audit event.
type auditEntry struct {
	Stage, Verb, RequestURI string
	ObjectRef               *struct{ Resource, APIGroup, Subresource string }
}

// each calls fn for every request completed since the last call.
func (a *auditReader) each(fn func(auditEntry)) error {
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(a.off, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A line the API server is still writing waits for the next call.
			return nil
		}
		if err != nil {
			return err
		}
		a.off += int64(len(line))
		var e auditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("%s: %w", a.path, err)
		}
		if e.Stage == "ResponseComplete" {
			fn(e)
		}
	}
}

// next counts the requests completed since the last call by verb and
// resource.
func (a *auditReader) next() (map[string]float64, error) {
	out := map[string]float64{}
	err := a.each(func(e auditEntry) {
		verb, ok := auditVerbs[e.Verb]
		if !ok {
			verb = strings.ToUpper(e.Verb)
		}
		res := nonResource
		if e.ObjectRef != nil {
			res = resourceName(e.ObjectRef.APIGroup, e.ObjectRef.Resource, e.ObjectRef.Subresource)
		}
		out[verb+" "+res]++
	})
	return out, err
}
