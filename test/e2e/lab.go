//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/test/xpchart"
)

const (
	apiVersionKalypso = "serving.kalypso.io/v1alpha1"
	// functionName is the Compositions' functionRef name.
	functionName = "kalypsoserving-function-kalypso"
	// crossplaneNamespace is where Crossplane core would run in a cluster.
	crossplaneNamespace = "crossplane-system"
	// Identities of Crossplane core and its RBAC manager: what their service
	// accounts would authenticate as in a cluster. Neither is a
	// system:master, so core runs under the RBAC Crossplane ships plus ours.
	coreUser        = "system:serviceaccount:" + crossplaneNamespace + ":crossplane"
	rbacManagerUser = "system:serviceaccount:" + crossplaneNamespace + ":rbac-manager"

	// GPU capacity of each fake node.
	gpusPerNode = 4
	gpuResource = "nvidia.com/gpu"
)

// fakeNodes are the kwok nodes of the lab's GPU pool.
var fakeNodes = []string{"kwok-gpu-0", "kwok-gpu-1"}

// cpuNode is an untainted kwok node without GPUs, where servers that ask for
// no GPU run (a cluster's general-purpose pool).
const cpuNode = "kwok-cpu-0"

// Lab flavours: which XRDs are installed. The two define the same kind
// names (KalypsoApplication, KalypsoTritonServer), so one lab runs one.
const (
	flavourV2     = "v2"     // apis/*/: namespaced v2 composites
	flavourClaims = "claims" // apis/kalypsoprojects + apis/claims/*: legacy claims
	// The Configuration package installed by Crossplane's package manager
	// from a loopback registry (packages.go); not in the default run.
	flavourPackages = "packages"
)

// labFlavour reads E2E_FLAVOUR (v2 when unset).
func labFlavour() (string, error) {
	switch f := os.Getenv("E2E_FLAVOUR"); f {
	case "", flavourV2:
		return flavourV2, nil
	case flavourClaims, flavourPackages:
		return f, nil
	default:
		return "", fmt.Errorf("E2E_FLAVOUR=%q: want %s, %s or %s", f, flavourV2, flavourClaims, flavourPackages)
	}
}

// binaries are the lab's executables, from the environment (make e2e sets them).
type binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kwok, Crossplane, Function string
}

func binariesFromEnv() (binaries, error) {
	b := binaries{
		Etcd:              os.Getenv("E2E_ETCD"),
		APIServer:         os.Getenv("E2E_KUBE_APISERVER"),
		ControllerManager: os.Getenv("E2E_KUBE_CONTROLLER_MANAGER"),
		Scheduler:         os.Getenv("E2E_KUBE_SCHEDULER"),
		Kwok:              os.Getenv("E2E_KWOK"),
		Crossplane:        os.Getenv("E2E_CROSSPLANE"),
		Function:          os.Getenv("E2E_FUNCTION"),
	}
	var missing []string
	for env, path := range map[string]string{
		"E2E_ETCD": b.Etcd, "E2E_KUBE_APISERVER": b.APIServer, "E2E_KUBE_CONTROLLER_MANAGER": b.ControllerManager,
		"E2E_KUBE_SCHEDULER": b.Scheduler, "E2E_KWOK": b.Kwok, "E2E_CROSSPLANE": b.Crossplane, "E2E_FUNCTION": b.Function,
	} {
		if path == "" {
			missing = append(missing, env+" (unset)")
		} else if _, err := os.Stat(path); err != nil {
			missing = append(missing, env+"="+path+" (missing)")
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return b, fmt.Errorf("lab binaries not found: %s; run the lab with `make e2e`", strings.Join(missing, ", "))
	}
	return b, nil
}

// Lab is a running control plane with Crossplane and the function.
type Lab struct {
	Root    string // repository root
	LogDir  string // component logs; kept on failure
	workDir string // PKI, etcd data, caches; removed at the end

	bins binaries
	pki  *pki
	// Kube is an admin (system:masters) client.
	Kube *kube

	xpModuleDir string
	apiServer   string
	// Flavour is flavourV2 or flavourClaims.
	Flavour string
	// FunctionMetrics and CoreMetrics are the host:port of the function's
	// and Crossplane core's Prometheus endpoints.
	FunctionMetrics, CoreMetrics string
	coreHealth                   string
	// AuditLog is kube-apiserver's audit log (JSON lines; auditPolicy).
	AuditLog string

	mu    sync.Mutex
	procs []*proc
	// retired are processes that were restarted, for the RSS report.
	retired []*proc

	// Timings of the start-up, for the report.
	Timings []timing
}

type timing struct {
	What string
	Took time.Duration
}

func (l *Lab) timed(what string, start time.Time) {
	l.Timings = append(l.Timings, timing{what, time.Since(start)})
}

func (l *Lab) repoPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.Root, p)
}

