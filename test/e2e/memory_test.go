//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// memoryParams size TestCoreMemory: make e2e runs it small (the defaults),
// make core-memory with 5,000 pods and a report.
type memoryParams struct {
	pods   int
	settle time.Duration // after core's restart and first reconciles, before reading its RSS
	report string        // README receiving the report; empty: none
	// podBytes is the JSON size of one unrelated pod as served, once they run.
	podBytes int
}

func memoryParamsFromEnv() (memoryParams, error) {
	p := memoryParams{pods: 300, settle: 5 * time.Second, report: os.Getenv("MEMORY_REPORT")}
	err := errors.Join(positiveIntEnv("MEMORY_PODS", &p.pods), positiveDurationEnv("MEMORY_SETTLE", &p.settle))
	return p, err
}

// coreMemory is core's memory in one state of TestCoreMemory.
type coreMemory struct {
	state          string
	rssKB, peakKB  int64    // VmRSS once settled, VmHWM since core started
	heapMB         float64  // Go heap in use (go_memstats_heap_inuse_bytes)
	podLists       []string // the fresh core's LISTs of pods (audit log request URIs)
	stoppingLists  []string // … and those of the core stopped for it
	reconciledTook time.Duration
}

// TestCoreMemory: Crossplane core caches every object of a kind it reads,
// cluster-wide, whatever label selector a required resource names (issue
// 13, item 3). A server that reads its pods when it is not available would
// make core cache every Pod of the cluster until it restarts, so servers
// read pods only when the platform opts in (input DiagnosticsDefaults.ReadPods).
// The scenario puts unrelated pods in the cluster and reads core's memory,
// each time from a fresh core (SIGTERM, start, two function calls per composite,
// then the settle time): without those pods; with them and every server
// available; with them and one server not available, as the platform ships
// (readPods off); and with readPods on, as this function did before. Core
// must not LIST pods unless readPods is on (audit log): that fails the
// test; RSS is reported.
func TestCoreMemory(t *testing.T) {
	requireFlavour(t, flavourV2)
	p, err := memoryParamsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	const (
		project = "memory"
		ns      = "memory-prod"
		app     = "memory-app"
		podsNS  = "memory-unrelated"
		node    = "kwok-memory"
	)
	teardown(t, project, ns)
	audit := auditReader{path: lab.AuditLog}
	if _, err := audit.next(); err != nil {
		t.Fatal(err)
	}
	var states []coreMemory
	// record restarts core and reads its memory once settled. The pod
	// LISTs in the audit log are split at the restart: those of the core
	// stopped (stopping) and those of the fresh core (fresh), which alone
	// the measured RSS can owe to.
	record := func(t *testing.T, state string) (m coreMemory) {
		var err error
		var stopping []string
		took := restartCoreUntilReconciled(t, func() {
			if stopping, err = auditPodLists(&audit); err != nil {
				t.Fatal(err)
			}
		})
		time.Sleep(p.settle)
		core := lab.proc("crossplane-core")
		m = coreMemory{state: state, reconciledTook: took, stoppingLists: stopping}
		m.rssKB, _ = core.statusKB("VmRSS")
		m.peakKB, _ = core.statusKB("VmHWM")
		metrics, err := scrape(lab.CoreMetrics)
		if err != nil {
			t.Fatalf("core metrics: %v", err)
		}
		heap, _ := sum(metrics, "go_memstats_heap_inuse_bytes")
		m.heapMB = heap / (1 << 20)
		if m.podLists, err = auditPodLists(&audit); err != nil {
			t.Fatal(err)
		}
		measure(t, "%s: core RSS %d MB, peak %d MB since its start, Go heap in use %.0f MB; the fresh core's LISTs of pods: %v (the stopped core's: %v); the function called twice per composite %s after the start",
			state, m.rssKB/1024, m.peakKB/1024, m.heapMB, m.podLists, stopping, took.Round(100*time.Millisecond))
		states = append(states, m)
		return m
	}
	noPodLists := func(t *testing.T, m coreMemory) {
		if lists := append(m.stoppingLists, m.podLists...); len(lists) > 0 {
			t.Errorf("core listed pods with readPods off (%s): %v", m.state, lists)
		}
	}

	step(t, "Setup", func(t *testing.T) {
		// Measure on a quiet lab: earlier scenarios' projects may still be
		// being deleted in the background.
		waitBackground(3 * time.Minute)
		applyYAML(t, projectYAML(project, env{name: "prod", namespace: ns}))
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
		environmentSecrets(t, ns)
		applyYAML(t, applicationYAML(app, ns, project))
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		newServer("memory-ok", ns, app).apply(t)
		waitReady(t, kindServer, ns, "memory-ok", 90*time.Second)
	})

	step(t, "NoUnrelatedPods", func(t *testing.T) {
		noPodLists(t, record(t, "no unrelated pods, every server available"))
	})

	step(t, "UnrelatedPods", func(t *testing.T) {
		start := time.Now()
		p.podBytes = createUnrelatedPods(t, node, podsNS, p.pods)
		measure(t, "%d unrelated pods Running on node %s %s after the first create", p.pods, node, time.Since(start).Round(100*time.Millisecond))
		noPodLists(t, record(t, fmt.Sprintf("%d unrelated pods, every server available", p.pods)))
	})

	step(t, "ServerNotAvailable", func(t *testing.T) {
		big := newServer("memory-unavailable", ns, app)
		big.Spec["gpus"] = int64(gpusPerNode + 1)
		big.apply(t)
		waitXRCondition(t, kindServer, ns, big.Name, "ServerAvailable", "False", "", 60*time.Second)
		noPodLists(t, record(t, fmt.Sprintf("%d unrelated pods, one server not available, readPods off (the default)", p.pods)))
		xr := mustGet(t, apiVersionKalypso, kindServer, ns, big.Name)
		if c := getCondition(xr, "ServerAvailable"); c.Status != "False" || strings.Contains(c.Message, "cannot be scheduled") {
			t.Errorf("memory-unavailable ServerAvailable = %+v, want False without a pod's word (no pod is read)", c)
		}
	})

	step(t, "ReadPodsOptIn", func(t *testing.T) {
		applyYAML(t, platformDefaults+"  diagnostics:\n    readPods: true\n")
		// Back to the lab's defaults, and a core without the Pod informer
		// this step starts, for the scenarios after this one (a defer: the
		// test's context is gone by its clean-ups).
		defer func() {
			applyYAML(t, platformDefaults)
			restartCoreUntilReconciled(t, nil)
		}()
		m := record(t, fmt.Sprintf("%d unrelated pods, one server not available, readPods on (this function before issue 13)", p.pods))
		if len(m.podLists) == 0 {
			t.Errorf("the fresh core did not list pods with readPods on: the audit check cannot see the cost it guards against")
		}
		waitFor(t, "memory-unavailable names its pod's problem", 90*time.Second, func() (bool, string, error) {
			xr, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindServer, ns, "memory-unavailable")
			if err != nil || xr == nil {
				return false, "absent", err
			}
			c := getCondition(xr, "ServerAvailable")
			// The Deployment's failure keeps the reason; the pod adds the
			// scheduler's word to the message (status.go availability).
			return strings.Contains(c.Message, "cannot be scheduled") && strings.Contains(c.Message, "Insufficient "+gpuResource), c.Reason + ": " + c.Message, nil
		})
	})

	step(t, "Report", func(t *testing.T) {
		if len(states) != 4 {
			t.Fatalf("%d of 4 states measured", len(states))
		}
		base, optOut, optIn := states[0], states[2], states[3]
		growth := func(m coreMemory) float64 { return float64(m.rssKB)/float64(base.rssKB) - 1 }
		measure(t, "core RSS with %d unrelated pods and a server not available: %+.1f%% with readPods off, %+.1f%% with readPods on (target < +10%%)",
			p.pods, 100*growth(optOut), 100*growth(optIn))
		if p.report == "" {
			return
		}
		if err := writeReport(lab.repoPath(p.report), memoryHeading(p), memoryReport(p, states, growth(optOut))); err != nil {
			t.Fatal(err)
		}
	})
}

