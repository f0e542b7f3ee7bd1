//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// scaleParams size the scale scenario. make e2e runs it small (the
// defaults); make scale sets SCALE_* for a larger run and SCALE_REPORT.
type scaleParams struct {
	servers, apps, projects, envs int
	idle                          time.Duration
	// report is the README (relative to the repository) whose marked
	// section receives the report; empty: none.
	report string
	// restart: SIGTERM and restart Crossplane core once the composites
	// are settled, and report the circuit breakers it opens then.
	restart bool
}

func scaleParamsFromEnv() (scaleParams, error) {
	p := scaleParams{servers: 20, apps: 4, projects: 2, envs: 2, idle: time.Minute, report: os.Getenv("SCALE_REPORT")}
	p.restart = os.Getenv("SCALE_RESTART") != ""
	err := errors.Join(
		positiveIntEnv("SCALE_SERVERS", &p.servers), positiveIntEnv("SCALE_APPS", &p.apps),
		positiveIntEnv("SCALE_PROJECTS", &p.projects), positiveIntEnv("SCALE_ENVS", &p.envs),
		positiveDurationEnv("SCALE_IDLE", &p.idle))
	return p, err
}

// positiveIntEnv sets *dst from the environment variable, if set.
func positiveIntEnv(name string, dst *int) error {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("%s=%q: want a positive integer", name, s)
		}
		*dst = n
	}
	return nil
}

// positiveDurationEnv sets *dst from the environment variable, if set.
func positiveDurationEnv(name string, dst *time.Duration) error {
	if s := os.Getenv(name); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: want a positive duration such as 60s or 5m", name, s)
		}
		*dst = d
	}
	return nil
}

func (p scaleParams) project(i int) string { return fmt.Sprintf("scale-p%d", i) }

// projectNamespaces are a project's environment namespaces.
func (p scaleParams) projectNamespaces(i int) []string {
	var out []string
	for e := range p.envs {
		out = append(out, fmt.Sprintf("scale-p%d-e%d", i, e))
	}
	return out
}

// namespaces are every environment namespace, project by project.
func (p scaleParams) namespaces() []string {
	var out []string
	for i := range p.projects {
		out = append(out, p.projectNamespaces(i)...)
	}
	return out
}

// ours tells the scenario's objects from other scenarios'.
func ours(ns, name string) bool {
	return strings.HasPrefix(ns, "scale-p") || (ns == "" && strings.HasPrefix(name, "scale-p"))
}

// scalePlan is what the scenario applies: the projects, then in each
// environment namespace, once it exists, the platform's two Secrets, its
// applications and its servers (applications round-robin over the
// namespaces, servers round-robin over the applications).
type scalePlan struct {
	projects []*unstructured.Unstructured
	batches  map[string][][]*unstructured.Unstructured // by namespace, applied in order
	xrs      []objKey
	// serversOf counts each application's servers.
	serversOf map[objKey]int64
}

