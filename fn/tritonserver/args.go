package tritonserver

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
)

// Built-in Triton settings, matching the XRD defaults (render and tests may
// see objects the API server never defaulted).
const (
	defaultHTTPPort        = 8000
	defaultGRPCPort        = 8001
	defaultMetricsPort     = 8002
	defaultShmDefaultBytes = 1 << 20
	defaultSamplingRate    = "0.1"
	defaultMetricsInterval = "15s"
	defaultLoggingLevel    = "INFO"
	tracesPath             = "/v1/traces"
	otlpGRPCPort           = "4317"
	// minSamplingRate bounds Triton's 1-in-N rate at a million.
	minSamplingRate = 1e-6
)

// flag is one tritonserver option, --name=value.
type flag struct{ name, value string }

func (f flag) String() string { return "--" + f.name + "=" + f.value }

// repeatable options may be given several times; a user parameter collides
// with a managed one only when it sets the same setting.
var repeatable = []string{"backend-config", "trace-config", "load-model", "cache-config", "rate-limit-resource", "host-policy"}

// aliases are deprecated spellings of what a managed flag sets.
var aliases = map[string]string{
	"model-store":         "model-repository",
	"trace-rate":          "trace-config=rate",
	"trace-level":         "trace-config=level",
	"trace-count":         "trace-config=count",
	"trace-file":          "trace-config=triton,file",
	"trace-log-frequency": "trace-config=triton,log-frequency",
}

// alwaysManaged are switches the composed objects depend on: the Service
// and ServiceMonitor expect these endpoints to be served.
var alwaysManaged = []string{"allow-http", "allow-grpc", "allow-metrics"}

// settingKey identifies what a flag sets: the option name, and for
// repeatable options the setting inside its value ("<scope>,<key>=<value>"
// or "<key>=<value>"; an OpenTelemetry resource attribute is its own
// setting).
func settingKey(f flag) string {
	if a, ok := aliases[f.name]; ok {
		return a
	}
	if !slices.Contains(repeatable, f.name) {
		return f.name
	}
	if f.name == "load-model" {
		return f.name + "=" + f.value
	}
	key, rest, found := strings.Cut(f.value, "=")
	if !found {
		return f.name + "=" + f.value
	}
	if strings.HasSuffix(key, ",resource") {
		attr, _, _ := strings.Cut(rest, "=")
		key += "=" + attr
	}
	return f.name + "=" + key
}

// ports are the server's resolved ports.
type ports struct{ http, grpc, metrics int32 }

func portsOf(n *v1alpha1.NetworkingSpec) (ports, error) {
	p := ports{defaultHTTPPort, defaultGRPCPort, defaultMetricsPort}
	if n != nil {
		p = ports{ptr.Deref(n.HTTPPort, p.http), ptr.Deref(n.GRPCPort, p.grpc), ptr.Deref(n.MetricsPort, p.metrics)}
	}
	// In a fixed order: the message must not depend on map iteration.
	for _, f := range []struct {
		name string
		v    int32
	}{{"httpPort", p.http}, {"grpcPort", p.grpc}, {"metricsPort", p.metrics}} {
		if f.v < 1 || f.v > 65535 {
			return p, fmt.Errorf("spec.networking.%s: %d is not a port (1-65535)", f.name, f.v)
		}
	}
	if p.http == p.grpc || p.http == p.metrics || p.grpc == p.metrics {
		return p, fmt.Errorf("spec.networking: httpPort %d, grpcPort %d and metricsPort %d must differ", p.http, p.grpc, p.metrics)
	}
	return p, nil
}

// restrictedGroups are the Triton API groups only holders of the platform's
// API key may call: loading models, mapping shared memory, and changing log
// and trace settings (Triton's names, src/restricted_features.h).
const restrictedGroups = "model-repository,shared-memory,logging,trace"

// apiKeyEnv holds the API key, from the platform's Secret: Kubernetes
// expands $(TRITON_API_KEY) in the args, so the value never appears in the
// Deployment.
const apiKeyEnv = "TRITON_API_KEY"

// argsInput is what the flags are built from.
type argsInput struct {
	spec           *v1alpha1.KalypsoTritonServerSpec
	modelURI       string
	ports          ports
	metrics        bool
	tracesEndpoint string // resolved: server, else platform
	serviceName    string // <application>.<server>
	environment    string
	apiKeyHeader   string // restricts the APIs when set
	exitTimeout    int32  // drain seconds on shutdown (shutdownOf)
}

