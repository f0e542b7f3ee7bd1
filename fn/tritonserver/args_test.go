package tritonserver

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
)

// specOf decodes a server spec from YAML (strictly: a typo in a test spec
// must not silently test the defaults). applicationRef and storageUri are
// filled in.
func specOf(t *testing.T, y string) v1alpha1.KalypsoTritonServerSpec {
	t.Helper()
	var s v1alpha1.KalypsoTritonServerSpec
	if err := yaml.UnmarshalStrict([]byte("applicationRef: classifier\nstorageUri: s3://models/resnet\n"+y), &s); err != nil {
		t.Fatalf("bad test spec: %v", err)
	}
	return s
}

const testTracesEndpoint = "http://otel.monitoring.svc:4318"

// argsOf builds the flags of a spec the way Compose does, for the server
// resnet of application classifier in environment dev; header restricts
// the APIs when set.
func argsOf(t *testing.T, spec v1alpha1.KalypsoTritonServerSpec, endpoint, environment, header string) ([]string, string, error) {
	t.Helper()
	p, err := portsOf(spec.Networking)
	if err != nil {
		t.Fatalf("ports: %v", err)
	}
	c := &Composer{spec: spec}
	stop, problem := shutdownOf(&c.spec, platform(t))
	if problem != nil {
		t.Fatalf("shutdown: %s", problem.Message)
	}
	return tritonArgs(argsInput{
		spec: &c.spec, modelURI: spec.StorageURI, ports: p, metrics: c.metricsEnabled(),
		tracesEndpoint: endpoint, serviceName: "classifier.resnet", environment: environment,
		apiKeyHeader: header, exitTimeout: stop.drain,
	})
}