func memoryHeading(p memoryParams) string {
	return fmt.Sprintf("### Core memory: %d unrelated pods, Crossplane core %s", p.pods, coreVersion())
}

func memoryReport(p memoryParams, states []coreMemory, growth float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", memoryHeading(p))
	fmt.Fprintf(&b, "- run: %s; function built from %s; Kubernetes %s; each row from a fresh core (SIGTERM, start, two function calls per composite, then %s)\n",
		time.Now().UTC().Format(time.UnixDate), sourceRevision(), kubeVersion(), p.settle)
	fmt.Fprintf(&b, "- composites: 1 project, 1 application, 1 available server, and in the last two rows 1 server that cannot be scheduled; an unrelated pod is %d bytes of JSON as the API server serves it (kwok's status included)\n\n", p.podBytes)
	b.WriteString("| state | core RSS | core peak RSS | core's Go heap in use | the fresh core's LISTs of pods (audit log) |\n|---|---:|---:|---:|---|\n")
	for _, m := range states {
		lists := "none"
		if len(m.podLists) > 0 {
			lists = "`" + strings.Join(m.podLists, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| %s | %d MB | %d MB | %.0f MB | %s |\n", m.state, m.rssKB/1024, m.peakKB/1024, m.heapMB, lists)
	}
	fmt.Fprintf(&b, "\nRSS with the pods and a server not available, readPods off, against none of them: %+.1f%% (target < +10%%: %s).\n",
		100*growth, map[bool]string{true: "met", false: "**missed**"}[growth < 0.10])
	return b.String()
}

// restartCoreUntilReconciled stops Crossplane core with SIGTERM, runs
// whileStopped (if any), starts core again and waits until the function was
// called twice per composite (each asks for required resources, so a
// reconcile is at least two calls; a composite reconciled twice may stand in
// for one not reconciled yet, so callers settle afterwards); it returns how
// long that took from the start.
func restartCoreUntilReconciled(t *testing.T, whileStopped func()) time.Duration {
	t.Helper()
	old, err := lab.stopComponent("crossplane-core", syscall.SIGTERM, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if whileStopped != nil {
		whileStopped()
	}
	calls := functionCalls(t)
	if err := lab.startComponent(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	xrs := countComposites(t)
	waitFor(t, fmt.Sprintf("core called the function twice for each of the %d composites", xrs), 5*time.Minute, func() (bool, string, error) {
		n := functionCalls(t) - calls
		return n >= 2*xrs, fmt.Sprintf("%d calls", n), nil
	})
	return time.Since(started)
}

// createUnrelatedPods runs n pods that have nothing to do with Kalypso on a
// fake node of their own (tainted, so the scheduler puts nothing else
// there; the pods name it and skip the scheduler), and waits until kwok
// reports them all Running, and returns the JSON size of one. Node and
// namespace go when the test ends.
func createUnrelatedPods(t *testing.T, node, ns string, n int) int {
	t.Helper()
	ctx := t.Context()
	cfg := rest.CopyConfig(lab.Kube.cfg)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nd := newCPUNode(node)
	pods := *resource.NewQuantity(int64(n+10), resource.DecimalSI)
	nd.Status.Capacity[corev1.ResourcePods], nd.Status.Allocatable[corev1.ResourcePods] = pods, pods
	nd.Spec.Taints = []corev1.Taint{{Key: "kalypso-e2e/unrelated", Effect: corev1.TaintEffectNoSchedule}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, nd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		background("delete unrelated pods in "+ns, func(ctx context.Context) error {
			if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			for {
				if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
					return cs.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("namespace %s not gone: %w", ns, ctx.Err())
				case <-time.After(time.Second):
				}
			}
		})
	})

	var wg sync.WaitGroup
	errs := make(chan error, scaleWorkers)
	next := make(chan int)
	for range scaleWorkers {
		wg.Go(func() {
			failed := false
			for i := range next {
				if failed {
					continue // drain, so that the sender never blocks
				}
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, unrelatedPod(i, node), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					errs <- err
					failed = true
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("%d unrelated pods Running", n), 5*time.Minute+time.Duration(n)*20*time.Millisecond, func() (bool, string, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running", ResourceVersion: "0"})
		if err != nil {
			return false, "", err
		}
		return len(l.Items) >= n, fmt.Sprintf("%d Running", len(l.Items)), nil
	})
	raw, err := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").Name(unrelatedPod(0, node).Name).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(raw)
}

// auditPodLists returns the request URIs of core's LISTs of pods in the
// audit log since the reader's last call, and moves the reader on.
func auditPodLists(a *auditReader) ([]string, error) {
	var uris []string
	err := a.each(func(e auditEntry) {
		if e.Verb == "list" && e.ObjectRef != nil && e.ObjectRef.Resource == "pods" {
			uris = append(uris, e.RequestURI)
		}
	})
	return uris, err
}

// unrelatedPod is a workload pod of another team, about the size of a
// small real one.
func unrelatedPod(i int, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   fmt.Sprintf("web-%05d", i),
			Labels: map[string]string{"app.kubernetes.io/name": fmt.Sprintf("web-%d", i%50), "app.kubernetes.io/part-of": "unrelated"},
		},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: []corev1.Toleration{{Key: "kalypso-e2e/unrelated", Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "registry.example.com/team/web:1.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env: []corev1.EnvVar{
					{Name: "LOG_LEVEL", Value: "info"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
				}},
			}},
		},
	}
}