// tritonArgs returns the container args in their documented order:
// tritonserver, model repository, model control, strict readiness, ports,
// exit timeout, backend config, logging, tracing, then the user's
// parameters. A user parameter that sets what a managed flag sets is
// refused, but exit-timeout-secs: shutdownOf maps it onto the drain time. Tracing problems
// do not stop serving: tracing is left off and tracingProblem says why.
func tritonArgs(in argsInput) (args []string, tracingProblem string, err error) {
	var flags []flag
	add := func(name, value string) { flags = append(flags, flag{name, value}) }

	add("model-repository", in.modelURI)
	if mc := in.spec.ModelControl; mc != nil && mc.Mode != "" {
		add("model-control-mode", mc.Mode)
		if mc.Mode == "explicit" {
			for _, m := range mc.LoadModels {
				add("load-model", m)
			}
		}
		if mc.Mode == "poll" && mc.RepositoryPollSeconds != nil {
			add("repository-poll-secs", strconv.Itoa(int(*mc.RepositoryPollSeconds)))
		}
	}
	// Ready only once every model loaded: readiness probes and Services
	// then never send traffic to a half-loaded server.
	add("strict-readiness", "true")
	add("http-port", strconv.Itoa(int(in.ports.http)))
	add("grpc-port", strconv.Itoa(int(in.ports.grpc)))
	if in.metrics {
		add("metrics-port", strconv.Itoa(int(in.ports.metrics)))
		if summariesAsked(in.spec) {
			// Latency quantiles per model, Triton 23.04 and later; the flag
			// is repeatable (src/command_line_parser.cc), so users may add
			// settings of their own.
			add("metrics-config", "summary_latencies=true")
		}
	} else {
		add("allow-metrics", "false")
	}
	add(exitTimeoutFlag, strconv.Itoa(int(in.exitTimeout)))

	if in.apiKeyHeader != "" {
		// <groups>:<header>=<value> (the --help text's "," before the key is
		// wrong; docs/customization_guide/inference_protocols.md). gRPC
		// clients send the header as triton-grpc-protocol-<header>.
		restricted := restrictedGroups + ":" + in.apiKeyHeader + "=$(" + apiKeyEnv + ")"
		add("http-restricted-api", restricted)
		add("grpc-restricted-protocol", restricted)
	}

	if pb := pythonBackend(in.spec); pb != nil {
		// https://github.com/triton-inference-server/python_backend#managing-shared-memory
		add("backend-config", "python,shm-default-byte-size="+strconv.FormatInt(ptr.Deref(pb.ShmDefaultByteSize, defaultShmDefaultBytes), 10))
		if pb.ShmGrowthByteSize != nil {
			add("backend-config", "python,shm-growth-byte-size="+strconv.FormatInt(*pb.ShmGrowthByteSize, 10))
		}
		for _, k := range sortedKeys(pb.ExtraArgs) {
			if strings.ContainsAny(k, "=, ") {
				return nil, "", fmt.Errorf("spec.tritonConfig.pythonBackend.extraArgs[%s]: a python backend setting name cannot contain '=', ',' or spaces", k)
			}
			add("backend-config", "python,"+k+"="+pb.ExtraArgs[k])
		}
	}

	obs := in.spec.Observability
	if obs != nil && obs.Enabled {
		logFlags, err := loggingFlags(obs.Logging)
		if err != nil {
			return nil, "", err
		}
		flags = append(flags, logFlags...)
		if obs.Tracing != nil && obs.Tracing.Enabled {
			traceFlags, err := tracingFlags(obs.Tracing, in.tracesEndpoint, in.serviceName, in.environment)
			if err != nil {
				tracingProblem = err.Error()
			}
			flags = append(flags, traceFlags...)
		}
	}

	managed := map[string]bool{}
	for _, f := range flags {
		managed[settingKey(f)] = true
	}
	for _, name := range alwaysManaged {
		managed[name] = true
	}
	if tc := in.spec.TritonConfig; tc != nil {
		for i, p := range tc.Parameters {
			field := fmt.Sprintf("spec.tritonConfig.parameters[%d]", i)
			if p.Name == "" || strings.HasPrefix(p.Name, "-") || strings.ContainsAny(p.Name, "= \t") {
				return nil, "", fmt.Errorf("%s.name: %q must be a tritonserver option name without leading dashes, e.g. exit-timeout-secs", field, p.Name)
			}
			if p.Name == exitTimeoutFlag {
				continue // composed from the drain time, see shutdownOf
			}
			f := flag{p.Name, p.Value}
			if slices.Contains(alwaysManaged, p.Name) {
				return nil, "", fmt.Errorf("%s: --%s is managed: the Service and ServiceMonitor expect Triton's HTTP, gRPC and metrics endpoints; turn metrics off with spec.observability.metrics.enabled", field, p.Name)
			}
			if managed[settingKey(f)] {
				return nil, "", fmt.Errorf("%s: --%s is set by the server spec already; remove the parameter and use the spec field (networking, modelControl, observability, tritonConfig.pythonBackend) instead", field, p.Name)
			}
			flags = append(flags, f)
		}
	}

	args = make([]string, 0, len(flags)+1)
	args = append(args, "tritonserver")
	for _, f := range flags {
		args = append(args, f.String())
	}
	return args, tracingProblem, nil
}