func (l *Lab) start(name, bin string, args []string, env ...string) (*proc, error) {
	p, err := startProc(l.LogDir, name, bin, args, env)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// Stop stops every process the lab started, newest first, and returns a
// report of their peak RSS.
func (l *Lab) Stop() string {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	l.procs = nil
	l.mu.Unlock()
	var b strings.Builder
	var total int64
	slices.Reverse(procs)
	for _, p := range procs {
		// kube-apiserver can hang on open watches; etcd last and quick.
		p.stop(5 * time.Second)
	}
	slices.Reverse(procs)
	l.mu.Lock()
	retired := slices.Clone(l.retired)
	l.mu.Unlock()
	for _, p := range procs {
		peak, runs := p.PeakRSSMB(), 1
		for _, r := range retired {
			if r.name == p.name {
				peak, runs = max(peak, r.PeakRSSMB()), runs+1
			}
		}
		note := ""
		if runs > 1 {
			note = fmt.Sprintf(" (highest of %d runs: restarted by a scenario)", runs)
		}
		fmt.Fprintf(&b, "  %-24s %5d MB%s\n", p.name, peak, note)
		total += peak
	}
	if len(procs) > 0 {
		fmt.Fprintf(&b, "  %-24s %5d MB (sum of per-process peaks)\n", "total", total)
	}
	return b.String()
}

// checkAlive fails when a lab process has died.
func (l *Lab) checkAlive() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited (%v); last log lines:\n%s", p.name, err, p.tail(40))
		}
	}
	return nil
}

// proc returns the running process of a component.
func (l *Lab) proc(name string) *proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// stopComponent ends a component with sig (SIGKILL after grace) and keeps
// it out of checkAlive until startComponent runs it again.
func (l *Lab) stopComponent(name string, sig syscall.Signal, grace time.Duration) (*proc, error) {
	p := l.proc(name)
	if p == nil {
		return nil, fmt.Errorf("no running component %s", name)
	}
	p.kill(sig, grace)
	l.mu.Lock()
	l.procs = slices.DeleteFunc(l.procs, func(q *proc) bool { return q == p })
	l.retired = append(l.retired, p)
	l.mu.Unlock()
	return p, nil
}

// restarted tells whether a scenario stopped and started a component.
func (l *Lab) restarted(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.retired, func(p *proc) bool { return p.name == name })
}

// startComponent runs a stopped component again with the same binary,
// arguments and environment (so the same ports), and waits until it serves.
func (l *Lab) startComponent(ctx context.Context, old *proc) error {
	p, err := l.start(old.name, old.bin, old.args, old.env...)
	if err != nil {
		return err
	}
	switch old.name {
	case "function":
		return waitTCP(p, functionAddr, 30*time.Second)
	case "crossplane-core":
		if err := waitTCP(p, fmt.Sprintf("127.0.0.1:%d", webhookPort), 60*time.Second); err != nil {
			return err
		}
		return waitTCP(p, l.coreHealth, 60*time.Second)
	case "kube-apiserver":
		return l.waitAPIServer(ctx, p)
	}
	return nil
}