// The flags every server gets, in their documented order.
var (
	argsHead     = []string{"tritonserver", "--model-repository=s3://models/resnet"}
	argsPorts    = []string{"--strict-readiness=true", "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002", "--exit-timeout-secs=30"}
	argsMinimal  = concat(argsHead, argsPorts)
	argsTraceDev = []string{
		"--trace-config=mode=opentelemetry",
		"--trace-config=opentelemetry,url=http://otel.monitoring.svc:4318/v1/traces",
		"--trace-config=rate=10",
		"--trace-config=level=TIMESTAMPS",
		"--trace-config=opentelemetry,resource=service.name=classifier.resnet",
		"--trace-config=opentelemetry,resource=deployment.environment=dev",
	}
	logInfo = []string{"--log-info=true", "--log-warning=true", "--log-error=true"}
	// argsRestricted restrict Triton's APIs to holders of the key sent in
	// the header triton-api-key.
	argsRestricted = []string{
		"--http-restricted-api=model-repository,shared-memory,logging,trace:triton-api-key=$(TRITON_API_KEY)",
		"--grpc-restricted-protocol=model-repository,shared-memory,logging,trace:triton-api-key=$(TRITON_API_KEY)",
	}
)

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestTritonArgs(t *testing.T) {
	cases := map[string]struct {
		reason      string
		spec        string
		endpoint    string // tracesEndpoint; testTracesEndpoint when empty
		environment *string
		header      string // the API key header; "": unrestricted
		want        []string
		wantProblem string // substring of the tracing problem
		wantErr     string // substring of the error
	}{
		"Minimal": {
			reason: "Only the repository, strict readiness and the default ports: Triton's own defaults do the rest.",
			want:   argsMinimal,
		},
		"ModelControlNone": {
			reason: "mode none is passed through right after the repository.",
			spec:   "modelControl: {mode: none}\n",
			want:   concat(argsHead, []string{"--model-control-mode=none"}, argsPorts),
		},
		"ModelControlPoll": {
			reason: "poll mode carries its interval.",
			spec:   "modelControl: {mode: poll, repositoryPollSeconds: 30}\n",
			want:   concat(argsHead, []string{"--model-control-mode=poll", "--repository-poll-secs=30"}, argsPorts),
		},
		"ModelControlPollDefaultInterval": {
			reason: "poll mode without an interval leaves Triton's default.",
			spec:   "modelControl: {mode: poll}\n",
			want:   concat(argsHead, []string{"--model-control-mode=poll"}, argsPorts),
		},
		"ModelControlExplicit": {
			reason: "explicit mode loads each listed model, one --load-model each, in the order given.",
			spec:   "modelControl: {mode: explicit, loadModels: [resnet50, bert]}\n",
			want:   concat(argsHead, []string{"--model-control-mode=explicit", "--load-model=resnet50", "--load-model=bert"}, argsPorts),
		},
		"ModelControlExplicitWildcard": {
			reason: "\"*\" loads every model (Triton's own wildcard).",
			spec:   "modelControl: {mode: explicit, loadModels: ['*']}\n",
			want:   concat(argsHead, []string{"--model-control-mode=explicit", "--load-model=*"}, argsPorts),
		},
		"ModelControlExplicitNothing": {
			reason: "explicit mode without models starts Triton with none loaded.",
			spec:   "modelControl: {mode: explicit}\n",
			want:   concat(argsHead, []string{"--model-control-mode=explicit"}, argsPorts),
		},
		"Ports": {
			reason: "Custom ports replace the defaults.",
			spec:   "networking: {httpPort: 9000, grpcPort: 9001, metricsPort: 9002}\n",
			want:   concat(argsHead, []string{"--strict-readiness=true", "--http-port=9000", "--grpc-port=9001", "--metrics-port=9002", "--exit-timeout-secs=30"}),
		},
		"MetricsDisabled": {
			reason: "Without metrics there is no metrics port: Triton is told not to serve them.",
			spec:   "observability: {metrics: {enabled: false}}\n",
			want:   concat(argsHead, []string{"--strict-readiness=true", "--http-port=8000", "--grpc-port=8001", "--allow-metrics=false", "--exit-timeout-secs=30"}),
		},
		"LatencySummaries": {
			reason: "Latency summaries opt in to Triton's per-model quantiles, right after the metrics port.",
			spec:   "observability: {metrics: {latencySummaries: true}}\n",
			want:   concat(argsHead, []string{"--strict-readiness=true", "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002", "--metrics-config=summary_latencies=true", "--exit-timeout-secs=30"}),
		},
		"LatencySummariesWithoutMetrics": {
			reason: "Without metrics there is nothing to summarise.",
			spec:   "observability: {metrics: {enabled: false, latencySummaries: true}}\n",
			want:   concat(argsHead, []string{"--strict-readiness=true", "--http-port=8000", "--grpc-port=8001", "--allow-metrics=false", "--exit-timeout-secs=30"}),
		},
		"PythonDefaulted": {
			reason: "The python backend gets its default shared memory even when nothing else is said.",
			spec:   "tritonConfig: {backendType: python}\n",
			want:   concat(argsMinimal, []string{"--backend-config=python,shm-default-byte-size=1048576"}),
		},
		"PythonBackend": {
			reason: "Default size, growth and extra settings, the extras sorted by name for deterministic output.",
			spec:   "tritonConfig: {pythonBackend: {shmDefaultByteSize: 4194304, shmGrowthByteSize: 1048576, extraArgs: {stub-timeout-seconds: '60', shm-region-prefix-name: kalypso}}}\n",
			want: concat(argsMinimal, []string{
				"--backend-config=python,shm-default-byte-size=4194304",
				"--backend-config=python,shm-growth-byte-size=1048576",
				"--backend-config=python,shm-region-prefix-name=kalypso",
				"--backend-config=python,stub-timeout-seconds=60",
			}),
		},
		"PythonDeprecatedAlias": {
			reason: "The original operator's python_backend still works.",
			spec:   "tritonConfig: {python_backend: {shmDefaultByteSize: 2097152}}\n",
			want:   concat(argsMinimal, []string{"--backend-config=python,shm-default-byte-size=2097152"}),
		},
		"PythonExtraArgBadName": {
			reason:  "An extra setting name with '=' would break Triton's grammar.",
			spec:    "tritonConfig: {pythonBackend: {extraArgs: {'a=b': '1'}}}\n",
			wantErr: "spec.tritonConfig.pythonBackend.extraArgs[a=b]",
		},
		"ObservabilityOff": {
			reason: "Logging settings apply only once observability is enabled.",
			spec:   "observability: {logging: {level: VERBOSE}, tracing: {enabled: true}}\n",
			want:   argsMinimal,
		},
		"LoggingDefaultInfo": {
			reason: "Observability on without logging settings: INFO, i.e. info, warnings and errors.",
			spec:   "observability: {enabled: true}\n",
			want:   concat(argsMinimal, logInfo),
		},
		"LoggingInfo": {
			reason: "INFO logs info, warnings and errors.",
			spec:   "observability: {enabled: true, logging: {level: INFO}}\n",
			want:   concat(argsMinimal, logInfo),
		},
		"LoggingWarning": {
			reason: "WARNING really turns info off (the original operator's --log-error=true alone did not).",
			spec:   "observability: {enabled: true, logging: {level: WARNING}}\n",
			want:   concat(argsMinimal, []string{"--log-info=false", "--log-warning=true", "--log-error=true"}),
		},
		"LoggingError": {
			reason: "ERROR keeps errors only.",
			spec:   "observability: {enabled: true, logging: {level: ERROR}}\n",
			want:   concat(argsMinimal, []string{"--log-info=false", "--log-warning=false", "--log-error=true"}),
		},
		"LoggingVerbose": {
			reason: "VERBOSE adds verbose level 1 to everything.",
			spec:   "observability: {enabled: true, logging: {level: VERBOSE}}\n",
			want:   concat(argsMinimal, logInfo, []string{"--log-verbose=1"}),
		},
		"LoggingDisabled": {
			reason: "Logging disabled sets no log flag: Triton's defaults apply, so errors are never silenced (v0.1.0 sent --log-error=false).",
			spec:   "observability: {enabled: true, logging: {enabled: false, level: VERBOSE, format: ISO8601}}\n",
			want:   argsMinimal,
		},
		"LoggingFormat": {
			reason: "The format is passed after the switches.",
			spec:   "observability: {enabled: true, logging: {level: ERROR, format: ISO8601}}\n",
			want:   concat(argsMinimal, []string{"--log-info=false", "--log-warning=false", "--log-error=true", "--log-format=ISO8601"}),
		},
		"LoggingBadLevel": {
			reason:  "Unknown levels are refused naming the field (render may see objects the API server never validated).",
			spec:    "observability: {enabled: true, logging: {level: DEBUG}}\n",
			wantErr: `spec.observability.logging.level: "DEBUG"`,
		},
		"LoggingBadFormat": {
			reason:  "Unknown formats are refused naming the field.",
			spec:    "observability: {enabled: true, logging: {format: json}}\n",
			wantErr: `spec.observability.logging.format: "json"`,
		},
		"Tracing": {
			reason: "One --trace-config per setting: mode, OTLP/HTTP url, 1-in-N rate, level, and the resource attributes.",
			spec:   "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}\n",
			want:   concat(argsMinimal, argsTraceDev),
		},
		"TracingRate": {
			reason: "samplingRate 0.25 traces one request in four.",
			spec:   "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true, samplingRate: '0.25'}}\n",
			want: concat(argsMinimal,
				argsTraceDev[:2], []string{"--trace-config=rate=4"}, argsTraceDev[3:]),
		},
		"TracingURLKept": {
			reason:   "An endpoint that already ends in /v1/traces is used as given.",
			spec:     "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}\n",
			endpoint: "https://otel.example.com/v1/traces",
			want: concat(argsMinimal,
				argsTraceDev[:1], []string{"--trace-config=opentelemetry,url=https://otel.example.com/v1/traces"}, argsTraceDev[2:]),
		},
		"TracingWithoutEnvironment": {
			reason:      "No environment known: no deployment.environment attribute.",
			spec:        "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}\n",
			environment: new(string),
			want:        concat(argsMinimal, argsTraceDev[:5]),
		},
		"TracingGRPCPort": {
			reason:      "Port 4317 is OTLP over gRPC, which Triton cannot speak: tracing stays off and the problem is reported, serving goes on.",
			spec:        "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}\n",
			endpoint:    "http://otel.monitoring.svc:4317",
			want:        argsMinimal,
			wantProblem: `spec.observability.collectorEndpoint: "http://otel.monitoring.svc:4317" points at port 4317, OTLP over gRPC`,
		},
		"TracingBadURL": {
			reason:      "An endpoint that is not an http(s) URL leaves tracing off with the problem reported.",
			spec:        "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}\n",
			endpoint:    "otel.monitoring.svc:4318",
			want:        argsMinimal,
			wantProblem: `spec.observability.collectorEndpoint: "otel.monitoring.svc:4318" must be an http(s) URL`,
		},
		"TracingBadRate": {
			reason:      "A sampling rate that is not a fraction leaves tracing off with the problem reported.",
			spec:        "observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true, samplingRate: '10%'}}\n",
			want:        argsMinimal,
			wantProblem: `spec.observability.tracing.samplingRate: "10%"`,
		},
		"ParametersLast": {
			reason: "User parameters come after every managed flag, in the order given.",
			spec: `tritonConfig:
  backendType: python
  parameters: [{name: model-load-thread-count, value: '2'}, {name: model-namespacing, value: 'true'}]
observability: {enabled: true, tracing: {enabled: true}}
`,
			want: concat(argsMinimal, []string{"--backend-config=python,shm-default-byte-size=1048576"}, logInfo, argsTraceDev,
				[]string{"--model-load-thread-count=2", "--model-namespacing=true"}),
		},
		"ExitTimeout": {
			reason: "spec.shutdown.drainSeconds composes --exit-timeout-secs, after the port flags.",
			spec:   "shutdown: {drainSeconds: 120}\n",
			want:   concat(argsHead, argsPorts[:4], []string{"--exit-timeout-secs=120"}),
		},
		"ExitTimeoutParameterMapped": {
			reason: "A parameter exit-timeout-secs (as v0.1.0 passed it through) is the drain time: composed once, in the managed flag's place.",
			spec:   "tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}, {name: model-load-thread-count, value: '2'}]}\n",
			want:   concat(argsHead, argsPorts[:4], []string{"--exit-timeout-secs=60", "--model-load-thread-count=2"}),
		},
		"ExitTimeoutParameterAgrees": {
			reason: "A parameter that agrees with drainSeconds is the same setting, composed once.",
			spec:   "shutdown: {drainSeconds: 60}\ntritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}]}\n",
			want:   concat(argsHead, argsPorts[:4], []string{"--exit-timeout-secs=60"}),
		},
		"ParameterRepeatableOtherSetting": {
			reason: "A repeatable flag that sets something the spec does not is allowed next to the managed ones.",
			spec: `tritonConfig:
  backendType: python
  parameters:
  - {name: backend-config, value: 'python,stub-timeout-seconds=60'}
  - {name: backend-config, value: 'onnxruntime,default-max-batch-size=4'}
  - {name: trace-config, value: 'opentelemetry,resource=team=vision'}
  - {name: load-model, value: bert}
modelControl: {mode: explicit, loadModels: [resnet50]}
observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}
`,
			want: concat(argsHead, []string{"--model-control-mode=explicit", "--load-model=resnet50"}, argsPorts,
				[]string{"--backend-config=python,shm-default-byte-size=1048576"}, argsTraceDev,
				[]string{"--backend-config=python,stub-timeout-seconds=60", "--backend-config=onnxruntime,default-max-batch-size=4",
					"--trace-config=opentelemetry,resource=team=vision", "--load-model=bert"}),
		},
		"ParameterCollidesWithPort": {
			reason:  "http-port is the spec's networking.httpPort: refused, naming the parameter.",
			spec:    "tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}, {name: http-port, value: '9000'}]}\n",
			wantErr: "spec.tritonConfig.parameters[1]: --http-port is set by the server spec already",
		},
		"ParameterCollidesWithPythonShm": {
			reason:  "The python shared memory size is managed (it sizes /dev/shm too).",
			spec:    "tritonConfig: {backendType: python, parameters: [{name: backend-config, value: 'python,shm-default-byte-size=67108864'}]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --backend-config is set by the server spec already",
		},
		"ParameterCollidesWithExtraArg": {
			reason:  "A python setting given both as extraArgs and as a parameter is refused.",
			spec:    "tritonConfig: {pythonBackend: {extraArgs: {stub-timeout-seconds: '30'}}, parameters: [{name: backend-config, value: 'python,stub-timeout-seconds=60'}]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --backend-config is set",
		},
		"ParameterCollidesWithTraceRate": {
			reason:  "The trace rate is the spec's samplingRate.",
			spec:    "tritonConfig: {parameters: [{name: trace-config, value: 'rate=100'}]}\nobservability: {enabled: true, tracing: {enabled: true}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --trace-config is set",
		},
		"ParameterCollidesWithServiceName": {
			reason:  "service.name is managed so that traces, logs and profiles agree.",
			spec:    "tritonConfig: {parameters: [{name: trace-config, value: 'opentelemetry,resource=service.name=mine'}]}\nobservability: {enabled: true, tracing: {enabled: true}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --trace-config is set",
		},
		"ParameterCollidesWithLoadModel": {
			reason:  "The same model twice is a mistake.",
			spec:    "tritonConfig: {parameters: [{name: load-model, value: resnet50}]}\nmodelControl: {mode: explicit, loadModels: [resnet50]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --load-model is set",
		},
		"ParameterCollidesWithRepository": {
			reason:  "The model repository is the spec's storageUri.",
			spec:    "tritonConfig: {parameters: [{name: model-repository, value: 's3://other/models'}]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --model-repository is set",
		},
		"ParameterCollidesWithAllowMetrics": {
			reason:  "With metrics disabled, allow-metrics is managed.",
			spec:    "tritonConfig: {parameters: [{name: allow-metrics, value: 'true'}]}\nobservability: {metrics: {enabled: false}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --allow-metrics is managed",
		},
		"ParameterCollidesWithLogging": {
			reason:  "With observability on, the log switches are managed.",
			spec:    "tritonConfig: {parameters: [{name: log-info, value: 'true'}]}\nobservability: {enabled: true, logging: {level: ERROR}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --log-info is set",
		},
		"Restricted": {
			reason: "The restricted APIs' flags come right after the port flags; the key is expanded by Kubernetes from the container's environment.",
			header: "triton-api-key",
			want:   concat(argsMinimal, argsRestricted),
		},
		"RestrictedOtherHeader": {
			reason: "The platform's header is the one clients send.",
			header: "x-team-key",
			want: concat(argsMinimal, []string{
				"--http-restricted-api=model-repository,shared-memory,logging,trace:x-team-key=$(TRITON_API_KEY)",
				"--grpc-restricted-protocol=model-repository,shared-memory,logging,trace:x-team-key=$(TRITON_API_KEY)",
			}),
		},
		"RestrictedMetricsDisabled": {
			reason: "Without metrics they follow --allow-metrics=false, the last of the port flags.",
			spec:   "observability: {metrics: {enabled: false}}\n",
			header: "triton-api-key",
			want:   concat(argsHead, []string{"--strict-readiness=true", "--http-port=8000", "--grpc-port=8001", "--allow-metrics=false", "--exit-timeout-secs=30"}, argsRestricted),
		},
		"RestrictedWithEverything": {
			reason: "…and before the backend, logging, tracing and user flags.",
			spec: `tritonConfig:
  backendType: python
  parameters: [{name: model-load-thread-count, value: '2'}]
modelControl: {mode: explicit, loadModels: [resnet50]}
observability: {enabled: true, tracing: {enabled: true}}
`,
			header: "triton-api-key",
			want: concat(argsHead, []string{"--model-control-mode=explicit", "--load-model=resnet50"}, argsPorts, argsRestricted,
				[]string{"--backend-config=python,shm-default-byte-size=1048576"}, logInfo, argsTraceDev, []string{"--model-load-thread-count=2"}),
		},
		"ParameterCollidesWithRestrictedHTTP": {
			reason:  "With the APIs restricted, a parameter cannot restrict them otherwise.",
			spec:    "tritonConfig: {parameters: [{name: http-restricted-api, value: 'inference:x=y'}]}\n",
			header:  "triton-api-key",
			wantErr: "spec.tritonConfig.parameters[0]: --http-restricted-api is set by the server spec already",
		},
		"ParameterCollidesWithRestrictedGRPC": {
			reason:  "…over gRPC neither.",
			spec:    "tritonConfig: {parameters: [{name: grpc-restricted-protocol, value: 'inference:x=y'}]}\n",
			header:  "triton-api-key",
			wantErr: "spec.tritonConfig.parameters[0]: --grpc-restricted-protocol is set by the server spec already",
		},
		"ParameterAllowHTTP": {
			reason:  "allow-http is always managed: the Service expects HTTP to be served.",
			spec:    "tritonConfig: {parameters: [{name: allow-http, value: 'false'}]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --allow-http is managed: the Service and ServiceMonitor expect",
		},
		"ParameterAllowGRPC": {
			reason:  "allow-grpc is always managed: the Service expects gRPC to be served.",
			spec:    "tritonConfig: {parameters: [{name: exit-timeout-secs, value: '60'}, {name: allow-grpc, value: 'false'}]}\n",
			wantErr: "spec.tritonConfig.parameters[1]: --allow-grpc is managed: the Service and ServiceMonitor expect",
		},
		"ParameterAllowMetricsWithMetrics": {
			reason:  "allow-metrics is managed with metrics on too (the ServiceMonitor expects them), not only when the spec turns them off.",
			spec:    "tritonConfig: {parameters: [{name: allow-metrics, value: 'false'}]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --allow-metrics is managed: the Service and ServiceMonitor expect",
		},
		"ParameterModelStoreAlias": {
			reason:  "model-store is the deprecated spelling of model-repository, the spec's storageUri.",
			spec:    "tritonConfig: {parameters: [{name: model-store, value: 's3://other/models'}]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --model-store is set by the server spec already",
		},
		"ParameterTraceRateAlias": {
			reason:  "trace-rate sets what the spec's samplingRate sets.",
			spec:    "tritonConfig: {parameters: [{name: trace-rate, value: '100'}]}\nobservability: {enabled: true, tracing: {enabled: true}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --trace-rate is set by the server spec already",
		},
		"ParameterTraceLevelAlias": {
			reason:  "trace-level sets the managed trace level.",
			spec:    "tritonConfig: {parameters: [{name: trace-level, value: TENSORS}]}\nobservability: {enabled: true, tracing: {enabled: true}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --trace-level is set by the server spec already",
		},
		"ParameterTraceAliasesWithoutTracing": {
			reason: "Tracing off: nothing manages the rate or the level, so the deprecated flags are the user's.",
			spec:   "tritonConfig: {parameters: [{name: trace-rate, value: '100'}, {name: trace-level, value: TIMESTAMPS}]}\n",
			want:   concat(argsMinimal, []string{"--trace-rate=100", "--trace-level=TIMESTAMPS"}),
		},
		"ParameterTraceUnmanagedAliases": {
			reason: "trace-count, trace-file and trace-log-frequency set what tracing does not manage: allowed next to it.",
			spec: `tritonConfig: {parameters: [{name: trace-count, value: '100'}, {name: trace-file, value: /tmp/trace.json}, {name: trace-log-frequency, value: '50'}]}
observability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}
`,
			want: concat(argsMinimal, argsTraceDev, []string{"--trace-count=100", "--trace-file=/tmp/trace.json", "--trace-log-frequency=50"}),
		},
		"ParameterURLWithQuery": {
			reason:  "The setting is the text before the first '=': a collector URL with '=' in its query still sets the managed url.",
			spec:    "tritonConfig: {parameters: [{name: trace-config, value: 'opentelemetry,url=http://collector:4318/v1/traces?tenant=vision'}]}\nobservability: {enabled: true, tracing: {enabled: true}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --trace-config is set by the server spec already",
		},
		"ParameterBackendValueWithEquals": {
			reason:  "A python setting whose value holds '=' is still that setting.",
			spec:    "tritonConfig: {backendType: python, parameters: [{name: backend-config, value: 'python,shm-default-byte-size=1=2'}]}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --backend-config is set by the server spec already",
		},
		"ParameterEnvironmentAttribute": {
			reason:  "deployment.environment is managed when the environment is known.",
			spec:    "tritonConfig: {parameters: [{name: trace-config, value: 'opentelemetry,resource=deployment.environment=prod'}]}\nobservability: {enabled: true, tracing: {enabled: true}}\n",
			wantErr: "spec.tritonConfig.parameters[0]: --trace-config is set by the server spec already",
		},
		"ParameterEnvironmentAttributeUnknownEnvironment": {
			reason:      "…and the user's when it is not: each resource attribute is its own setting.",
			spec:        "tritonConfig: {parameters: [{name: trace-config, value: 'opentelemetry,resource=deployment.environment=prod'}]}\nobservability: {enabled: true, logging: {enabled: false}, tracing: {enabled: true}}\n",
			environment: new(string),
			want:        concat(argsMinimal, argsTraceDev[:5], []string{"--trace-config=opentelemetry,resource=deployment.environment=prod"}),
		},
		"ParameterEmptyName": {
			reason:  "A parameter needs a name.",
			spec:    "tritonConfig: {parameters: [{name: '', value: '1'}]}\n",
			wantErr: `spec.tritonConfig.parameters[0].name: ""`,
		},
		"ParameterLeadingDashes": {
			reason:  "Names are given without dashes; --x would become ----x.",
			spec:    "tritonConfig: {parameters: [{name: '--exit-timeout-secs', value: '60'}]}\n",
			wantErr: `spec.tritonConfig.parameters[0].name: "--exit-timeout-secs"`,
		},
		"ParameterNameWithValue": {
			reason:  "name=value in the name field would hide a managed flag from the collision check.",
			spec:    "tritonConfig: {parameters: [{name: 'http-port=9000', value: ''}]}\n",
			wantErr: `spec.tritonConfig.parameters[0].name: "http-port=9000"`,
		},
		"ParameterNameWithSpace": {
			reason:  "A space cannot be part of an option name.",
			spec:    "tritonConfig: {parameters: [{name: 'exit timeout', value: '60'}]}\n",
			wantErr: `spec.tritonConfig.parameters[0].name: "exit timeout"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			endpoint := tc.endpoint
			if endpoint == "" {
				endpoint = testTracesEndpoint
			}
			env := "dev"
			if tc.environment != nil {
				env = *tc.environment
			}
			got, problem, err := argsOf(t, specOf(t, tc.spec), endpoint, env, tc.header)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nwant error containing %q, got %v", tc.reason, tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nunexpected error: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nargs: -want, +got:\n%s", tc.reason, diff)
			}
			switch {
			case tc.wantProblem == "" && problem != "":
				t.Errorf("%s\nunexpected tracing problem %q", tc.reason, problem)
			case !strings.Contains(problem, tc.wantProblem):
				t.Errorf("%s\ntracing problem: want %q, got %q", tc.reason, tc.wantProblem, problem)
			}
		})
	}
}

func TestSettingKey(t *testing.T) {
	cases := map[string]struct {
		reason      string
		name, value string
		want        string
	}{
		"Plain":               {reason: "A single-valued option is its own setting.", name: "http-port", value: "9000", want: "http-port"},
		"PlainWithEquals":     {reason: "…whatever its value holds.", name: "exit-timeout-secs", value: "a=b", want: "exit-timeout-secs"},
		"AllowHTTP":           {reason: "Switches are their own setting.", name: "allow-http", value: "false", want: "allow-http"},
		"ModelStore":          {reason: "The deprecated model-store sets the model repository.", name: "model-store", value: "s3://other", want: "model-repository"},
		"TraceRate":           {reason: "trace-rate sets trace-config rate.", name: "trace-rate", value: "100", want: "trace-config=rate"},
		"TraceLevel":          {reason: "trace-level sets trace-config level.", name: "trace-level", value: "TENSORS", want: "trace-config=level"},
		"TraceCount":          {reason: "trace-count sets trace-config count.", name: "trace-count", value: "10", want: "trace-config=count"},
		"TraceFile":           {reason: "trace-file sets the triton mode's file.", name: "trace-file", value: "/tmp/t.json", want: "trace-config=triton,file"},
		"TraceLogFrequency":   {reason: "trace-log-frequency sets the triton mode's log frequency.", name: "trace-log-frequency", value: "50", want: "trace-config=triton,log-frequency"},
		"TraceConfigGlobal":   {reason: "A global trace setting: <key>=<value>.", name: "trace-config", value: "rate=10", want: "trace-config=rate"},
		"TraceConfigScoped":   {reason: "A scoped trace setting: <scope>,<key>=<value>.", name: "trace-config", value: "opentelemetry,url=http://c:4318/v1/traces", want: "trace-config=opentelemetry,url"},
		"FirstEquals":         {reason: "The setting ends at the first '=': a URL query with '=' stays in the value.", name: "trace-config", value: "opentelemetry,url=http://c:4318/v1/traces?tenant=a&b=c", want: "trace-config=opentelemetry,url"},
		"ResourceServiceName": {reason: "An OpenTelemetry resource attribute is its own setting.", name: "trace-config", value: "opentelemetry,resource=service.name=classifier.resnet", want: "trace-config=opentelemetry,resource=service.name"},
		"ResourceOther":       {reason: "…so another attribute is another setting.", name: "trace-config", value: "opentelemetry,resource=team=vision", want: "trace-config=opentelemetry,resource=team"},
		"ResourceValueEquals": {reason: "…named before its first '='.", name: "trace-config", value: "opentelemetry,resource=team=a=b", want: "trace-config=opentelemetry,resource=team"},
		"ResourceNoValue":     {reason: "An attribute without a value is still that attribute.", name: "trace-config", value: "opentelemetry,resource=team", want: "trace-config=opentelemetry,resource=team"},
		"BackendConfig":       {reason: "A backend setting: <backend>,<key>.", name: "backend-config", value: "python,shm-default-byte-size=1048576", want: "backend-config=python,shm-default-byte-size"},
		"BackendValueEquals":  {reason: "…whatever its value holds.", name: "backend-config", value: "python,shm-default-byte-size=1=2", want: "backend-config=python,shm-default-byte-size"},
		"BackendNoEquals":     {reason: "A repeatable value without '=' is its own setting.", name: "backend-config", value: "onnxruntime", want: "backend-config=onnxruntime"},
		"LoadModel":           {reason: "Each model is its own setting.", name: "load-model", value: "bert", want: "load-model=bert"},
		"LoadModelEquals":     {reason: "…the whole name, '=' or not.", name: "load-model", value: "a=b", want: "load-model=a=b"},
		"CacheConfig":         {reason: "Cache settings: <cache>,<key>.", name: "cache-config", value: "local,size=1048576", want: "cache-config=local,size"},
		"HostPolicy":          {reason: "Host policies: <policy>,<key>.", name: "host-policy", value: "gpu0,numa-node=0", want: "host-policy=gpu0,numa-node"},
		"RateLimitResource":   {reason: "A rate limit resource without '=' is its own setting.", name: "rate-limit-resource", value: "R1:10:0", want: "rate-limit-resource=R1:10:0"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := settingKey(flag{tc.name, tc.value}); got != tc.want {
				t.Errorf("%s\nsettingKey(--%s=%s): want %q, got %q", tc.reason, tc.name, tc.value, tc.want, got)
			}
		})
	}
}

func TestSamplingRate(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     string
		want   int
		err    bool
	}{
		"OneInTen":    {reason: "The original operator's default fraction.", in: "0.1", want: 10},
		"Everything":  {reason: "1 traces every request.", in: "1", want: 1},
		"Quarter":     {reason: "Exact reciprocal.", in: "0.25", want: 4},
		"Rounded":     {reason: "1/0.3 = 3.33 rounds to one in three.", in: "0.3", want: 3},
		"Default":     {reason: "Unset means the XRD default 0.1.", in: "", want: 10},
		"Spaces":      {reason: "Surrounding spaces are tolerated.", in: " 0.5 ", want: 2},
		"NotANumber":  {reason: "Words are refused.", in: "abc", err: true},
		"Zero":        {reason: "Zero would be division by zero; tracing.enabled: false is the way to trace nothing.", in: "0", err: true},
		"AboveOne":    {reason: "A fraction cannot exceed 1.", in: "1.5", err: true},
		"Negative":    {reason: "Negative fractions are refused.", in: "-0.1", err: true},
		"NaN":         {reason: "ParseFloat accepts NaN; it must still be refused.", in: "NaN", err: true},
		"Infinity":    {reason: "ParseFloat accepts Inf; it must still be refused.", in: "Inf", err: true},
		"Percent":     {reason: "Percentages are not fractions.", in: "10%", err: true},
		"TraceNumber": {reason: "A Triton rate (1 in N) is not a fraction.", in: "10", err: true},
		"Minimum":     {reason: "The smallest fraction, one in a million, is Triton's largest rate.", in: "0.000001", want: 1000000},
		"MinimumExp":  {reason: "…however it is written.", in: "1e-6", want: 1000000},
		"NearMinimum": {reason: "1/0.0000015 = 666666.67 rounds to 666667.", in: "0.0000015", want: 666667},
		"BelowMin":    {reason: "Below one in a million is refused.", in: "1e-7", err: true},
		"JustBelow":   {reason: "Just below the minimum is refused too.", in: "0.00000099", err: true},
		"Tiny":        {reason: "A fraction that would overflow the rate is refused.", in: "1e-300", err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := samplingRate(tc.in)
			if tc.err {
				want := `spec.observability.tracing.samplingRate: "` + tc.in + `" must be a fraction of requests from 0.000001 to 1, e.g. "0.1" traces one request in ten; to trace nothing set tracing.enabled: false`
				if err == nil || err.Error() != want {
					t.Fatalf("%s\nwant the error %q, got %d, %v", tc.reason, want, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nunexpected error: %v", tc.reason, err)
			}
			if got != tc.want {
				t.Errorf("%s\nsamplingRate(%q): want %d, got %d", tc.reason, tc.in, tc.want, got)
			}
		})
	}
}

func TestTracesURL(t *testing.T) {
	cases := map[string]struct {
		reason   string
		endpoint string
		want     string
		wantErr  string
	}{
		"Base":          {reason: "A base URL gets the OTLP/HTTP traces path.", endpoint: "http://otel:4318", want: "http://otel:4318/v1/traces"},
		"TrailingSlash": {reason: "No double slash.", endpoint: "http://otel:4318/", want: "http://otel:4318/v1/traces"},
		"Prefix":        {reason: "A path prefix (a gateway) is kept.", endpoint: "https://gw.example.com/otlp", want: "https://gw.example.com/otlp/v1/traces"},
		"Complete":      {reason: "A complete traces URL is kept.", endpoint: "http://otel:4318/v1/traces", want: "http://otel:4318/v1/traces"},
		"GRPC":          {reason: "4317 is OTLP/gRPC.", endpoint: "http://otel:4317", wantErr: "points at port 4317"},
		"NoScheme":      {reason: "host:port alone is not a URL.", endpoint: "otel:4318", wantErr: "must be an http(s) URL"},
		"OtherScheme":   {reason: "Only http(s).", endpoint: "grpc://otel:4318", wantErr: "must be an http(s) URL"},
		"Empty":         {reason: "Nothing to send to.", endpoint: "", wantErr: "must be an http(s) URL"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tracesURL(tc.endpoint)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "spec.observability.collectorEndpoint") {
					t.Fatalf("%s\nwant an error naming spec.observability.collectorEndpoint and containing %q, got %q, %v", tc.reason, tc.wantErr, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%s\ntracesURL(%q): want %q, got %q, %v", tc.reason, tc.endpoint, tc.want, got, err)
			}
		})
	}
}

func TestPortsOf(t *testing.T) {
	cases := map[string]struct {
		reason  string
		spec    string
		want    ports
		wantErr string
	}{
		"Defaults":   {reason: "Unset networking gives Triton's defaults.", want: ports{8000, 8001, 8002}},
		"Partial":    {reason: "Unset ports keep their default.", spec: "networking: {grpcPort: 9001}\n", want: ports{8000, 9001, 8002}},
		"Custom":     {reason: "All three set.", spec: "networking: {httpPort: 80, grpcPort: 81, metricsPort: 82}\n", want: ports{80, 81, 82}},
		"Same":       {reason: "Two servers cannot share a port.", spec: "networking: {httpPort: 8001}\n", wantErr: "spec.networking: httpPort 8001, grpcPort 8001 and metricsPort 8002 must differ"},
		"Zero":       {reason: "0 is not a port.", spec: "networking: {httpPort: 0}\n", wantErr: "spec.networking.httpPort: 0 is not a port"},
		"TooHigh":    {reason: "65536 is not a port.", spec: "networking: {metricsPort: 65536}\n", wantErr: "spec.networking.metricsPort: 65536 is not a port"},
		"FirstNamed": {reason: "With several bad ports the message is deterministic: the first in http, grpc, metrics order.", spec: "networking: {httpPort: 0, grpcPort: -1, metricsPort: 70000}\n", wantErr: "spec.networking.httpPort: 0 is not a port"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := specOf(t, tc.spec)
			// Map iteration order varies between runs: repeat so that a
			// message depending on it would show.
			for range 20 {
				got, err := portsOf(spec.Networking)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("%s\nwant error containing %q, got %v", tc.reason, tc.wantErr, err)
					}
					continue
				}
				if err != nil || got != tc.want {
					t.Fatalf("%s\nwant %+v, got %+v, %v", tc.reason, tc.want, got, err)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]struct {
		reason  string
		spec    string
		wantErr string
	}{
		"Explicit":              {reason: "Models listed in explicit mode are fine.", spec: "modelControl: {mode: explicit, loadModels: [a, b]}\n"},
		"Wildcard":              {reason: "\"*\" alone is fine.", spec: "modelControl: {mode: explicit, loadModels: ['*']}\n"},
		"LoadModelsWithoutMode": {reason: "Triton refuses --load-model outside explicit mode.", spec: "modelControl: {loadModels: [a]}\n", wantErr: "spec.modelControl.loadModels needs spec.modelControl.mode: explicit"},
		"LoadModelsInPoll":      {reason: "Triton refuses --load-model outside explicit mode.", spec: "modelControl: {mode: poll, loadModels: [a]}\n", wantErr: "spec.modelControl.loadModels needs spec.modelControl.mode: explicit"},
		"WildcardWithOthers":    {reason: "\"*\" with other names is ambiguous; Triton refuses it.", spec: "modelControl: {mode: explicit, loadModels: [a, '*']}\n", wantErr: `spec.modelControl.loadModels: "*" loads every model and must be the only entry`},
		"PollSecondsNotPoll":    {reason: "An interval outside poll mode does nothing: say so.", spec: "modelControl: {mode: explicit, repositoryPollSeconds: 5}\n", wantErr: "spec.modelControl.repositoryPollSeconds needs spec.modelControl.mode: poll"},
		"PollSeconds":           {reason: "An interval in poll mode is fine.", spec: "modelControl: {mode: poll, repositoryPollSeconds: 5}\n"},
		"ShmTooSmall":           {reason: "The python backend refuses less than 1 MiB.", spec: "tritonConfig: {pythonBackend: {shmDefaultByteSize: 1048575}}\n", wantErr: "spec.tritonConfig.pythonBackend.shmDefaultByteSize: 1048575 is below"},
		"ShmTooSmallAlias":      {reason: "The deprecated alias is checked too.", spec: "tritonConfig: {python_backend: {shmDefaultByteSize: 0}}\n", wantErr: "shmDefaultByteSize: 0 is below"},
		"ShmMinimum":            {reason: "Exactly 1 MiB is fine.", spec: "tritonConfig: {pythonBackend: {shmDefaultByteSize: 1048576}}\n"},
		"GrowthZero":            {reason: "A zero growth step is refused by the python backend.", spec: "tritonConfig: {pythonBackend: {shmGrowthByteSize: 0}}\n", wantErr: "spec.tritonConfig.pythonBackend.shmGrowthByteSize must be greater than 0"},
		"ShmIgnoredWithoutPy":   {reason: "Nothing to check without a python backend.", spec: "tritonConfig: {backendType: onnxruntime}\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &Composer{spec: specOf(t, tc.spec)}
			err := c.validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("%s\nunexpected error: %v", tc.reason, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%s\nwant error containing %q, got %v", tc.reason, tc.wantErr, err)
			}
		})
	}
}

// tritonOptions reads Triton's accepted long options at r24.12.
func tritonOptions(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("../../test/fixtures/triton-r24.12-options.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out[line] = true
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("the options fixture holds only %d options", len(out))
	}
	return out
}

// TestFlagsKnownToTriton checks every flag name a server with every feature
// on can emit against the options Triton r24.12 accepts: a misspelt flag
// makes tritonserver exit at start-up, which no other unit test would see.
func TestFlagsKnownToTriton(t *testing.T) {
	known := tritonOptions(t)
	common := `tritonConfig:
  pythonBackend: {shmDefaultByteSize: 4194304, shmGrowthByteSize: 1048576, extraArgs: {stub-timeout-seconds: '60'}}
  parameters: [{name: exit-timeout-secs, value: '60'}]
networking: {httpPort: 9000, grpcPort: 9001, metricsPort: 9002}
`
	specs := map[string]string{
		"ExplicitVerbose": common + `modelControl: {mode: explicit, loadModels: [resnet50, bert]}
observability: {enabled: true, logging: {level: VERBOSE, format: ISO8601}, tracing: {enabled: true, samplingRate: '0.5'}, metrics: {enableServiceMonitor: true}}
`,
		"PollNoMetrics": common + `modelControl: {mode: poll, repositoryPollSeconds: 15}
observability: {enabled: true, logging: {enabled: false, format: default}, tracing: {enabled: true}, metrics: {enabled: false}}
`,
	}
	seen := map[string]bool{}
	for name, y := range specs {
		t.Run(name, func(t *testing.T) {
			args, problem, err := argsOf(t, specOf(t, y), testTracesEndpoint, "dev", "triton-api-key")
			if err != nil || problem != "" {
				t.Fatalf("unexpected error %v, tracing problem %q", err, problem)
			}
			if args[0] != "tritonserver" {
				t.Fatalf("args[0]: want the tritonserver command, got %q", args[0])
			}
			for _, a := range args[1:] {
				opt, ok := strings.CutPrefix(a, "--")
				if !ok {
					t.Errorf("%q is not a long option", a)
					continue
				}
				opt, _, _ = strings.Cut(opt, "=")
				seen[opt] = true
				if !known[opt] {
					t.Errorf("--%s is not an option of tritonserver r24.12", opt)
				}
			}
		})
	}
	// The deprecated spellings and the always managed switches are
	// Triton's options too: a misspelling would let a parameter through.
	for name := range aliases {
		if !known[name] {
			t.Errorf("alias --%s is not an option of tritonserver r24.12", name)
		}
	}
	for _, name := range alwaysManaged {
		if !known[name] {
			t.Errorf("always managed --%s is not an option of tritonserver r24.12", name)
		}
	}
	// The specs above must really exercise every managed flag, or this
	// test proves little.
	for _, want := range []string{"model-repository", "model-control-mode", "load-model", "repository-poll-secs", "strict-readiness",
		"http-port", "grpc-port", "metrics-port", "allow-metrics", "backend-config", "log-info", "log-warning", "log-error",
		"log-verbose", "log-format", "trace-config", "http-restricted-api", "grpc-restricted-protocol", "exit-timeout-secs"} {
		if !seen[want] {
			t.Errorf("no spec emitted --%s", want)
		}
	}
}