func newScalePlan(t testing.TB, p scaleParams) scalePlan {
	t.Helper()
	plan := scalePlan{batches: map[string][][]*unstructured.Unstructured{}, serversOf: map[objKey]int64{}}
	decode := func(y string) []*unstructured.Unstructured {
		objs, err := decodeYAML([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	projectOf := map[string]string{}
	for i := range p.projects {
		var envs []env
		for e, ns := range p.projectNamespaces(i) {
			envs = append(envs, env{name: fmt.Sprintf("e%d", e), namespace: ns})
			projectOf[ns] = p.project(i)
		}
		plan.projects = append(plan.projects, decode(projectYAML(p.project(i), envs...))...)
		plan.xrs = append(plan.xrs, keyOf(apiVersionKalypso, kindProject, "", p.project(i)))
	}
	nss := p.namespaces()
	apps := map[string][]*unstructured.Unstructured{}
	servers := map[string][]*unstructured.Unstructured{}
	for a := range p.apps {
		ns, name := nss[a%len(nss)], fmt.Sprintf("app-%d", a)
		apps[ns] = append(apps[ns], decode(applicationYAML(name, ns, projectOf[ns]))...)
		plan.xrs = append(plan.xrs, keyOf(apiVersionKalypso, kindApplication, ns, name))
	}
	for s := range p.servers {
		a := s % p.apps
		ns, app := nss[a%len(nss)], fmt.Sprintf("app-%d", a)
		servers[ns] = append(servers[ns], newServer(fmt.Sprintf("srv-%d", s), ns, app).object())
		plan.xrs = append(plan.xrs, keyOf(apiVersionKalypso, kindServer, ns, fmt.Sprintf("srv-%d", s)))
		plan.serversOf[keyOf(apiVersionKalypso, kindApplication, ns, app)]++
	}
	for _, ns := range nss {
		plan.batches[ns] = [][]*unstructured.Unstructured{
			decode(storageSecretYAML(ns) + "---\n" + apiKeySecretYAML(ns)), apps[ns], servers[ns],
		}
	}
	return plan
}

// scaleWorkers is how many requests the scenario's client has in flight
// when it applies the Kalypso composites, and the bound's reference.
const scaleWorkers = 10

// settleQuiet: how long no composite may change before the idle period
// starts: longer than the bursts of a settling composite (a reconcile
// follows an event within a second), well below the TTLs of a settled one
// (a minute for applications and projects, ten for servers). settleMax
// bounds the wait.
const (
	settleQuiet = 15 * time.Second
	settleMax   = 3 * time.Minute
)

// scaleRun is one creation measured from its first apply.
type scaleRun struct {
	applied          time.Duration // every apply returned
	exist, available time.Duration // (a), (b)
	ready            time.Duration // (c): composites Ready (the bound: (b))
	creating         scaleWindow
	deleted          time.Duration // deleting everything, until it is gone
}

// TestScale runs N servers over A applications in P projects of E
// environments at once and measures, per phase, Kalypso against a bound:
// the same objects applied directly by one client. See test/scale/README.md.
func TestScale(t *testing.T) {
	requireFlavour(t, flavourV2)
	p, err := scaleParamsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d servers, %d applications, %d projects × %d environments, idle %s", p.servers, p.apps, p.projects, p.envs, p.idle)
	for i := range p.projects {
		teardown(t, p.project(i), p.projectNamespaces(i)...)
	}
	plan := newScalePlan(t, p)
	// Generous limits: only something broken should reach them.
	createTimeout := 3*time.Minute + time.Duration(p.servers)*300*time.Millisecond
	deleteTimeout := 5*time.Minute + time.Duration(p.servers)*200*time.Millisecond

	var (
		obs     *observer
		wl      *kube
		nodes   string
		rssNote string
		load    string // 1-minute load average before the first apply
		kalypso scaleRun
		perKind = map[string]time.Duration{}
		goneAt  map[string]time.Duration
		settle  scaleWindow
		idle    scaleWindow
		idleEnd time.Time
		// deleteStart: from here composites go away (and projects, being
		// released, close their quotas): losing Ready is expected.
		deleteStart time.Time
		composed    []composedRef
		bound       []*unstructured.Unstructured
		bounds      = map[int]scaleRun{}
	)
	step(t, "Setup", func(st *testing.T) {
		start := time.Now()
		// Measure on a quiet lab: earlier scenarios' projects may still be
		// being deleted in the background.
		waitBackground(3 * time.Minute)
		st.Logf("earlier clean-ups done after %s", time.Since(start).Round(100*time.Millisecond))
		settleGarbageCollector(st)
		nodes = scaleNodes(st, t, p.servers)
		var err error
		if obs, err = startObserver(st.Context()); err != nil {
			st.Fatal(err)
		}
		t.Cleanup(obs.close)
		// The workload goes without a client-side rate limit: the control
		// plane is measured, not the client.
		cfg := rest.CopyConfig(lab.Kube.cfg)
		cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
		if wl, err = newKube(cfg); err != nil {
			st.Fatal(err)
		}
	})

	step(t, "Create", func(t *testing.T) {
		core := lab.proc("crossplane-core")
		// Peak RSS of this scenario, not of the scenarios before it.
		if err := core.resetPeakRSS(); err != nil {
			rssNote = fmt.Sprintf(" (since core started: resetting VmHWM failed: %v)", err)
		}
		// The lab shares the machine: say how busy it was.
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			load, _, _ = strings.Cut(string(b), " ")
		}
		before := takeSnapshot(t, obs)
		ctx := t.Context()
		slots := make(chan struct{}, scaleWorkers)
		if err := applyAll(ctx, wl, fieldManager, slots, plan.projects); err != nil {
			t.Fatal(err)
		}
		deadline := before.at.Add(createTimeout)
		var wg sync.WaitGroup
		errs := make(chan error, len(plan.batches))
		for ns, batches := range plan.batches {
			wg.Go(func() {
				// A namespaced object can be applied once its namespace exists.
				for !obs.exists(keyOf("v1", "Namespace", "", ns)) {
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("namespace %s not created within %s", ns, createTimeout)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				for _, b := range batches {
					if err := applyAll(ctx, wl, fieldManager, slots, b); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
		kalypso.applied = time.Since(before.at)

		waitFor(t, fmt.Sprintf("%d composites Ready", len(plan.xrs)), time.Until(deadline), func() (bool, string, error) {
			_, missing := obs.latest(obs.ready, plan.xrs)
			return len(missing) == 0, fmt.Sprintf("%d not Ready, e.g. %v", len(missing), first(missing)), nil
		})
		readyAt, _ := obs.latest(obs.ready, plan.xrs)
		for _, kind := range []string{kindProject, kindApplication, kindServer} {
			var keys []objKey
			for _, k := range plan.xrs {
				if k.kind == keyOf(apiVersionKalypso, kind, "", "").kind {
					keys = append(keys, k)
				}
			}
			at, _ := obs.latest(obs.ready, keys)
			perKind[kind] = at.Sub(before.at)
		}
		kalypso.ready = readyAt.Sub(before.at)
		kalypso.creating = windowOf(before, takeSnapshot(t, obs))

		composed = obs.composedOf(t, plan.xrs)
		count := map[string]int{}
		var keys, deployments []objKey
		for _, r := range composed {
			k := keyOf(r.APIVersion, r.Kind, r.Namespace, r.Name)
			keys = append(keys, k)
			count[r.Kind]++
			if k.kind == "Deployment.apps" {
				deployments = append(deployments, k)
			}
		}
		for kind, want := range map[string]int{"Namespace": p.projects * p.envs, "Deployment": p.servers, "Service": p.servers} {
			if count[kind] != want {
				t.Errorf("the composites compose %d %ss, want %d", count[kind], kind, want)
			}
		}
		existAt, missing := obs.latest(obs.created, keys)
		if len(missing) > 0 {
			t.Fatalf("%d composed objects the observer does not have (a kind missing from scaleWatchedKinds?), e.g. %v", len(missing), first(missing))
		}
		kalypso.exist = existAt.Sub(before.at)
		availAt, missing := obs.latest(obs.available, deployments)
		if len(missing) > 0 {
			t.Fatalf("every server is Ready but %d Deployments are not available, e.g. %v", len(missing), first(missing))
		}
		kalypso.available = availAt.Sub(before.at)
		checkWatchHandlers(t)
		measure(t, "%d servers, %d applications, %d projects × %d environments (%d composed objects): all applied %s, (a) every composed object exists %s, (b) every Deployment available %s, (c) every composite Ready %s after the first apply",
			p.servers, p.apps, p.projects, p.envs, len(composed), sec(kalypso.applied), sec(kalypso.exist), sec(kalypso.available), sec(kalypso.ready))
	})

	// Every composite Ready is not yet the steady state: statuses still
	// settle (an application counting its servers; core putting earlier
	// conditions back and the function's answer again, README "Crossplane
	// versions"). The idle period starts once no composite changed for
	// settleQuiet, so that it measures the steady cost alone.
	step(t, "Settle", func(t *testing.T) {
		before := takeSnapshot(t, obs)
		deadline := time.Now().Add(settleMax)
		for time.Since(obs.lastComposite()) < settleQuiet && time.Now().Before(deadline) {
			time.Sleep(time.Second)
		}
		settle = windowOf(before, takeSnapshot(t, obs))
		if time.Since(obs.lastComposite()) < settleQuiet {
			finding(t, "composites still changed %s after every one was Ready; the idle period starts anyway", settleMax)
		}
		measure(t, "settled %s after every composite was Ready: %.1f API server requests per server meanwhile",
			settle.took.Round(time.Second), total(settle.requests)/float64(p.servers))
	})

	step(t, "Idle", func(t *testing.T) {
		before := takeSnapshot(t, obs)
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(p.idle):
		}
		after := takeSnapshot(t, obs)
		idle, idleEnd = windowOf(before, after), after.at
		measure(t, "idle for %s: %.2f API server requests per server per minute, %.2f of them Crossplane core's",
			p.idle, perServerMinute(total(idle.requests), p.servers, idle.took), perServerMinute(total(idle.core), p.servers, idle.took))
	})

	step(t, "ApplicationCounts", func(t *testing.T) {
		// Servers are required resources of their application, which
		// counts them at its poll (compose.PollTTL, a minute).
		for app, n := range plan.serversOf {
			waitFor(t, fmt.Sprintf("%s counts %d Ready servers", app, n), 90*time.Second, func() (bool, string, error) {
				u, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindApplication, app.ns, app.name)
				if err != nil || u == nil {
					return false, "absent", err
				}
				act, ready := integer(u, "status", "activeModels"), integer(u, "status", "readyModels")
				return act == n && ready == n, fmt.Sprintf("activeModels %d readyModels %d", act, ready), nil
			})
		}
	})

	var restart *restartResult
	if p.restart {
		step(t, "RestartCore", func(t *testing.T) {
			restart = restartCore(t)
			measure(t, "Crossplane core restarted (SIGTERM): every composite reconciled %s after the start; %.0f breaker openings, composites not Responsive: %v",
				restart.reconciled.Round(100*time.Millisecond), restart.opens, restart.unresponsive)
		})
	}

	step(t, "CaptureBound", func(t *testing.T) {
		bound = captureBound(t, wl, composed)
		t.Logf("the bound applies %d objects (every composed object but Crossplane's Usages)", len(bound))
	})

	step(t, "Delete", func(t *testing.T) {
		deleteStart = time.Now()
		kalypso.deleted, goneAt = deleteKalypso(t, p, plan, wl, obs, deleteTimeout)
		measure(t, "deleting every composite and everything composed took %s (servers gone after %s, applications %s, projects %s)",
			sec(kalypso.deleted), sec(goneAt[kindServer]), sec(goneAt[kindApplication]), sec(goneAt[kindProject]))
	})

	for _, workers := range []int{scaleWorkers, 1, 50} {
		step(t, fmt.Sprintf("Bound%dWorkers", workers), func(t *testing.T) {
			bounds[workers] = runBound(t, obs, wl, bound, workers, createTimeout, deleteTimeout)
		})
	}

	step(t, "Report", func(t *testing.T) {
		scenario := func(k objKey) bool { return ours(k.ns, k.name) }
		rss := peakRSS(lab.proc("crossplane-core")) + rssNote
		if restart != nil {
			rss = restart.rss + rssNote + " before the restart, " + peakRSS(lab.proc("crossplane-core")) + " after it"
		}
		r := scaleReport{
			params: p, nodes: nodes, load: load, rss: rss, kalypso: kalypso, perKind: perKind, goneAt: goneAt, restart: restart,
			settle: settle, idle: idle, bounds: bounds, composed: len(composed), bound: len(bound),
			unresponsive: obs.unresponsiveOf(scenario), idleEnd: idleEnd,
		}
		var details []string
		r.lostReady, r.lostReadyTimes, r.lostReasons, details = obs.lostReadyOf(scenario, deleteStart)
		for _, d := range details {
			t.Logf("lost Ready in a state not seen before: %s", d)
		}
		if p.report != "" {
			var err error
			if r.earlier, err = earlierRuns(lab.repoPath(p.report), r.heading()); err != nil {
				t.Fatal(err)
			}
		}
		table := r.markdown()
		t.Log("\n" + table)
		b := bounds[scaleWorkers]
		measure(t, "Kalypso ÷ bound (%d workers): (a) %.2f×, (b) %.2f×, (c) %.2f×; %.1f API server requests per server while creating; %.2f per server per minute idle",
			scaleWorkers, ratio(kalypso.exist, b.exist), ratio(kalypso.available, b.available), ratio(kalypso.ready, b.ready),
			total(kalypso.creating.requests)/float64(p.servers), perServerMinute(total(idle.requests), p.servers, idle.took))
		if p.report != "" {
			if err := writeReport(lab.repoPath(p.report), r.heading(), table); err != nil {
				t.Fatal(err)
			}
			t.Logf("report written to %s", p.report)
		}
	})
}

// scaleNodes adds CPU nodes until there is one per 200 servers (each takes
// cpuNodePods), so that scheduling is never the limit, and describes the
// lab's nodes. Extra nodes go at the end of the scenario (cleanup).
func scaleNodes(t, cleanup *testing.T, servers int) string {
	want := (servers + 199) / 200
	for i := 1; i < want; i++ {
		n := newCPUNode(fmt.Sprintf("kwok-cpu-%d", i))
		if _, err := lab.Kube.Typed.CoreV1().Nodes().Create(t.Context(), n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		cleanup.Cleanup(func() {
			_ = lab.Kube.Typed.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		})
	}
	var desc string
	waitFor(t, fmt.Sprintf("%d CPU nodes Ready", want), time.Minute, func() (bool, string, error) {
		l, err := lab.Kube.Typed.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		cpu, ready := 0, 0
		for _, n := range l.Items {
			if _, gpu := n.Status.Capacity[gpuResource]; !gpu {
				cpu++
			}
			if nodeReady(&n) {
				ready++
			}
		}
		desc = fmt.Sprintf("%d nodes: %d with GPUs (tainted) and %d CPU (%d pods each)", len(l.Items), len(l.Items)-cpu, cpu, cpuNodePods)
		return cpu >= want && ready == len(l.Items), desc + fmt.Sprintf(", %d Ready", ready), nil
	})
	return desc
}

// settleGarbageCollector waits until 40 s after the Kalypso CRDs appeared.
// kube-controller-manager's garbage collector learns about new kinds at its
// discovery resync, every 30 s; until then it retries, with back-off, every
// dependent of an owner of a kind it does not know, one GET each time, which
// a cluster whose CRDs were installed long before does not see (make scale
// starts right after the lab).
func settleGarbageCollector(t *testing.T) {
	crds, err := lab.Kube.list(t.Context(), "apiextensions.k8s.io/v1", "CustomResourceDefinition", "")
	if err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	for _, c := range crds {
		if str(&c, "spec", "group") == "serving.kalypso.io" && c.GetCreationTimestamp().After(newest) {
			newest = c.GetCreationTimestamp().Time
		}
	}
	if wait := time.Until(newest.Add(40 * time.Second)); wait > 0 {
		t.Logf("waiting %s for the garbage collector to know the Kalypso kinds", wait.Round(100*time.Millisecond))
		time.Sleep(wait)
	}
}

// applyAll server-side applies objects as manager, with at most cap(slots)
// requests in flight across every caller sharing slots.
func applyAll(ctx context.Context, k *kube, manager string, slots chan struct{}, objs []*unstructured.Unstructured) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(objs))
	for _, o := range objs {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			c, err := k.client(ctx, o.GroupVersionKind(), o.GetNamespace())
			if err == nil {
				_, err = c.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: manager, Force: true})
			}
			if err != nil {
				errs <- fmt.Errorf("apply %s %s: %w", o.GetKind(), nsName(o.GetNamespace(), o.GetName()), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// composedOf reads from the observer what the composites composed.
func (o *observer) composedOf(t testing.TB, xrs []objKey) []composedRef {
	t.Helper()
	var out []composedRef
	for _, k := range xrs {
		obj, ok, err := o.stores[k.kind].GetByKey(nsName(k.ns, k.name))
		if err != nil || !ok {
			t.Fatalf("the observer has no %v: %v", k, err)
		}
		out = append(out, composedRefs(t, obj.(*unstructured.Unstructured))...)
	}
	return out
}

// captureBound reads what Kalypso composed, but Crossplane's Usages, as a
// client would apply it itself: without what the API server, the
// controllers and Crossplane added. Namespaces keep their names: the bound
// runs once Kalypso's are gone.
func captureBound(t testing.TB, k *kube, composed []composedRef) []*unstructured.Unstructured {
	t.Helper()
	want := map[objKey]bool{}
	kinds := map[schema.GroupVersionKind]bool{}
	for _, r := range composed {
		gvk := schema.FromAPIVersionAndKind(r.APIVersion, r.Kind)
		if gvk.Group == "protection.crossplane.io" {
			continue
		}
		want[keyOf(r.APIVersion, r.Kind, r.Namespace, r.Name)] = true
		kinds[gvk] = true
	}
	var out []*unstructured.Unstructured
	for gvk := range kinds {
		m, err := k.resourceFor(t.Context(), gvk)
		if err != nil {
			t.Fatal(err)
		}
		l, err := k.Dyn.Resource(m.Resource).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kalypso-serving"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range l.Items {
			u := &l.Items[i]
			key := keyOf(u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
			if want[key] {
				delete(want, key)
				out = append(out, boundObject(u))
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("%d composed objects lack the label app.kubernetes.io/managed-by=kalypso-serving, e.g. %v", len(want), first(slices.Collect(maps.Keys(want))))
	}
	return out
}

// boundObject strips an object of what others than its author wrote.
func boundObject(u *unstructured.Unstructured) *unstructured.Unstructured {
	o := u.DeepCopy()
	for _, f := range []string{"uid", "resourceVersion", "managedFields", "ownerReferences", "creationTimestamp", "generation"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(o.Object, "status")
	// The Service's allocated addresses.
	unstructured.RemoveNestedField(o.Object, "spec", "clusterIP")
	unstructured.RemoveNestedField(o.Object, "spec", "clusterIPs")
	// Crossplane's labels and annotations (composite, resource name) would
	// also make core map the bound's events to composites; the Deployment
	// controller's revision.
	strip := func(m map[string]string) map[string]string {
		for k := range m {
			if strings.HasPrefix(k, "crossplane.io/") || strings.HasPrefix(k, "deployment.kubernetes.io/") {
				delete(m, k)
			}
		}
		return m
	}
	o.SetLabels(strip(o.GetLabels()))
	o.SetAnnotations(strip(o.GetAnnotations()))
	return o
}

// deleteKalypso deletes every composite at once, as a GitOps prune would:
// the projects released first, deletes a Usage refuses (an application
// while it has servers, a project while it has applications) retried every
// second. It returns how long until every composite, and every Namespace,
// Deployment and pod they composed, is gone, and until the composites of
// each kind were.
func deleteKalypso(t *testing.T, p scaleParams, plan scalePlan, wl *kube, obs *observer, timeout time.Duration) (time.Duration, map[string]time.Duration) {
	start := time.Now()
	goneAt := map[string]time.Duration{}
	for i := range p.projects {
		if err := releaseProject(t.Context(), p.project(i)); err != nil {
			t.Fatal(err)
		}
	}
	tried := map[objKey]time.Time{}
	var lastErr error
	var mu sync.Mutex
	slots := make(chan struct{}, scaleWorkers)
	waitFor(t, fmt.Sprintf("%d composites gone", len(plan.xrs)), timeout, func() (bool, string, error) {
		var left []objKey
		var wg sync.WaitGroup
		leftOf := map[string]int{kindProject: 0, kindApplication: 0, kindServer: 0}
		for _, k := range plan.xrs {
			kind, _, _ := strings.Cut(k.kind, ".")
			obj, ok, _ := obs.stores[k.kind].GetByKey(nsName(k.ns, k.name))
			if !ok {
				continue
			}
			left = append(left, k)
			leftOf[kind]++
			if obj.(*unstructured.Unstructured).GetDeletionTimestamp() != nil || time.Since(tried[k]) < time.Second {
				continue
			}
			tried[k] = time.Now()
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				if err := wl.del(t.Context(), apiVersionKalypso, kind, k.ns, k.name); err != nil {
					mu.Lock()
					lastErr = err
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for kind, n := range leftOf {
			if _, done := goneAt[kind]; n == 0 && !done {
				goneAt[kind] = time.Since(start)
			}
		}
		return len(left) == 0, fmt.Sprintf("%d left, e.g. %v; last refusal: %v", len(left), first(left), lastErr), nil
	})
	waitGoneFrom(t, obs, timeout-time.Since(start))
	return time.Since(start), goneAt
}

// waitGoneFrom waits until the scenario's Namespaces, Deployments and pods
// are gone.
func waitGoneFrom(t *testing.T, obs *observer, timeout time.Duration) {
	t.Helper()
	waitFor(t, "every Namespace, Deployment and pod of the scenario gone", timeout, func() (bool, string, error) {
		counts := map[string]int{}
		for _, kind := range []string{"Namespace", "Deployment.apps", "Pod"} {
			counts[kind] = len(obs.list(kind, func(m metav1.Object) bool { return ours(m.GetNamespace(), m.GetName()) }))
		}
		return counts["Namespace"]+counts["Deployment.apps"]+counts["Pod"] == 0, fmt.Sprint(counts), nil
	})
}

// runBound applies the bound's objects with the given number of workers
// (Namespaces first), measures until they exist and every Deployment is
// available, then deletes them (their Namespaces) until they are gone.
func runBound(t *testing.T, obs *observer, wl *kube, objs []*unstructured.Unstructured, workers int, createTimeout, deleteTimeout time.Duration) scaleRun {
	var run scaleRun
	var namespaces, rest []*unstructured.Unstructured
	var keys, deployments []objKey
	for _, o := range objs {
		k := keyOf(o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName())
		keys = append(keys, k)
		switch k.kind {
		case "Namespace":
			namespaces = append(namespaces, o)
		case "Deployment.apps":
			deployments = append(deployments, k)
		}
		if k.kind != "Namespace" {
			rest = append(rest, o)
		}
	}
	before := takeSnapshot(t, obs)
	slots := make(chan struct{}, workers)
	for _, batch := range [][]*unstructured.Unstructured{namespaces, rest} {
		if err := applyAll(t.Context(), wl, "bound", slots, batch); err != nil {
			t.Fatal(err)
		}
	}
	run.applied = time.Since(before.at)
	waitFor(t, fmt.Sprintf("%d objects exist, %d Deployments available", len(keys), len(deployments)), createTimeout, func() (bool, string, error) {
		_, absent := obs.latest(obs.created, keys)
		_, unavailable := obs.latest(obs.available, deployments)
		return len(absent)+len(unavailable) == 0, fmt.Sprintf("%d absent, %d Deployments not available", len(absent), len(unavailable)), nil
	})
	existAt, _ := obs.latest(obs.created, keys)
	availAt, _ := obs.latest(obs.available, deployments)
	run.creating = windowOf(before, takeSnapshot(t, obs))
	run.exist, run.available = existAt.Sub(before.at), availAt.Sub(before.at)
	run.ready = run.available
	measure(t, "bound, %d workers: %d objects applied %s, (a) all exist %s, (b) every Deployment available %s after the first apply",
		workers, len(objs), sec(run.applied), sec(run.exist), sec(run.available))

	start := time.Now()
	slots = make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, o := range objs {
		if o.GetNamespace() != "" {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := wl.del(t.Context(), o.GetAPIVersion(), o.GetKind(), "", o.GetName()); err != nil {
				t.Errorf("delete %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		})
	}
	wg.Wait()
	waitGoneFrom(t, obs, deleteTimeout)
	run.deleted = time.Since(start)
	return run
}

func first[T any](s []T) any {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

func sec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func ratio(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }

// restartResult is what a restart of Crossplane core did to the settled
// composites.
type restartResult struct {
	rss          string        // core's peak RSS before the restart
	reconciled   time.Duration // from the start until two calls per composite
	opens        float64       // circuit breaker openings by the new core
	unresponsive []string      // composites with Responsive=False then
}

// restartCore stops Crossplane core with SIGTERM and starts it again, as a
// rollout does. The new core's first reconcile of each composite starts its
// watches again (engine.StartWatches), and every handler replays the
// objects of its kind: what that costs the circuit breakers shows in the
// new process's circuit_breaker_opens_total and in Responsive conditions,
// read 60 s after every composite was reconciled.
func restartCore(t *testing.T) *restartResult {
	t.Helper()
	r := &restartResult{rss: peakRSS(lab.proc("crossplane-core"))}
	r.reconciled = restartCoreUntilReconciled(t, nil)
	time.Sleep(60 * time.Second)
	metrics, err := scrape(lab.CoreMetrics)
	if err != nil {
		t.Fatalf("core metrics: %v", err)
	}
	r.opens, _ = sum(metrics, "circuit_breaker_opens_total")
	for _, kind := range []string{kindProject, kindApplication, kindServer} {
		items, err := lab.Kube.list(t.Context(), apiVersionKalypso, kind, "")
		if err != nil {
			t.Fatal(err)
		}
		for i := range items {
			if c := getCondition(&items[i], "Responsive"); c.Status == "False" {
				r.unresponsive = append(r.unresponsive, kind+" "+nsName(items[i].GetNamespace(), items[i].GetName()))
			}
		}
	}
	return r
}