// pythonBackend returns the python backend settings (pythonBackend, or its
// deprecated alias python_backend), defaulted when the backend is python.
func pythonBackend(spec *v1alpha1.KalypsoTritonServerSpec) *v1alpha1.PythonBackendSpec {
	tc := spec.TritonConfig
	if tc == nil {
		return nil
	}
	switch {
	case tc.PythonBackend != nil:
		return tc.PythonBackend
	case tc.DeprecatedPythonBackend != nil:
		return tc.DeprecatedPythonBackend
	case tc.BackendType == v1alpha1.BackendPython:
		return &v1alpha1.PythonBackendSpec{}
	}
	return nil
}

// loggingFlags map a level onto Triton's independent switches, so that
// WARNING and ERROR really lower the verbosity (the original operator's
// --log-error=true alone did not). Logging disabled sets no flag at all:
// Triton's defaults then apply (info, warning and error logs on,
// src/command_line_parser.h), so a model that fails to load always leaves
// its error; nothing silences errors.
func loggingFlags(l *v1alpha1.LoggingSpec) ([]flag, error) {
	enabled, level, format := true, defaultLoggingLevel, ""
	if l != nil {
		enabled = ptr.Deref(l.Enabled, true)
		if l.Level != "" {
			level = l.Level
		}
		format = l.Format
	}
	on := func(b bool) string { return strconv.FormatBool(b) }
	var info, warning, errs bool
	var verbose string
	if !enabled {
		return nil, nil
	}
	switch {
	case level == "VERBOSE":
		info, warning, errs, verbose = true, true, true, "1"
	case level == "INFO":
		info, warning, errs = true, true, true
	case level == "WARNING":
		warning, errs = true, true
	case level == "ERROR":
		errs = true
	default:
		return nil, fmt.Errorf("spec.observability.logging.level: %q is not one of INFO, WARNING, ERROR, VERBOSE", level)
	}
	out := []flag{{"log-info", on(info)}, {"log-warning", on(warning)}, {"log-error", on(errs)}}
	if verbose != "" {
		out = append(out, flag{"log-verbose", verbose})
	}
	if format != "" {
		if format != "default" && format != "ISO8601" {
			return nil, fmt.Errorf("spec.observability.logging.format: %q is not one of default, ISO8601", format)
		}
		out = append(out, flag{"log-format", format})
	}
	return out, nil
}

// tracingFlags emit one --trace-config per setting, the grammar Triton
// documents for OpenTelemetry (docs/user_guide/trace.md): the mode, the
// OTLP/HTTP url, a 1-in-N rate, the level and the resource attributes.
func tracingFlags(t *v1alpha1.TracingSpec, endpoint, serviceName, environment string) ([]flag, error) {
	rate, err := samplingRate(t.SamplingRate)
	if err != nil {
		return nil, err
	}
	u, err := tracesURL(endpoint)
	if err != nil {
		return nil, err
	}
	out := []flag{
		{"trace-config", "mode=opentelemetry"},
		{"trace-config", "opentelemetry,url=" + u},
		{"trace-config", "rate=" + strconv.Itoa(rate)},
		{"trace-config", "level=TIMESTAMPS"},
		{"trace-config", "opentelemetry,resource=service.name=" + serviceName},
	}
	if environment != "" {
		out = append(out, flag{"trace-config", "opentelemetry,resource=deployment.environment=" + environment})
	}
	return out, nil
}

// samplingRate converts the original operator's fraction ("0.1": one request
// in ten) into Triton's rate, which traces one request in N.
func samplingRate(s string) (int, error) {
	if s == "" {
		s = defaultSamplingRate
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f < minSamplingRate || f > 1 {
		return 0, fmt.Errorf("spec.observability.tracing.samplingRate: %q must be a fraction of requests from 0.000001 to 1, e.g. \"0.1\" traces one request in ten; to trace nothing set tracing.enabled: false", s)
	}
	return max(1, int(math.Round(1/f))), nil
}

// tracesURL completes a collector endpoint into Triton's OTLP/HTTP traces
// URL (Triton exports OTLP over HTTP only).
func tracesURL(endpoint string) (string, error) {
	u, err := httpBaseURL(endpoint)
	if err != nil {
		return "", fmt.Errorf("spec.observability.collectorEndpoint: %q must be an http(s) URL of an OTLP/HTTP collector, e.g. http://otel-collector.monitoring.svc:4318", endpoint)
	}
	if u.Port() == otlpGRPCPort {
		return "", fmt.Errorf("spec.observability.collectorEndpoint: %q points at port 4317, OTLP over gRPC; Triton exports OTLP over HTTP: use the collector's HTTP port (usually 4318)", endpoint)
	}
	if !strings.HasSuffix(u.Path, tracesPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + tracesPath
	}
	return u.String(), nil
}

// httpBaseURL parses an http(s) URL of a service: a valid host name or IP,
// an optional port and path, no credentials, query or fragment.
func httpBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https", u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "", u.Opaque != "":
		return nil, fmt.Errorf("not an http(s) base URL")
	case net.ParseIP(u.Hostname()) == nil && len(validation.IsDNS1123Subdomain(u.Hostname())) > 0:
		return nil, fmt.Errorf("bad host %q", u.Hostname())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("bad port %q", p)
		}
	}
	return u, nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