// newLab creates the lab's directories; Up starts it.
func newLab(root, logDir string, bins binaries) (*Lab, error) {
	base := os.TempDir()
	// etcd fsyncs every write: keep its data in memory when possible.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	removeStaleWorkDirs(base)
	// The pid in the name lets a later run remove what a killed run left.
	work, err := os.MkdirTemp(base, fmt.Sprintf("kalypso-e2e-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	flavour, err := labFlavour()
	if err != nil {
		return nil, err
	}
	return &Lab{Root: root, LogDir: logDir, workDir: work, bins: bins, Flavour: flavour}, nil
}

// removeStaleWorkDirs removes the work directories of lab runs whose test
// binary is gone (killed with SIGKILL, where no clean-up runs).
func removeStaleWorkDirs(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "kalypso-e2e-*-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.Split(strings.TrimPrefix(filepath.Base(d), "kalypso-e2e-"), "-")[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

// Cleanup removes the lab's work directory (PKI, etcd data).
func (l *Lab) Cleanup() { os.RemoveAll(l.workDir) }

// Up starts the whole lab.
func (l *Lab) Up(ctx context.Context) error {
	start := time.Now()
	type upStep = struct {
		name string
		fn   func(context.Context) error
	}
	steps := []upStep{
		{"crossplane module", l.findCrossplaneModule},
		{"pki", l.makePKI},
		{"etcd + kube-apiserver", l.startAPIServer},
		{"controller-manager, scheduler, kwok", l.startControllers},
		{"crossplane CRDs and RBAC", l.installCrossplane},
		{"function", l.startFunction},
	}
	if l.Flavour == flavourPackages {
		steps = append(steps,
			upStep{"package registry (TLS, loopback)", l.startRegistry},
			upStep{"push packages (crossplane xpkg push)", l.pushPackages},
			upStep{"crossplane core and rbac manager", l.startCrossplane},
			upStep{"ImageConfig + Configuration (package manager)", l.installConfiguration},
		)
	} else {
		steps = append(steps,
			upStep{"crossplane core and rbac manager", l.startCrossplane},
			upStep{"kalypso XRDs and Compositions (" + l.Flavour + ")", l.installKalypso},
		)
	}
	steps = append(steps,
		upStep{"platform defaults (EnvironmentConfig)", l.installPlatformDefaults},
		upStep{"fake nodes ready", l.waitNodes},
	)
	for _, s := range steps {
		t := time.Now()
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		l.timed(s.name, t)
		if err := l.checkAlive(); err != nil {
			return fmt.Errorf("after %s: %w", s.name, err)
		}
	}
	l.timed("lab up (total)", start)
	return nil
}

// findCrossplaneModule locates Crossplane's module in the module cache
// (downloading it if needed): its CRDs, chart RBAC and webhook
// configurations are installed from there.
func (l *Lab) findCrossplaneModule(ctx context.Context) error {
	version := os.Getenv("E2E_CROSSPLANE_VERSION")
	if version == "" {
		version = "v2.2.1"
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com/crossplane/crossplane/v2@"+version)
	if _, err := os.Stat(filepath.Join(dir, "cluster", "crds")); err != nil {
		cmd := exec.CommandContext(ctx, "go", "mod", "download", "github.com/crossplane/crossplane/v2@"+version)
		cmd.Dir = l.repoPath("test/tools/crossplane-core")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod download crossplane %s: %v: %s", version, err, b)
		}
	}
	l.xpModuleDir = dir
	return nil
}

// Lab PKI layout.
type labCerts struct {
	apiServer, admin, core, rbacManager, sa certPair
	fnServerDir, fnClientDir, webhookDir    string
	registryDir                             string // packages flavour's registry
}

var certs labCerts

func (l *Lab) makePKI(context.Context) error {
	p, err := newPKI(filepath.Join(l.workDir, "pki"))
	if err != nil {
		return err
	}
	l.pki = p
	loop := []net.IP{net.ParseIP("127.0.0.1")}
	steps := []struct {
		dst  *certPair
		name string
		spec certSpec
	}{
		{&certs.apiServer, "apiserver", certSpec{
			CommonName: "kube-apiserver", Server: true,
			IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		}},
		{&certs.admin, "admin", certSpec{CommonName: "kalypso-e2e-admin", Organizations: []string{"system:masters"}, Client: true}},
		{&certs.core, "crossplane", certSpec{CommonName: coreUser, Organizations: []string{"system:serviceaccounts", "system:serviceaccounts:" + crossplaneNamespace}, Client: true}},
		{&certs.rbacManager, "rbac-manager", certSpec{CommonName: rbacManagerUser, Organizations: []string{"system:serviceaccounts", "system:serviceaccounts:" + crossplaneNamespace}, Client: true}},
	}
	for _, s := range steps {
		if *s.dst, err = p.issue(s.name, s.spec); err != nil {
			return err
		}
	}
	if certs.sa, err = p.serviceAccountKey(); err != nil {
		return err
	}
	// The function's gRPC server, core's client certificate for it, and
	// core's webhook server.
	if certs.fnServerDir, err = p.tlsDir("function-server", certSpec{CommonName: functionName, IPs: loop, DNSNames: []string{"localhost"}, Server: true}); err != nil {
		return err
	}
	if certs.fnClientDir, err = p.tlsDir("function-client", certSpec{CommonName: "crossplane", Client: true}); err != nil {
		return err
	}
	if certs.registryDir, err = p.tlsDir("registry", certSpec{CommonName: "kalypso-e2e-registry", IPs: loop, DNSNames: []string{"localhost"}, Server: true}); err != nil {
		return err
	}
	certs.webhookDir, err = p.tlsDir("webhook", certSpec{CommonName: "crossplane-webhook", IPs: loop, DNSNames: []string{"localhost"}, Server: true})
	return err
}

func (l *Lab) kubeconfig(name string, cp certPair) (string, error) {
	return l.pki.kubeconfig(name, l.apiServer, cp)
}

func (l *Lab) startAPIServer(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, secure := ports[0], ports[1], ports[2]
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcd, err := l.start("etcd", l.bins.Etcd, []string{
		"--name=lab", "--data-dir=" + filepath.Join(l.workDir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=lab=" + peerURL,
		"--logger=zap", "--log-level=warn",
	})
	if err != nil {
		return err
	}
	if err := waitTCP(etcd, fmt.Sprintf("127.0.0.1:%d", etcdClient), 20*time.Second); err != nil {
		return err
	}
	l.apiServer = fmt.Sprintf("https://127.0.0.1:%d", secure)
	policy := filepath.Join(l.workDir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return err
	}
	l.AuditLog = filepath.Join(l.LogDir, "kube-apiserver-audit.log")
	apiserver, err := l.start("kube-apiserver", l.bins.APIServer, []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(secure),
		"--tls-cert-file=" + certs.apiServer.CertFile, "--tls-private-key-file=" + certs.apiServer.KeyFile,
		"--client-ca-file=" + l.pki.CAFile,
		"--service-account-key-file=" + certs.sa.CertFile,
		"--service-account-signing-key-file=" + certs.sa.KeyFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		// Debian's etcd 3.4 lacks RequestWatchProgress: without this,
		// watch-list requests fail and informers fall back slowly.
		"--feature-gates=WatchList=false",
		// 127.0.0.1 is not a valid endpoint for the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--audit-policy-file=" + policy, "--audit-log-path=" + l.AuditLog,
		// One file for the whole run (rotation would split a scenario's
		// window across files).
		"--audit-log-maxsize=10000",
	})
	if err != nil {
		return err
	}
	cfg := &rest.Config{
		Host:            l.apiServer,
		TLSClientConfig: rest.TLSClientConfig{CAFile: l.pki.CAFile, CertFile: certs.admin.CertFile, KeyFile: certs.admin.KeyFile},
		QPS:             200, Burst: 400,
		UserAgent: "kalypso-e2e",
	}
	if l.Kube, err = newKube(cfg); err != nil {
		return err
	}
	return l.waitAPIServer(ctx, apiserver)
}

// auditPolicy logs the requests of Crossplane core's identity, and no other,
// at Metadata level: TestScale attributes API server requests to core from
// it, and one client's metadata costs the API server little.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["` + coreUser + `"]
- level: None
`

// waitAPIServer waits until the API server is ready: every post-start hook
// (bootstrap RBAC roles included) ran.
func (l *Lab) waitAPIServer(ctx context.Context, apiserver *proc) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		if done, err := apiserver.exited(); done {
			return fmt.Errorf("kube-apiserver exited (%v):\n%s", err, apiserver.tail(40))
		}
		body, err := l.Kube.Typed.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready: %v %s\n%s", err, body, apiserver.tail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *Lab) startControllers(ctx context.Context) error {
	admin, err := l.kubeconfig("admin", certs.admin)
	if err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	auth := []string{"--kubeconfig=" + admin, "--authentication-kubeconfig=" + admin, "--authorization-kubeconfig=" + admin,
		"--bind-address=127.0.0.1", "--leader-elect=false"}
	if _, err := l.start("kube-controller-manager", l.bins.ControllerManager, append(slices.Clone(auth),
		"--secure-port="+strconv.Itoa(ports[0]),
		"--root-ca-file="+l.pki.CAFile,
		"--service-account-private-key-file="+certs.sa.KeyFile,
		"--cluster-signing-cert-file="+l.pki.CAFile,
		"--cluster-signing-key-file="+filepath.Join(l.pki.dir, "ca.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--controllers=*,-nodeipam",
		// The default client limits (20 QPS, burst 30) would make the
		// Deployment and ReplicaSet controllers the bottleneck of any run
		// with more than a few dozen Deployments (TestScale).
		"--kube-api-qps=200", "--kube-api-burst=400",
	)); err != nil {
		return err
	}
	if _, err := l.start("kube-scheduler", l.bins.Scheduler, append(slices.Clone(auth),
		"--secure-port="+strconv.Itoa(ports[1]),
	)); err != nil {
		return err
	}
	if _, err := l.start("kwok", l.bins.Kwok, []string{
		"--kubeconfig=" + admin,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.0.0.1/24", "--node-ip=10.0.0.1",
		// Heartbeats through node Leases, renewed every 10 s. Without this
		// kwok (run as a bare binary, whose lease duration then defaults
		// to 0) patches a node's status once and again only after the
		// node lifecycle controller marked it NotReady (50 s later), which
		// marks every pod on it NotReady: Deployments flap unavailable.
		"--node-lease-duration-seconds=40",
		"--server-address=127.0.0.1:" + strconv.Itoa(ports[2]),
	}); err != nil {
		return err
	}
	return l.createNodes(ctx)
}

// createNodes registers the fake GPU pool: nodes kwok keeps Ready, with GPUs
// in capacity, GPU labels and the taint a GPU pool usually carries.
func (l *Lab) createNodes(ctx context.Context) error {
	for _, name := range fakeNodes {
		n := newGPUNode(name, map[string]string{
			"node.kubernetes.io/instance-type": "p4d.24xlarge",
			"nvidia.com/gpu.present":           "true", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
			"nvidia.com/gpu.count": strconv.Itoa(gpusPerNode),
		}, corev1.ResourceList{gpuResource: *resource.NewQuantity(gpusPerNode, resource.DecimalSI)})
		if _, err := l.Kube.Typed.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	if _, err := l.Kube.Typed.CoreV1().Nodes().Create(ctx, newCPUNode(cpuNode), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", cpuNode, err)
	}
	return nil
}

// newGPUNode is a node of a GPU pool, tainted like one, with its labels and
// its devices (extended resources; none for a DRA node, whose devices a
// ResourceSlice lists).
func newGPUNode(name string, labels map[string]string, devices corev1.ResourceList) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
		// Every server requests ephemeral storage for its model
		// cache, as a real node's disk would be counted.
		corev1.ResourceEphemeralStorage: resource.MustParse("2Ti"),
	}
	maps.Copy(res, devices)
	n := fakeNode(name, labels, res)
	n.Spec.Taints = []corev1.Taint{{Key: gpuResource, Value: "present", Effect: corev1.TaintEffectNoSchedule}}
	return n
}

// nodeReady: the node's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
}

// cpuNodePods is how many pods a node of the general-purpose pool takes.
const cpuNodePods = 250

// newCPUNode is a node of the general-purpose pool: no GPU, no taint.
func newCPUNode(name string) *corev1.Node {
	return fakeNode(name, map[string]string{"node.kubernetes.io/instance-type": "m6i.16xlarge"}, corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(cpuNodePods, resource.DecimalSI),
		// Room for the model caches of every server the lab schedules here.
		corev1.ResourceEphemeralStorage: resource.MustParse("20Ti"),
	})
}

// fakeNode is a Linux node kwok keeps Ready, with these labels beside the
// well-known ones, and this capacity.
func fakeNode(name string, labels map[string]string, res corev1.ResourceList) *corev1.Node {
	all := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}
	maps.Copy(all, labels)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      all,
		},
		Status: corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "fake", OperatingSystem: "linux", Architecture: "amd64"},
			Phase:    corev1.NodeRunning,
		},
	}
}

func (l *Lab) waitNodes(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ready := 0
		var status []string
		nodes := append(slices.Clone(fakeNodes), cpuNode)
		for _, name := range nodes {
			n, err := l.Kube.Typed.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			gpus := n.Status.Allocatable[gpuResource]
			if (gpus.Value() == gpusPerNode || name == cpuNode) && nodeReady(n) {
				ready++
			}
			status = append(status, fmt.Sprintf("%s Ready=%v gpus=%s", name, nodeReady(n), gpus.String()))
		}
		if ready == len(nodes) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fake nodes not ready: %v", status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// applyFiles applies every YAML file given (relative to the repo or absolute).
func (l *Lab) applyFiles(ctx context.Context, paths ...string) ([]*unstructured.Unstructured, error) {
	var all []*unstructured.Unstructured
	for _, p := range paths {
		b, err := os.ReadFile(l.repoPath(p))
		if err != nil {
			return nil, err
		}
		objs, err := decodeYAML(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out, err := l.Kube.apply(ctx, objs...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, out...)
	}
	return all, nil
}

// applyTyped applies typed objects (their TypeMeta must be set).
func (l *Lab) applyTyped(ctx context.Context, objs ...runtime.Object) error {
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		if _, err := l.Kube.apply(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// chartRules reads the rules of a ClusterRole template in Crossplane's Helm
// chart.
func (l *Lab) chartRules(file string) ([]rbacv1.PolicyRule, error) {
	return xpchart.Rules(l.xpModuleDir, file)
}

// installCrossplane installs what Crossplane's Helm chart would, minus the
// Deployments: CRDs, namespace, the ClusterRoles of core and of the RBAC
// manager bound to their identities, the usage webhook configuration
// (pointing at core on loopback), and our RBAC for Crossplane.
func (l *Lab) installCrossplane(ctx context.Context) error {
	crds, err := filepath.Glob(filepath.Join(l.xpModuleDir, "cluster", "crds", "*.yaml"))
	if err != nil || len(crds) == 0 {
		return fmt.Errorf("no Crossplane CRDs under %s: %v", l.xpModuleDir, err)
	}
	applied, err := l.applyFiles(ctx, crds...)
	if err != nil {
		return err
	}
	var names []string
	for _, c := range applied {
		names = append(names, c.GetName())
	}
	if err := l.waitEstablished(ctx, names); err != nil {
		return err
	}

	coreRules, err := l.chartRules("clusterrole.yaml")
	if err != nil {
		return err
	}
	rbacRules, err := l.chartRules("rbac-manager-clusterrole.yaml")
	if err != nil {
		return err
	}
	crTM := metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}
	crbTM := metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}
	saTM := metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}
	labels := map[string]string{"app": "crossplane", "app.kubernetes.io/part-of": "crossplane"}
	objs := []runtime.Object{
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: crossplaneNamespace}},
		&corev1.ServiceAccount{TypeMeta: saTM, ObjectMeta: metav1.ObjectMeta{Name: "crossplane", Namespace: crossplaneNamespace}},
		&corev1.ServiceAccount{TypeMeta: saTM, ObjectMeta: metav1.ObjectMeta{Name: "rbac-manager", Namespace: crossplaneNamespace}},
		// The chart with the RBAC manager deployed: an aggregated role ...
		&rbacv1.ClusterRole{TypeMeta: crTM, ObjectMeta: metav1.ObjectMeta{Name: "crossplane", Labels: labels},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{
				MatchLabels: map[string]string{"rbac.crossplane.io/aggregate-to-crossplane": "true"},
			}}}},
		// ... whose base rules aggregate into it like every other role.
		&rbacv1.ClusterRole{TypeMeta: crTM, ObjectMeta: metav1.ObjectMeta{Name: "crossplane:system:aggregate-to-crossplane",
			Labels: map[string]string{"app": "crossplane", "crossplane.io/scope": "system", "rbac.crossplane.io/aggregate-to-crossplane": "true"}},
			Rules: coreRules},
		&rbacv1.ClusterRoleBinding{TypeMeta: crbTM, ObjectMeta: metav1.ObjectMeta{Name: "crossplane", Labels: labels},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "crossplane"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "crossplane", Namespace: crossplaneNamespace}}},
		&rbacv1.ClusterRole{TypeMeta: crTM, ObjectMeta: metav1.ObjectMeta{Name: "crossplane-rbac-manager", Labels: labels}, Rules: rbacRules},
		&rbacv1.ClusterRoleBinding{TypeMeta: crbTM, ObjectMeta: metav1.ObjectMeta{Name: "crossplane-rbac-manager", Labels: labels},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "crossplane-rbac-manager"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "rbac-manager", Namespace: crossplaneNamespace}}},
	}
	if err := l.applyTyped(ctx, objs...); err != nil {
		return err
	}
	// Our RBAC for core, and for the people projects name (aggregated into
	// Kubernetes' admin, edit and view roles), as a platform team applies them.
	_, err = l.applyFiles(ctx, "examples/platform/crossplane-rbac.yaml", "examples/platform/tenant-rbac.yaml")
	return err
}

func (l *Lab) waitEstablished(ctx context.Context, crds []string) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range crds {
		for {
			u, err := l.Kube.get(ctx, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", name)
			if err != nil {
				return err
			}
			if u != nil && getCondition(u, "Established").Status == "True" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// functionAddr is where the function serves gRPC.
var functionAddr string

// startFunction runs the function with mTLS, as core requires.
func (l *Lab) startFunction(context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	functionAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	l.FunctionMetrics = "127.0.0.1:" + strconv.Itoa(ports[1])
	p, err := l.start("function", l.bins.Function, []string{
		"--debug",
		"--address=" + functionAddr,
		"--tls-server-certs-dir=" + certs.fnServerDir,
		"--metrics-address=" + l.FunctionMetrics,
	})
	if err != nil {
		return err
	}
	return waitTCP(p, functionAddr, 30*time.Second)
}

// webhookPort is where core serves its admission webhooks.
var webhookPort int

// startCrossplane starts core out of cluster under its own identity, with
// webhooks on, and the RBAC manager, which grants core access to each XRD's
// composites exactly as in a cluster. Then it registers the function.
func (l *Lab) startCrossplane(ctx context.Context) error {
	coreKC, err := l.kubeconfig("crossplane", certs.core)
	if err != nil {
		return err
	}
	rbacKC, err := l.kubeconfig("rbac-manager", certs.rbacManager)
	if err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	webhookPort = ports[0]
	l.CoreMetrics = "127.0.0.1:" + strconv.Itoa(ports[1])
	l.coreHealth = "127.0.0.1:" + strconv.Itoa(ports[2])
	if err := l.installUsageWebhook(ctx); err != nil {
		return err
	}
	coreArgs := []string{
		"core", "start", "--debug",
		"--namespace=" + crossplaneNamespace,
		"--package-runtime=External",
		"--enable-webhooks=true",
		"--tls-server-certs-dir=" + certs.webhookDir,
		"--webhook-port=" + strconv.Itoa(webhookPort),
		"--tls-client-certs-dir=" + certs.fnClientDir,
		"--xpkg-cache-dir=" + filepath.Join(l.workDir, "xpkg"),
		"--metrics-port=" + strconv.Itoa(ports[1]),
		"--health-probe-port=" + strconv.Itoa(ports[2]),
	}
	if l.Flavour == flavourPackages {
		// Trust the lab CA for the loopback registry's serving certificate.
		coreArgs = append(coreArgs, "--ca-bundle-path="+filepath.Join(certs.registryDir, "ca.crt"))
		// Core caches pulled packages there and does not create the
		// directory (the chart mounts an emptyDir): without it every pull
		// fails with "cannot parse package …: io: read/write on closed pipe".
		if err := os.MkdirAll(filepath.Join(l.workDir, "xpkg"), 0o755); err != nil {
			return err
		}
	}
	// Extra flags for experiments, e.g. E2E_CORE_ARGS=--circuit-breaker-burst=1000.
	coreArgs = append(coreArgs, strings.Fields(os.Getenv("E2E_CORE_ARGS"))...)
	core, err := l.start("crossplane-core", l.bins.Crossplane, coreArgs, "KUBECONFIG="+coreKC)
	if err != nil {
		return err
	}
	// The RBAC manager's metrics server always binds :8080 (no flag moves
	// it). When that port is taken on this host, render the ClusterRoles it
	// would create instead (see renderXRDRoles).
	if portFree(":8080") {
		if _, err := l.start("crossplane-rbac-manager", l.bins.Crossplane, []string{"rbac", "start", "--debug"}, "KUBECONFIG="+rbacKC); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(os.Stderr, "e2e: :8080 is in use, so the Crossplane RBAC manager cannot start; rendering its XRD ClusterRoles instead")
		renderRolesInstead = true
	}
	if err := waitTCP(core, fmt.Sprintf("127.0.0.1:%d", webhookPort), 60*time.Second); err != nil {
		return err
	}
	if err := waitTCP(core, fmt.Sprintf("127.0.0.1:%d", ports[2]), 60*time.Second); err != nil {
		return err
	}
	if err := webhookReachable(l.pki.CAPEM); err != nil {
		return fmt.Errorf("core's webhook server does not answer as the API server will call it: %w", err)
	}
	if l.Flavour == flavourPackages {
		// The package manager creates the FunctionRevision; the lab only
		// gives it an endpoint (servePackageFunction).
		return nil
	}
	return l.registerFunction(ctx)
}

var renderRolesInstead bool

// installUsageWebhook installs Crossplane's usage protection webhook
// configuration with a URL on loopback instead of a Service: core never
// writes webhook configurations itself (only `crossplane core init` does).
func (l *Lab) installUsageWebhook(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(l.xpModuleDir, "cluster", "webhookconfigurations", "usage.yaml"))
	if err != nil {
		return err
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.Unmarshal(b, &vwc); err != nil {
		return err
	}
	for i := range vwc.Webhooks {
		w := &vwc.Webhooks[i]
		path := "/validate-no-usages"
		if w.ClientConfig.Service != nil && w.ClientConfig.Service.Path != nil {
			path = *w.ClientConfig.Service.Path
		}
		url := fmt.Sprintf("https://127.0.0.1:%d%s", webhookPort, path)
		w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: l.pki.CAPEM}
	}
	vwc.TypeMeta = metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"}
	return l.applyTyped(ctx, &vwc)
}

// registerFunction makes core find the function without the package
// manager: core lists the Active FunctionRevisions labelled with the
// function's name and dials their status endpoint. The revision is paused
// so no package reconciler touches it.
func (l *Lab) registerFunction(ctx context.Context) error {
	rev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "pkg.crossplane.io/v1",
		"kind":       "FunctionRevision",
		"metadata": map[string]any{
			"name":        functionName + "-e2e",
			"labels":      map[string]any{"pkg.crossplane.io/package": functionName},
			"annotations": map[string]any{"crossplane.io/paused": "true"},
		},
		"spec": map[string]any{
			"desiredState":                "Active",
			"image":                       "xpkg.crossplane.io/kalypsoserving/function-kalypso:e2e",
			"revision":                    int64(1),
			"packagePullPolicy":           "Never",
			"ignoreCrossplaneConstraints": true,
			"skipDependencyResolution":    true,
		},
	}}
	if _, err := l.Kube.apply(ctx, rev); err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{
		"endpoint":     "dns:///" + functionAddr,
		"capabilities": []string{"composition"},
	}})
	c, err := l.Kube.client(ctx, rev.GroupVersionKind(), "")
	if err != nil {
		return err
	}
	_, err = c.Patch(ctx, rev.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// installKalypso installs the generated XRDs and Compositions of the lab's
// flavour and waits until core serves each XRD's composites: apis/*/ (v2),
// or apis/kalypsoprojects plus apis/claims/*/ (claims).
func (l *Lab) installKalypso(ctx context.Context) error {
	pattern := "apis/*/definition.yaml"
	if l.Flavour == flavourClaims {
		pattern = "apis/claims/*/definition.yaml"
	}
	defs, err := filepath.Glob(l.repoPath(pattern))
	if err != nil || len(defs) == 0 {
		return fmt.Errorf("no XRDs match %s: %v", pattern, err)
	}
	if l.Flavour == flavourClaims {
		defs = append([]string{l.repoPath("apis/kalypsoprojects/definition.yaml")}, defs...)
	}
	var comps []string
	for _, d := range defs {
		comps = append(comps, filepath.Join(filepath.Dir(d), "composition.yaml"))
	}
	xrds, err := l.applyFiles(ctx, defs...)
	if err != nil {
		return err
	}
	if _, err := l.applyFiles(ctx, comps...); err != nil {
		return err
	}
	if renderRolesInstead {
		if err := l.renderXRDRoles(ctx, xrds); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, x := range xrds {
		for {
			u, err := l.Kube.get(ctx, x.GetAPIVersion(), x.GetKind(), "", x.GetName())
			if err != nil {
				return err
			}
			est := getCondition(u, "Established")
			if est.Status == "True" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("XRD %s not established: %s", x.GetName(), conditionsSummary(u))
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The RBAC manager's grant to core for this XRD's composites.
		role := "crossplane:composite:" + x.GetName() + ":aggregate-to-crossplane"
		for {
			if _, err := l.Kube.Typed.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{}); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("ClusterRole %s was not created by the RBAC manager", role)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// renderXRDRoles creates the ClusterRole the RBAC manager renders for each
// XRD to let core reconcile its composites (RenderClusterRoles in
// internal/controller/rbac/definition/roles.go of Crossplane v2.2.1). Only
// used when the RBAC manager cannot run.
func (l *Lab) renderXRDRoles(ctx context.Context, xrds []*unstructured.Unstructured) error {
	for _, x := range xrds {
		group, _, _ := unstructured.NestedString(x.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(x.Object, "spec", "names", "plural")
		cr := &rbacv1.ClusterRole{
			TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: "crossplane:composite:" + x.GetName() + ":aggregate-to-crossplane",
				Labels: map[string]string{"rbac.crossplane.io/aggregate-to-crossplane": "true"}},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{group}, Resources: []string{plural, plural + "/status"}, Verbs: []string{"*"}},
				{APIGroups: []string{group}, Resources: []string{plural + "/finalizers"}, Verbs: []string{"update"}},
			},
		}
		// An XRD offering claims: the same grants on the claim kind.
		if claims, _, _ := unstructured.NestedString(x.Object, "spec", "claimNames", "plural"); claims != "" {
			cr.Rules = append(cr.Rules,
				rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{claims, claims + "/status"}, Verbs: []string{"*"}},
				rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{claims + "/finalizers"}, Verbs: []string{"update"}},
			)
		}
		if err := l.applyTyped(ctx, cr); err != nil {
			return err
		}
	}
	return nil
}

// webhookReachable checks core's webhook server answers TLS with the lab
// CA, as the API server will call it.
func webhookReachable(caPEM []byte) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/validate-no-usages", webhookPort))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// platformDefaults is the platform's EnvironmentConfig: GPU pods select the
// GPU pool by its label and tolerate its taint, as the fake GPU nodes carry
// them (createNodes). No runtime class: the lab has no RuntimeClass objects,
// and the RuntimeClass admission plugin refuses pods naming a missing one.
const platformDefaults = `
apiVersion: apiextensions.crossplane.io/v1beta1
kind: EnvironmentConfig
metadata:
  name: kalypso-defaults
data:
  gpu:
    resourceName: nvidia.com/gpu
    nodeSelector:
      nvidia.com/gpu.present: "true"
    tolerations:
    - key: nvidia.com/gpu
      operator: Exists
      effect: NoSchedule
`

func (l *Lab) installPlatformDefaults(ctx context.Context) error {
	objs, err := decodeYAML([]byte(platformDefaults))
	if err != nil {
		return err
	}
	_, err = l.Kube.apply(ctx, objs...)
	return err
}

// moduleDir returns the directory of a module version in the module cache,
// downloading it through the module proxy when it is missing.
func (l *Lab) moduleDir(ctx context.Context, module, version string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), module+"@"+version)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "download", module+"@"+version)
	cmd.Dir = l.repoPath("test/tools/crossplane-core")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v: %s", module, version, err, b)
	}
	return dir, nil
}

// ServiceMonitor CRD of the Prometheus Operator, from its module.
const (
	promOperatorModule  = "github.com/prometheus-operator/prometheus-operator"
	promOperatorVersion = "v0.85.0"
	serviceMonitorCRD   = "servicemonitors.monitoring.coreos.com"
)

// ScaledObject CRD of KEDA, from its module (only downloaded: KEDA's
// controllers are not run; TestApplicationServer stands in for them).
const (
	kedaModule      = "github.com/kedacore/keda/v2"
	kedaVersion     = "v2.20.1"
	scaledObjectCRD = "scaledobjects.keda.sh"
)

// installScaledObjectCRD installs KEDA's ScaledObject CRD and waits until
// it is established.
func (l *Lab) installScaledObjectCRD(ctx context.Context) error {
	dir, err := l.moduleDir(ctx, kedaModule, kedaVersion)
	if err != nil {
		return err
	}
	if _, err := l.applyFiles(ctx, filepath.Join(dir, "config", "crd", "bases", "keda.sh_scaledobjects.yaml")); err != nil {
		return err
	}
	return l.waitEstablished(ctx, []string{scaledObjectCRD})
}

// CRDs of the Prometheus Operator's rules and Alertmanager routes.
const (
	prometheusRuleCRD     = "prometheusrules.monitoring.coreos.com"
	alertmanagerConfigCRD = "alertmanagerconfigs.monitoring.coreos.com"
)

// installAlertingCRDs installs the Prometheus Operator's PrometheusRule and
// AlertmanagerConfig CRDs and waits until they are established.
func (l *Lab) installAlertingCRDs(ctx context.Context) error {
	dir, err := l.moduleDir(ctx, promOperatorModule, promOperatorVersion)
	if err != nil {
		return err
	}
	crds := filepath.Join(dir, "example", "prometheus-operator-crd")
	if _, err := l.applyFiles(ctx, filepath.Join(crds, "monitoring.coreos.com_prometheusrules.yaml"), filepath.Join(crds, "monitoring.coreos.com_alertmanagerconfigs.yaml")); err != nil {
		return err
	}
	return l.waitEstablished(ctx, []string{prometheusRuleCRD, alertmanagerConfigCRD})
}

// installServiceMonitorCRD installs the Prometheus Operator's ServiceMonitor
// CRD and waits until it is established.
func (l *Lab) installServiceMonitorCRD(ctx context.Context) error {
	dir, err := l.moduleDir(ctx, promOperatorModule, promOperatorVersion)
	if err != nil {
		return err
	}
	if _, err := l.applyFiles(ctx, filepath.Join(dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml")); err != nil {
		return err
	}
	return l.waitEstablished(ctx, []string{serviceMonitorCRD})
}
