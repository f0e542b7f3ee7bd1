package badinput_test

import (
	"strings"
	"testing"
)

// row is one bad input: what the user wrote, who catches it and what they
// say. Every row is a test (TestCatalogue) and a line of README.md.
type row struct {
	name  string // the test's name
	kind  string // where the user wrote it
	wrote string // what the user wrote (README)
	by    catcher
	// want is a substring of the API server's refusal, of the Fatal
	// message, or of the condition's message.
	want string
	// cond is the condition of a byCondition row, "Type=Reason"; its
	// status is False.
	cond string
	note string // what happens, and why (README)

	// obj is the object the user applied: admitted as its kind by the
	// API server rows (with old, an update of old); the XR of the function
	// rows, which get it as the API server stores it (defaulted, pruned).
	obj, old string
	// schemaToo marks a function row whose object the API server refuses
	// too, with this substring: the function's check is defence in depth
	// (objects stored before an XRD change are not validated again) and
	// gets the object as written.
	schemaToo string
	// input is the function Input's body after apiVersion and kind, e.g.
	// "spec: {tenancy: {...}}".
	input string
	// drop and add change the cluster the function rows look things up in.
	drop, add []string
	// run is a byGRPC row's check: it returns the error the client got.
	run func(t *testing.T) error
}

var catalogue = []row{
	// ---- KalypsoProject: API server ------------------------------------------
	{
		name: "ProjectUnknownField", kind: tProject, by: bySchema,
		wrote: "`spec.environments.dev.namespaces: vision-dev` (typo of namespace)",
		obj:   projectXR(envs("dev: {namespace: vision-dev, namespaces: vision-dev}")),
		want:  `unknown field "spec.environments.dev.namespaces"`,
		note:  "The API server prunes unknown fields; kubectl's default strict field validation turns the prune into this error (with --validate=false the field is silently dropped).",
	},
	{
		name: "ProjectEnvironmentsWrongType", kind: tProject, by: bySchema,
		wrote: "`spec.environments: [dev, prod]` (a list instead of a map)",
		obj:   projectXR("environments: [dev, prod]"),
		want:  `spec.environments: Invalid value: "array": spec.environments in body must be of type object`,
	},
	{
		name: "ProjectNamespaceWrongType", kind: tProject, by: bySchema,
		wrote: "`spec.environments.dev.namespace: 42`",
		obj:   projectXR(envs("dev: {namespace: 42}")),
		want:  `spec.environments.dev.namespace: Invalid value: "integer": spec.environments.dev.namespace in body must be of type string`,
	},
	{
		name: "ProjectNamespaceEmpty", kind: tProject, by: bySchema,
		wrote: "`spec.environments.dev.namespace: \"\"`",
		obj:   projectXR(envs(`dev: {namespace: ""}`)),
		want:  `spec.environments.dev.namespace: Invalid value: "": spec.environments.dev.namespace in body should be at least 1 chars long`,
	},
	{
		name: "ProjectNamespaceMissing", kind: tProject, by: bySchema,
		wrote: "`spec.environments.dev: {description: no namespace}`",
		obj:   projectXR(envs("dev: {description: no namespace}")),
		want:  "spec.environments.dev.namespace: Required value",
	},
	{
		name: "ProjectNamespaceNotDNSLabel", kind: tProject, by: bySchema,
		wrote: "`spec.environments.dev.namespace: Vision_Dev`",
		obj:   projectXR(envs("dev: {namespace: Vision_Dev}")),
		want:  `spec.environments.dev.namespace in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'`,
	},
	{
		name: "ProjectNamespaceTooLong", kind: tProject, by: bySchema,
		wrote: "`spec.environments.dev.namespace:` 64 characters",
		obj:   projectXR(envs("dev: {namespace: " + strings.Repeat("n", 64) + "}")),
		want:  "spec.environments.dev.namespace: Too long: may not be more than 63 bytes",
	},
	{
		name: "ProjectTenThousandEnvironments", kind: tProject, by: bySchema,
		wrote: "10 000 environments",
		obj:   withEnvironments(10000),
		want:  "spec.environments: Too many: 10000: must have at most 64 items",
		note:  "maxProperties bounds the map, and with it the cost of the pairwise namespace rule; the CEL rules are not even evaluated.",
	},
	{
		name: "ProjectNameTooLong", kind: tProject, by: bySchema,
		wrote: "`metadata.name:` 64 characters",
		obj:   projectNamed(strings.Repeat("v", 64), envs("dev: {namespace: vision-dev}")),
		want:  "metadata.name: Too long: may not be more than 63 bytes",
		note:  "Crossplane bounds composite names to 63 characters, so the project's name fits every label value it is written into.",
	},
	{
		name: "ProjectPodSecurityUnknown", kind: tProject, by: bySchema,
		wrote: "`spec.environments.dev.podSecurity: strict`",
		obj:   projectXR(envs("dev: {namespace: vision-dev, podSecurity: strict}")),
		want:  `spec.environments.dev.podSecurity: Unsupported value: "strict": supported values: "privileged", "baseline", "restricted"`,
	},
	{
		name: "ProjectQuotaNotAQuantity", kind: tProject, by: bySchema,
		wrote: "`resourceQuota.limits.nvidia.com/gpu: lots`",
		obj:   projectXR(envs(`dev: {namespace: vision-dev, resourceQuota: {limits: {nvidia.com/gpu: lots}}}`)),
		want:  `spec.environments.dev.resourceQuota.limits.nvidia.com/gpu: Invalid value: "lots"`,
	},
	{
		name: "ProjectTooManyAdmins", kind: tProject, by: bySchema,
		wrote: "33 `spec.access.admins`",
		obj:   projectXR("access: {admins: [" + strings.TrimSuffix(strings.Repeat("{kind: User, name: u}, ", 33), ", ") + "]}"),
		want:  "spec.access.admins: Too many: 33: must have at most 32 items",
	},
	{
		name: "ProjectModelRegistryWithoutURL", kind: tProject, by: bySchema,
		wrote: "`spec.modelRegistry: {secretRef: creds}`",
		obj:   projectXR("modelRegistry: {secretRef: creds}"),
		want:  "spec.modelRegistry.url: Required value",
	},
	{
		name: "ProjectEnvironmentNameNotDNSLabel", kind: tProject, by: byCEL,
		wrote: "`spec.environments.Dev_1`",
		obj:   projectXR(envs("Dev_1: {namespace: vision-dev}")),
		want:  "environment names must be DNS-1123 labels",
	},
	{
		name: "ProjectNamespaceSharedByEnvironments", kind: tProject, by: byCEL,
		wrote: "`dev` and `prod` both in `namespace: vision`",
		obj:   projectXR(envs("dev: {namespace: vision}, prod: {namespace: vision}")),
		want:  "two environments of a project cannot share a namespace",
		note:  "Two environments in one namespace would fight over its quota, limit range and policies.",
	},
	{
		name: "ProjectNamespaceChanged", kind: tProject, by: byCEL,
		wrote: "update `dev.namespace: vision-dev` → `vision-dev-2`",
		old:   projectXR(envs("dev: {namespace: vision-dev}")),
		obj:   projectXR(envs("dev: {namespace: vision-dev-2}")),
		want:  "an environment's namespace is immutable; add a new environment instead",
		note:  "Moving an environment would delete its namespace with everything in it.",
	},

	// ---- KalypsoProject: function --------------------------------------------
	{
		name: "ProjectForeignNamespace", kind: tProject, by: byCondition,
		wrote: "`dev: {namespace: kube-system}` (a namespace that exists and is not the project's)",
		obj:   projectXR(envs("dev: {namespace: kube-system}")),
		add:   []string{`{apiVersion: v1, kind: Namespace, metadata: {name: kube-system}, status: {phase: Active}}`},
		cond:  "NamespacesOwned=NamespaceNotOwned",
		want:  "namespace kube-system of environment dev exists and was not created by project vision, so it is left untouched: set spec.environments.dev.adoptExistingNamespace: true",
		note:  "Nothing is composed for that environment (not even inside the namespace), so deleting the project can never delete it; phase Failed.",
	},
	{
		name: "ProjectNamespaceOfAnotherProject", kind: tProject, by: byCondition,
		wrote: "`dev: {namespace: ml-dev}` where project `ml` already created `ml-dev`",
		obj:   projectXR(envs("dev: {namespace: ml-dev}")),
		add: []string{`{apiVersion: v1, kind: Namespace, metadata: {name: ml-dev, labels: {kalypso-serving.io/project: ml},
		  ownerReferences: [{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, name: ml, uid: uid-ml, controller: true}]}, status: {phase: Active}}`},
		cond: "NamespacesOwned=NamespaceNotOwned",
		want: "namespace ml-dev of environment dev exists and was not created by project vision",
		note: "The project looks every environment namespace up; one controlled by another project's UID is foreign like any other. Even with adoptExistingNamespace the Namespace object stays the other project's.",
	},
	{
		name: "ProjectAdoptMissingNamespace", kind: tProject, by: byCondition,
		wrote: "`dev: {namespace: legacy-dev, adoptExistingNamespace: true}` (no such namespace)",
		obj:   projectXR(envs("dev: {namespace: legacy-dev, adoptExistingNamespace: true}")),
		cond:  "NamespacesOwned=NamespaceNotFound",
		want:  "namespace legacy-dev of environment dev does not exist, and spec.environments.dev.adoptExistingNamespace is true",
	},
	{
		name: "ProjectQuotaUnknownKey", kind: tProject, by: byFatal,
		wrote: "`resourceQuota.limits: {gpu: \"1\"}`",
		obj:   projectXR(envs(`dev: {namespace: vision-dev, resourceQuota: {limits: {gpu: "1"}}}`)),
		want:  `invalid KalypsoProject vision: spec.environments.dev.resourceQuota.limits[gpu]: "gpu" is not a quota resource`,
		note:  "The schema cannot list every valid quota key; an unknown one would be an unenforced quota.",
	},
	{
		name: "ProjectQuotaSidesDisagree", kind: tProject, by: byFatal,
		wrote: "`limits: {nvidia.com/gpu: \"2\"}, requests: {nvidia.com/gpu: \"1\"}`",
		obj:   projectXR(envs(`dev: {namespace: vision-dev, resourceQuota: {limits: {nvidia.com/gpu: "2"}, requests: {nvidia.com/gpu: "1"}}}`)),
		want:  "spec.environments.dev.resourceQuota.limits[nvidia.com/gpu] and spec.environments.dev.resourceQuota.requests[nvidia.com/gpu] both set quota requests.nvidia.com/gpu, to 2 and 1",
		note:  "A quota knows an extended resource only as `requests.<name>`.",
	},
	{
		name: "ProjectAllowFromUnknownEnvironment", kind: tProject, by: byFatal,
		wrote: "`prod.networkIsolation.allowFromEnvironments: [staging]` (no such environment)",
		obj:   projectXR(envs("dev: {namespace: vision-dev}, prod: {namespace: vision-prod, networkIsolation: {allowFromEnvironments: [staging]}}")),
		want:  `spec.environments.prod.networkIsolation.allowFromEnvironments[0]: "staging" is not another environment of project vision; name one of: [dev]`,
	},
	{
		name: "ProjectAllowFromItself", kind: tProject, by: byFatal,
		wrote: "`prod.networkIsolation.allowFromEnvironments: [prod]` (self reference)",
		obj:   projectXR(envs("dev: {namespace: vision-dev}, prod: {namespace: vision-prod, networkIsolation: {allowFromEnvironments: [prod]}}")),
		want:  `spec.environments.prod.networkIsolation.allowFromEnvironments[0]: "prod" is not another environment of project vision`,
	},
	{
		name: "ProjectSubjectWithoutName", kind: tProject, by: byFatal,
		wrote: "`access.admins: [{kind: Group, name: \"\"}]`",
		obj:   projectXR(`access: {admins: [{kind: Group, name: ""}]}, ` + envs("dev: {namespace: vision-dev}")),
		want:  "spec.access.admins[0].name must not be empty",
	},
	{
		name: "ProjectSubjectUnknownKind", kind: tProject, by: byFatal,
		wrote: "`access.viewers: [{kind: Robot, name: r2}]`",
		obj:   projectXR("access: {viewers: [{kind: Robot, name: r2}]}, " + envs("dev: {namespace: vision-dev}")),
		want:  `spec.access.viewers[0].kind: "Robot" is not User, Group or ServiceAccount`,
	},
	{
		name: "ProjectUserWithNamespace", kind: tProject, by: byFatal,
		wrote: "`access.admins: [{kind: User, name: ann, namespace: ci}]`",
		obj:   projectXR("access: {admins: [{kind: User, name: ann, namespace: ci}]}, " + envs("dev: {namespace: vision-dev}")),
		want:  "spec.access.admins[0].namespace: a User is not namespaced; remove the namespace",
	},
	{
		name: "ProjectServiceAccountWithAPIGroup", kind: tProject, by: byFatal,
		wrote: "`access.editors: [{kind: ServiceAccount, name: ci, apiGroup: rbac.authorization.k8s.io}]`",
		obj:   projectXR("access: {editors: [{kind: ServiceAccount, name: ci, apiGroup: rbac.authorization.k8s.io}]}, " + envs("dev: {namespace: vision-dev}")),
		want:  "spec.access.editors[0].apiGroup: a ServiceAccount subject has the core API group; remove apiGroup",
	},
	{
		name: "ProjectEnvironmentsWrongTypeStored", kind: tProject, by: byFatal,
		wrote:     "a stored project with `spec.environments: [dev]` (written before an XRD change)",
		obj:       projectXR("environments: [dev]"),
		schemaToo: "spec.environments in body must be of type object",
		want:      "invalid KalypsoProject vision: spec.environments: cannot use a JSON array where map[string]v1alpha1.EnvironmentSpec is expected",
		note:      "Defence in depth: stored objects are not validated again when an XRD changes. Crossplane keeps the composed objects (see \"Bad input and Fatal results\" in the README).",
	},

	// ---- KalypsoApplication: API server --------------------------------------
	{
		name: "ApplicationUnknownField", kind: tApplication, by: bySchema,
		wrote: "`spec.storage.bucket: models`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {secretName: models-s3, bucket: models}"),
		want:  `unknown field "spec.storage.bucket"`,
	},
	{
		name: "ApplicationProjectRefEmpty", kind: tApplication, by: bySchema,
		wrote: "`spec.projectRef: \"\"`",
		obj:   applicationXR("detector", "vision-prod", `projectRef: ""`),
		want:  `spec.projectRef: Invalid value: "": spec.projectRef in body should be at least 1 chars long`,
	},
	{
		name: "ApplicationProjectRefNotAName", kind: tApplication, by: bySchema,
		wrote: "`spec.projectRef: Vision_Models`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: Vision_Models"),
		want:  `spec.projectRef: Invalid value: "Vision_Models": spec.projectRef in body should match`,
	},
	{
		name: "ApplicationStorageProviderUnknown", kind: tApplication, by: bySchema,
		wrote: "`spec.storage.provider: minio`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {provider: minio, secretName: models-s3}"),
		want:  `spec.storage.provider: Unsupported value: "minio": supported values: "s3", "gcs", "azure"`,
		note:  "MinIO is S3-compatible: provider s3 with storage.endpoint.",
	},
	{
		name: "ApplicationGatewayHostnameInvalid", kind: tApplication, by: bySchema,
		wrote: "`spec.gateway.hostname: https://models.example.com`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, gateway: {enabled: true, hostname: 'https://models.example.com'}"),
		want:  `spec.gateway.hostname: Invalid value: "https://models.example.com": spec.gateway.hostname in body should match`,
	},
	{
		name: "ApplicationGatewayEnabledWrongType", kind: tApplication, by: bySchema,
		wrote: "`spec.gateway.enabled: \"yes\"`",
		obj:   applicationXR("detector", "vision-prod", `projectRef: vision, gateway: {enabled: "yes"}`),
		want:  `spec.gateway.enabled: Invalid value: "string": spec.gateway.enabled in body must be of type boolean`,
	},
	{
		name: "ApplicationStorageWithoutCredentials", kind: tApplication, by: byCEL,
		wrote: "`spec.storage: {region: eu-west-1}`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {region: eu-west-1}"),
		want:  "set storage.secretName (credentials Secret) or storage.serviceAccountName (keyless workload identity)",
	},

	{
		name: "ApplicationCABundleTwoSources", kind: tApplication, by: byCEL,
		wrote: "`storage.caBundle: {secretName: minio-ca, configMapName: corp-ca}`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {secretName: models-s3, endpoint: 'https://minio.internal:9443', caBundle: {secretName: minio-ca, configMapName: corp-ca}}"),
		want:  "set exactly one of storage.caBundle.secretName or storage.caBundle.configMapName",
	},
	{
		name: "ApplicationCABundleNotS3", kind: tApplication, by: byCEL,
		wrote: "`storage: {provider: gcs, caBundle: {configMapName: corp-ca}}`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {provider: gcs, secretName: gcs-sa, caBundle: {configMapName: corp-ca}}"),
		want:  "storage.caBundle applies to S3-compatible endpoints (provider s3) only: remove it",
		note:  "The bundle replaces the trust store Triton's S3 client (libcurl) reads; the GCS and Azure clients were not checked.",
	},
	// ---- KalypsoApplication: function ----------------------------------------
	{
		name: "ApplicationProjectMissing", kind: tApplication, by: byCondition,
		wrote: "`spec.projectRef: visoin` (typo)",
		obj:   applicationXR("detector", "vision-prod", "projectRef: visoin, storage: {secretName: models-s3}"),
		cond:  "ProjectValid=ProjectNotFound",
		want:  "KalypsoProject visoin does not exist: create it, or fix spec.projectRef",
		note:  "Phase Failed, not Ready; asked again every 15 s.",
	},
	{
		name: "ApplicationNamespaceNotInProject", kind: tApplication, by: byCondition,
		wrote: "an application in `default` with `projectRef: vision` (cross-namespace)",
		obj:   applicationXR("detector", "default", "projectRef: vision"),
		cond:  "ProjectValid=NamespaceNotInProject",
		want:  "namespace default is not an environment of KalypsoProject vision: create the application in one of its environment namespaces",
		note:  "An application lives in one of its project's environment namespaces; it cannot point at a project from elsewhere.",
	},
	{
		name: "ApplicationProjectNotReady", kind: tApplication, by: byCondition,
		wrote: "`projectRef: vision` while the project is still provisioning",
		obj:   applicationXR("detector", "vision-prod", detectorSpec),
		drop:  []string{"project-vision"},
		add: []string{`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision},
		  spec: {environments: {prod: {namespace: vision-prod}}}, status: {phase: Provisioning, conditions: [{type: Ready, status: "False", reason: Creating}]}}`},
		cond: "ProjectValid=ProjectNotReady",
		want: "KalypsoProject vision is not Ready yet",
		note: "Phase Pending.",
	},
	{
		name: "ApplicationSecretMissing", kind: tApplication, by: byCondition,
		wrote: "`storage.secretName: models-s4` (no such Secret)",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {secretName: models-s4}"),
		cond:  "StorageReady=StorageSecretMissing",
		want:  "Secret models-s4 (spec.storage.secretName) does not exist in namespace vision-prod: create it with the keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
	},
	{
		name: "ApplicationSecretIncomplete", kind: tApplication, by: byCondition,
		wrote: "`storage.secretName: models-s3` whose Secret lacks `AWS_SECRET_ACCESS_KEY`",
		obj:   applicationXR("detector", "vision-prod", detectorSpec),
		drop:  []string{"secret-models-s3"},
		add:   []string{`{apiVersion: v1, kind: Secret, metadata: {name: models-s3, namespace: vision-prod}, data: {AWS_ACCESS_KEY_ID: QUtJQQ==}}`},
		cond:  "StorageReady=StorageSecretIncomplete",
		want:  "Secret models-s3 lacks the key(s) AWS_SECRET_ACCESS_KEY that s3 storage needs: add them, or name the keys it has in spec.storage.keys",
		note:  "Only key names are read, never values.",
	},
	{
		name: "ApplicationSecretKeysRenamedWrongly", kind: tApplication, by: byCondition,
		wrote: "`storage.keys.accessKeyID: access-key` (the Secret holds `AWS_ACCESS_KEY_ID`)",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {secretName: models-s3, keys: {accessKeyID: access-key}}"),
		cond:  "StorageReady=StorageSecretIncomplete",
		want:  "Secret models-s3 lacks the key(s) access-key",
	},
	{
		name: "ApplicationServiceAccountMissing", kind: tApplication, by: byCondition,
		wrote: "`storage: {provider: gcs, serviceAccountName: models-reader}` (no such ServiceAccount)",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {provider: gcs, serviceAccountName: models-reader}"),
		cond:  "StorageReady=StorageServiceAccountMissing",
		want:  "ServiceAccount models-reader (spec.storage.serviceAccountName) does not exist in namespace vision-prod",
	},
	{
		name: "ApplicationSessionTokenKeyMissing", kind: tApplication, by: byCondition,
		wrote: "`storage.keys.sessionToken: AWS_SESSION_TOKEN` whose Secret holds only the key pair",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {secretName: models-s3, keys: {sessionToken: AWS_SESSION_TOKEN}}"),
		cond:  "StorageReady=StorageSecretIncomplete",
		want:  "Secret models-s3 lacks the key(s) AWS_SESSION_TOKEN that s3 storage needs",
		note:  "Unnamed, the session token is optional: servers read AWS_SESSION_TOKEN when the Secret has it.",
	},
	{
		name: "ApplicationGatewayNotConfigured", kind: tApplication, by: byCondition,
		wrote: "`gateway.enabled: true` on a platform without a gateway",
		obj:   applicationXR("detector", "vision-prod", detectorSpec+", gateway: {enabled: true}"),
		cond:  "Exposed=GatewayNotConfigured",
		want:  "the platform names no gateway (function input gateway.parentRefs, or the kalypso-defaults EnvironmentConfig)",
		note:  "The application stays Ready; its servers are reached through their Services.",
	},
	{
		name: "ApplicationGatewayAPIMissing", kind: tApplication, by: byCondition,
		wrote: "`gateway.enabled: true` on a cluster without the Gateway API CRDs",
		obj:   applicationXR("detector", "vision-prod", detectorSpec+", gateway: {enabled: true}"),
		input: "spec: {gateway: {parentRefs: [{name: public, namespace: gateway}], hostname: models.example.com}}",
		drop:  []string{"crd-httproutes"},
		cond:  "Exposed=GatewayAPIMissing",
		want:  "the Gateway API CRDs (httproutes.gateway.networking.k8s.io) are not installed",
	},
	{
		name: "ApplicationClusterScopedWithoutClaim", kind: tXRApp, by: byFatal,
		wrote: "an `XKalypsoApplication` applied directly, without a claim",
		obj:   "apiVersion: " + group + "\nkind: XKalypsoApplication\nmetadata: {name: detector}\nspec: {" + detectorSpec + "}\n",
		want:  "invalid XKalypsoApplication detector: a KalypsoApplication must be namespaced (or a claim): detector has no namespace",
		note:  "The claim flavour's XR is cluster scoped; without the claim's labels the function does not know which namespace to work in.",
	},

	// ---- KalypsoTritonServer: API server -------------------------------------
	{
		name: "ServerUnknownField", kind: tServer, by: bySchema,
		wrote: "`spec.tritonConfig.imagePullPolicy: Always`",
		obj:   serverXR("yolo", "tritonConfig: {imagePullPolicy: Always}"),
		want:  `unknown field "spec.tritonConfig.imagePullPolicy"`,
	},
	{
		name: "ServerReplicasHuge", kind: tServer, by: bySchema,
		wrote: "`spec.replicas: 1000000`",
		obj:   serverXR("yolo", "replicas: 1000000"),
		want:  "spec.replicas: Invalid value: 1000000: spec.replicas in body should be less than or equal to 1000",
	},
	{
		name: "ServerReplicasNegative", kind: tServer, by: bySchema,
		wrote: "`spec.replicas: -1`",
		obj:   serverXR("yolo", "replicas: -1"),
		want:  "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
	},
	{
		name: "ServerReplicasWrongType", kind: tServer, by: bySchema,
		wrote: "`spec.replicas: two`",
		obj:   serverXR("yolo", "replicas: two"),
		want:  `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer`,
	},
	{
		name: "ServerGPUsHuge", kind: tServer, by: bySchema,
		wrote: "`spec.gpus: 1000`",
		obj:   serverXR("yolo", "gpus: 1000"),
		want:  "spec.gpus: Invalid value: 1000: spec.gpus in body should be less than or equal to 64",
	},
	{
		name: "ServerPortOutOfRange", kind: tServer, by: bySchema,
		wrote: "`spec.networking.httpPort: 70000`",
		obj:   serverXR("yolo", "networking: {httpPort: 70000}"),
		want:  "spec.networking.httpPort: Invalid value: 70000: spec.networking.httpPort in body should be less than or equal to 65535",
	},
	{
		name: "ServerPortZero", kind: tServer, by: bySchema,
		wrote: "`spec.networking.metricsPort: 0`",
		obj:   serverXR("yolo", "networking: {metricsPort: 0}"),
		want:  "spec.networking.metricsPort: Invalid value: 0: spec.networking.metricsPort in body should be greater than or equal to 1",
	},
	{
		name: "ServerStorageURIUnsupportedScheme", kind: tServer, by: bySchema,
		wrote: "`spec.storageUri: hdfs://models/yolo`",
		obj:   serverIn("yolo", "vision-prod", "applicationRef: detector, storageUri: 'hdfs://models/yolo'"),
		want:  `spec.storageUri in body should match '^(s3|gs|as)://[^/\s][^\s]*$'`,
	},
	{
		name: "ServerStorageURIWithoutBucket", kind: tServer, by: bySchema,
		wrote: "`spec.storageUri: s3://`",
		obj:   serverIn("yolo", "vision-prod", "applicationRef: detector, storageUri: 's3://'"),
		want:  `spec.storageUri: Invalid value: "s3://": spec.storageUri in body should match`,
	},
	{
		name: "ServerStorageURIMissing", kind: tServer, by: bySchema,
		wrote: "no `spec.storageUri`",
		obj:   serverIn("yolo", "vision-prod", "applicationRef: detector"),
		want:  "spec.storageUri: Required value",
	},
	{
		name: "ServerApplicationRefEmpty", kind: tServer, by: bySchema,
		wrote: "`spec.applicationRef: \"\"`",
		obj:   serverIn("yolo", "vision-prod", `applicationRef: "", storageUri: s3://vision-models/yolo`),
		want:  `spec.applicationRef: Invalid value: "": spec.applicationRef in body should be at least 1 chars long`,
	},
	{
		name: "ServerApplicationRefOtherNamespace", kind: tServer, by: bySchema,
		wrote: "`spec.applicationRef: vision-dev/detector` (an application in another namespace)",
		obj:   serverXR("yolo", "applicationRef: vision-dev/detector"),
		want:  `spec.applicationRef: Invalid value: "vision-dev/detector": spec.applicationRef in body should match`,
		note:  "A reference to another namespace cannot be expressed: applicationRef is a name, looked up in the server's own namespace (see ServerApplicationOnlyInOtherNamespace).",
	},
	{
		name: "ServerResourcesNotAQuantity", kind: tServer, by: bySchema,
		wrote: "`spec.resources.limits.memory: 32 gigs`",
		obj:   serverXR("yolo", "resources: {limits: {memory: 32 gigs}}"),
		want:  `spec.resources.limits.memory: Invalid value: "32 gigs"`,
	},
	{
		name: "ServerLoggingLevelUnknown", kind: tServer, by: bySchema,
		wrote: "`observability.logging.level: DEBUG`",
		obj:   serverXR("yolo", "observability: {enabled: true, logging: {level: DEBUG}}"),
		want:  `spec.observability.logging.level: Unsupported value: "DEBUG": supported values: "INFO", "WARNING", "ERROR", "VERBOSE"`,
	},
	{
		name: "ServerTooManyParameters", kind: tServer, by: bySchema,
		wrote: "65 `tritonConfig.parameters`",
		obj:   serverXR("yolo", "tritonConfig: {parameters: ["+strings.TrimSuffix(strings.Repeat("{name: exit-timeout-secs, value: '1'}, ", 65), ", ")+"]}"),
		want:  "spec.tritonConfig.parameters: Too many: 65: must have at most 64 items",
	},
	{
		name: "ServerSamplingRateTooLong", kind: tServer, by: bySchema,
		wrote: "`tracing.samplingRate:` 33 characters",
		obj:   serverXR("yolo", "observability: {enabled: true, tracing: {enabled: true, samplingRate: '"+strings.Repeat("0", 33)+"'}}"),
		want:  "spec.observability.tracing.samplingRate: Too long: may not be more than 32 bytes",
	},
	{
		name: "ServerPortsCollide", kind: tServer, by: byCEL,
		wrote: "`networking: {httpPort: 9000, grpcPort: 9000}`",
		obj:   serverXR("yolo", "networking: {httpPort: 9000, grpcPort: 9000}"),
		want:  "httpPort, grpcPort and metricsPort must differ",
	},
	{
		name: "ServerPortCollidesWithDefault", kind: tServer, by: byCEL,
		wrote: "`networking: {httpPort: 8001}` (the default gRPC port)",
		obj:   serverXR("yolo", "networking: {httpPort: 8001}"),
		want:  "httpPort, grpcPort and metricsPort must differ",
		note:  "Defaults apply before the rule runs.",
	},
	{
		name: "ServerNameTooLong", kind: tServer, by: byCEL,
		wrote: "`metadata.name:` 60 characters",
		obj:   serverXR(strings.Repeat("y", 60), ""),
		want:  "a server name must start with a letter, hold only lower case letters, digits and '-', and be at most 59 characters so that <name>-svc is a valid Service name",
	},
	{
		name: "ServerNameStartsWithDigit", kind: tServer, by: byCEL,
		wrote: "`metadata.name: 8ball`",
		obj:   serverXR("8ball", ""),
		want:  "a server name must start with a letter",
		note:  "`<name>-svc` is a Service name, a DNS-1035 label.",
	},
	{
		name: "ServerAutoscalingMinAboveMax", kind: tServer, by: byCEL,
		wrote: "`autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 2}`",
		obj:   serverXR("yolo", "autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 2}"),
		want:  "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
	},
	{
		name: "ServerAutoscalingWithoutMax", kind: tServer, by: byCEL,
		wrote: "`autoscaling: {enabled: true}`",
		obj:   serverXR("yolo", "autoscaling: {enabled: true}"),
		want:  "autoscaling.maxReplicas is required when autoscaling is enabled",
	},
	{
		name: "ServerBothPythonBackends", kind: tServer, by: byCEL,
		wrote: "`tritonConfig: {pythonBackend: {}, python_backend: {}}`",
		obj:   serverXR("yolo", "tritonConfig: {pythonBackend: {}, python_backend: {}}"),
		want:  "set tritonConfig.pythonBackend only; python_backend is its deprecated alias",
	},
	{
		name: "ServerVersionNotARelease", kind: tServer, by: bySchema,
		wrote: "`tritonConfig: {version: \"26.5\"}`",
		obj:   serverXR("yolo", `tritonConfig: {image: registry.example.com/ml/triton, tag: v3, version: "26.5"}`),
		want:  `spec.tritonConfig.version in body should match '^[0-9]{2}\.(0[1-9]|1[0-2])$'`,
	},

	// ---- KalypsoTritonServer: function ---------------------------------------
	{
		name: "ServerStorageURIEmptyBucket", kind: tServer, by: bySchema,
		wrote: "`spec.storageUri: s3:///models`",
		obj:   serverIn("yolo", "vision-prod", "applicationRef: detector, storageUri: 's3:///models'"),
		want:  `spec.storageUri: Invalid value: "s3:///models": spec.storageUri in body should match`,
		note:  "The function refuses it too, for objects stored before the pattern: spec.storageUri \"s3:///models\" must be s3://bucket/path, …",
	},
	{
		name: "ServerImageWithTag", kind: tServer, by: byFatal,
		wrote: "`tritonConfig.image: nvcr.io/nvidia/tritonserver:24.12-py3`",
		obj:   serverXR("yolo", "tritonConfig: {image: 'nvcr.io/nvidia/tritonserver:24.12-py3'}"),
		want:  `spec.tritonConfig.image "nvcr.io/nvidia/tritonserver:24.12-py3" holds a tag or digest: put the repository in image and the tag in spec.tritonConfig.tag`,
	},
	{
		name: "ServerVersionDisagreesWithTag", kind: tServer, by: byFatal,
		wrote: "`tritonConfig: {tag: 24.12-py3, version: \"26.05\"}`",
		obj:   serverXR("yolo", `tritonConfig: {tag: 24.12-py3, version: "26.05"}`),
		want:  `spec.tritonConfig.version "26.05" disagrees with the image tag "24.12-py3" (Triton 24.12): remove spec.tritonConfig.version, or fix it`,
		note:  "The version is for custom images whose tag does not start with the release; one that contradicts the tag means one of them is wrong.",
	},
	{
		name: "ServerRequestsAboveLimits", kind: tServer, by: byFatal,
		wrote: "`resources: {requests: {cpu: \"4\"}, limits: {cpu: \"2\"}}`",
		obj:   serverXR("yolo", `resources: {requests: {cpu: "4"}, limits: {cpu: "2"}}`),
		want:  "spec.resources.requests[cpu] (4) is above spec.resources.limits[cpu] (2): a request cannot exceed its limit",
	},
	{
		name: "ServerMetricsIntervalNotADuration", kind: tServer, by: byFatal,
		wrote: "`observability.metrics.interval: 15 seconds`",
		obj:   serverXR("yolo", "observability: {metrics: {interval: '15 seconds'}}"),
		want:  `spec.observability.metrics.interval "15 seconds" is not a Prometheus duration such as 15s, 1m or 1m30s`,
	},
	{
		name: "ServerGPUsDisagreeWithResources", kind: tServer, by: byFatal,
		wrote: "`gpus: 2` with `resources.limits.nvidia.com/gpu: \"1\"`",
		obj:   serverXR("yolo", `gpus: 2, resources: {limits: {nvidia.com/gpu: "1"}}`),
		want:  "spec.gpus (2) and spec.resources.limits[nvidia.com/gpu] (1) disagree: set one of them",
	},
	{
		name: "ServerParameterSetsManagedFlag", kind: tServer, by: byFatal,
		wrote: "`parameters: [{name: http-port, value: \"9000\"}]`",
		obj:   serverXR("yolo", `tritonConfig: {parameters: [{name: http-port, value: "9000"}]}`),
		want:  "spec.tritonConfig.parameters[0]: --http-port is set by the server spec already; remove the parameter and use the spec field",
	},
	{
		name: "ServerParameterDeprecatedAlias", kind: tServer, by: byFatal,
		wrote: "`parameters: [{name: model-store, value: s3://other}]`",
		obj:   serverXR("yolo", `tritonConfig: {parameters: [{name: model-store, value: "s3://other"}]}`),
		want:  "spec.tritonConfig.parameters[0]: --model-store is set by the server spec already",
		note:  "--model-store is Triton's old spelling of --model-repository.",
	},
	{
		name: "ServerParameterDisablesEndpoint", kind: tServer, by: byFatal,
		wrote: "`parameters: [{name: allow-metrics, value: \"false\"}]`",
		obj:   serverXR("yolo", `tritonConfig: {parameters: [{name: allow-metrics, value: "false"}]}`),
		want:  "spec.tritonConfig.parameters[0]: --allow-metrics is managed",
		note:  "The Service and ServiceMonitor expect the endpoint; use observability.metrics.enabled: false.",
	},
	{
		name: "ServerParameterWithDashes", kind: tServer, by: byFatal,
		wrote: "`parameters: [{name: --exit-timeout-secs, value: \"60\"}]`",
		obj:   serverXR("yolo", `tritonConfig: {parameters: [{name: --exit-timeout-secs, value: "60"}]}`),
		want:  `spec.tritonConfig.parameters[0].name: "--exit-timeout-secs" must be a tritonserver option name without leading dashes`,
	},
	{
		name: "ServerLoadModelsWithoutExplicitMode", kind: tServer, by: byFatal,
		wrote: "`modelControl: {loadModels: [yolov8]}`",
		obj:   serverXR("yolo", "modelControl: {loadModels: [yolov8]}"),
		want:  "spec.modelControl.loadModels needs spec.modelControl.mode: explicit",
	},
	{
		name: "ServerPollSecondsWithoutPollMode", kind: tServer, by: byFatal,
		wrote: "`modelControl: {mode: explicit, repositoryPollSeconds: 30}`",
		obj:   serverXR("yolo", "modelControl: {mode: explicit, repositoryPollSeconds: 30}"),
		want:  "spec.modelControl.repositoryPollSeconds needs spec.modelControl.mode: poll",
	},
	{
		name: "ServerShmBelowMinimum", kind: tServer, by: byFatal,
		wrote: "`pythonBackend: {shmDefaultByteSize: 1000}`",
		obj:   serverXR("yolo", "tritonConfig: {backendType: python, pythonBackend: {shmDefaultByteSize: 1000}}"),
		want:  "spec.tritonConfig.pythonBackend.shmDefaultByteSize: 1000 is below the python backend's minimum of 1 MiB (1048576)",
	},
	{
		name: "ServerPythonExtraArgInjection", kind: tServer, by: byFatal,
		wrote: "`pythonBackend.extraArgs: {\"a=b,c\": x}`",
		obj:   serverXR("yolo", `tritonConfig: {pythonBackend: {extraArgs: {"a=b,c": x}}}`),
		want:  "spec.tritonConfig.pythonBackend.extraArgs[a=b,c]: a python backend setting name cannot contain '=', ',' or spaces",
	},
	{
		name: "ServerReplicasWrongTypeStored", kind: tServer, by: byFatal,
		wrote:     "a stored server with `spec.replicas: two` (written before an XRD change)",
		obj:       serverXR("yolo", "replicas: two"),
		schemaToo: "spec.replicas in body must be of type integer",
		want:      "invalid KalypsoTritonServer yolo: spec.replicas: cannot use a JSON string where int32 is expected",
		note:      "Defence in depth, like ProjectEnvironmentsWrongTypeStored.",
	},
	{
		name: "ServerClaimNameStartsWithDigit", kind: tXRServer, by: byFatal,
		wrote: "a `KalypsoTritonServer` claim named `8ball` (claim flavour)",
		obj: "apiVersion: " + group + "\nkind: XKalypsoTritonServer\nmetadata: {name: 8ball-x7k2p, labels: {crossplane.io/claim-name: 8ball, crossplane.io/claim-namespace: vision-prod}}\n" +
			"spec: {applicationRef: detector, storageUri: s3://vision-models/yolo}\n",
		want: `metadata.name: "8ball" must start with a letter, hold only lower case letters, digits and '-', and be at most 59 characters`,
		note: "The claim flavour's XR is named `<claim>-<suffix>`, so its schema cannot hold the name rule; the function checks the claim's name.",
	},
	{
		name: "ServerSamplingRateNotANumber", kind: tServer, by: byCondition,
		wrote: "`tracing: {enabled: true, samplingRate: abc}`",
		obj:   serverXR("yolo", "observability: {enabled: true, tracing: {enabled: true, samplingRate: abc}}"),
		cond:  "Tracing=TracingMisconfigured",
		want:  `spec.observability.tracing.samplingRate: "abc" must be a fraction of requests from 0.000001 to 1`,
		note:  "A condition, not a Fatal: the server serves, without tracing, until it is fixed.",
	},
	{
		name: "ServerSamplingRateZero", kind: tServer, by: byCondition,
		wrote: "`tracing: {enabled: true, samplingRate: \"0\"}`",
		obj:   serverXR("yolo", `observability: {enabled: true, tracing: {enabled: true, samplingRate: "0"}}`),
		cond:  "Tracing=TracingMisconfigured",
		want:  "to trace nothing set tracing.enabled: false",
	},
	{
		name: "ServerCollectorOTLPgRPC", kind: tServer, by: byCondition,
		wrote: "`collectorEndpoint: http://otel-collector.monitoring.svc:4317`",
		obj:   serverXR("yolo", "observability: {enabled: true, collectorEndpoint: 'http://otel-collector.monitoring.svc:4317', tracing: {enabled: true}}"),
		cond:  "Tracing=TracingMisconfigured",
		want:  "points at port 4317, OTLP over gRPC; Triton exports OTLP over HTTP: use the collector's HTTP port (usually 4318)",
		note:  "A condition, not a Fatal: the original operator's :4317 never received anything.",
	},
	{
		name: "ServerCollectorWithoutScheme", kind: tServer, by: byCondition,
		wrote: "`collectorEndpoint: otel-collector:4318`",
		obj:   serverXR("yolo", "observability: {enabled: true, collectorEndpoint: 'otel-collector:4318', tracing: {enabled: true}}"),
		cond:  "Tracing=TracingMisconfigured",
		want:  `spec.observability.collectorEndpoint: "otel-collector:4318" must be an http(s) URL of an OTLP/HTTP collector`,
	},
	{
		name: "ServerApplicationMissing", kind: tServer, by: byCondition,
		wrote: "`applicationRef: detecter` (typo)",
		obj:   serverXR("yolo", "applicationRef: detecter"),
		cond:  "ApplicationReady=ApplicationNotFound",
		want:  "KalypsoApplication detecter does not exist in namespace vision-prod: create it, or fix spec.applicationRef",
		note:  "Nothing is created before the application exists; phase Pending, asked again every 15 s.",
	},
	{
		name: "ServerApplicationOnlyInOtherNamespace", kind: tServer, by: byCondition,
		wrote: "`applicationRef: detector` in `vision-dev`, where only `vision-prod` has a detector",
		obj:   serverIn("yolo", "vision-dev", "applicationRef: detector, storageUri: s3://vision-models/yolo"),
		cond:  "ApplicationReady=ApplicationNotFound",
		want:  "KalypsoApplication detector does not exist in namespace vision-dev",
		note:  "References never cross namespaces: the server's namespace is where the application is looked up.",
	},
	{
		name: "ServerApplicationRefIsItself", kind: tServer, by: byCondition,
		wrote: "`metadata.name: yolo`, `applicationRef: yolo` (self reference)",
		obj:   serverXR("yolo", "applicationRef: yolo"),
		cond:  "ApplicationReady=ApplicationNotFound",
		want:  "KalypsoApplication yolo does not exist in namespace vision-prod",
		note:  "A server cannot be its own application: the reference is to another kind.",
	},
	{
		name: "ServerStorageSchemeDisagrees", kind: tServer, by: byCondition,
		wrote: "`storageUri: gs://vision-models/yolo` for an S3 application",
		obj:   serverXR("yolo", "storageUri: gs://vision-models/yolo"),
		cond:  "ApplicationReady=StorageProviderMismatch",
		want:  `spec.storageUri "gs://vision-models/yolo" is gcs storage but KalypsoApplication detector has spec.storage.provider s3: make them agree`,
	},
	{
		name: "ServerApplicationEndpointInvalid", kind: tServer, by: byCondition,
		wrote: "application `storage.endpoint: minio:9000` (no scheme)",
		obj:   serverXR("yolo", ""),
		drop:  []string{"application-detector"},
		add: []string{`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod},
		  spec: {projectRef: vision, storage: {provider: s3, secretName: models-s3, endpoint: "minio:9000"}},
		  status: {environment: prod, conditions: [{type: Ready, status: "True", reason: Available}]}}`},
		cond: "ApplicationReady=StorageEndpointInvalid",
		want: `the application's spec.storage.endpoint "minio:9000" must be http(s)://host[:port] of an S3-compatible store`,
	},
	{
		name: "ServerAzureKeylessBefore2605", kind: tServer, by: byCondition,
		wrote: "`storageUri: as://visionmodels/models/yolo` with the platform's 24.12 image, for an application with `storage: {provider: azure, serviceAccountName: models-reader}`",
		obj:   serverIn("yolo", "vision-prod", "applicationRef: detector, storageUri: as://visionmodels/models/yolo"),
		drop:  []string{"application-detector"},
		add: []string{`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod},
		  spec: {projectRef: vision, storage: {provider: azure, serviceAccountName: models-reader}},
		  status: {environment: prod, conditions: [{type: Ready, status: "True", reason: Available}]}}`},
		cond: "ApplicationReady=StorageIdentityUnsupported",
		want: "Azure storage through ServiceAccount models-reader (keyless) needs Triton 26.05 or later, and image nvcr.io/nvidia/tritonserver:24.12-py3 is Triton 24.12, which connects to Azure anonymously: use spec.tritonConfig.tag 26.05-py3 or later",
		note: "Before 26.05 Triton's Azure client builds an anonymous client whenever AZURE_STORAGE_KEY is empty (core src/filesystem/implementations/as.h); 26.05 and later get AZURE_STORAGE_AUTH_TYPE=default. Nothing is created; a running server keeps its Deployment.",
	},
	{
		name: "ServerAzureKeylessCustomImage", kind: tServer, by: byCondition,
		wrote: "`tritonConfig: {image: registry.example.com/ml/triton, tag: v3}` for Azure keyless storage",
		obj:   serverIn("yolo", "vision-prod", "applicationRef: detector, storageUri: as://visionmodels/models/yolo, tritonConfig: {image: registry.example.com/ml/triton, tag: v3}"),
		drop:  []string{"application-detector"},
		add: []string{`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod},
		  spec: {projectRef: vision, storage: {provider: azure, serviceAccountName: models-reader}},
		  status: {environment: prod, conditions: [{type: Ready, status: "True", reason: Available}]}}`},
		cond: "ApplicationReady=TritonVersionUnknown",
		want: "the tag of image registry.example.com/ml/triton:v3 does not say which Triton release it is: set spec.tritonConfig.version (YY.MM, e.g. 26.05)",
	},
	{
		name: "ServerAPIKeySecretMissing", kind: tServer, by: byCondition,
		wrote: "a server in a namespace without the platform's API key Secret",
		obj:   serverXR("yolo", ""),
		drop:  []string{"secret-api-key"},
		cond:  "APIRestricted=APIKeySecretMissing",
		want:  "Secret kalypso-triton-api-key does not exist in namespace vision-prod",
		note:  "Triton is never started with its model-repository and shared-memory APIs open by accident.",
	},
	{
		name: "ServerAPIKeySecretWithoutKey", kind: tServer, by: byCondition,
		wrote: "the API key Secret without its `api-key` key",
		obj:   serverXR("yolo", ""),
		drop:  []string{"secret-api-key"},
		add:   []string{`{apiVersion: v1, kind: Secret, metadata: {name: kalypso-triton-api-key, namespace: vision-prod}, data: {token: a2V5}}`},
		cond:  "APIRestricted=APIKeySecretIncomplete",
		want:  "Secret kalypso-triton-api-key in namespace vision-prod has no",
	},
	{
		name: "ServerGPUQuotaExhausted", kind: tServer, by: byCondition,
		wrote: "`gpus: 4` in a namespace whose quota has 2 GPUs left",
		obj:   serverXR("yolo", "gpus: 4"),
		add: []string{`{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-quota, namespace: vision-prod},
		  status: {hard: {requests.nvidia.com/gpu: "8"}, used: {requests.nvidia.com/gpu: "6"}}}`},
		cond: "ServerAvailable=InsufficientGPUQuota",
		want: "ResourceQuota vision-quota allows 8 requests.nvidia.com/gpu and 6 are in use: 4 more are needed",
	},
	{
		name: "ServerServiceMonitorCRDMissing", kind: tServer, by: byCondition,
		wrote: "`metrics.enableServiceMonitor: true` without the Prometheus Operator",
		obj:   serverXR("yolo", "observability: {enabled: true, metrics: {enableServiceMonitor: true}}"),
		drop:  []string{"crd-servicemonitors"},
		cond:  "MetricsScraping=ServiceMonitorCRDMissing",
		want:  "the servicemonitors.monitoring.coreos.com CRD is not installed, so no ServiceMonitor is composed",
	},
	{
		name: "ServerQueueTimeWithoutMetricsAPI", kind: tServer, by: byCondition,
		wrote: "`autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}` without a custom metrics adapter",
		obj:   serverXR("yolo", "autoscaling: {enabled: true, maxReplicas: 4, metric: queueTime}"),
		cond:  "Autoscaling=CustomMetricsAPIUnavailable",
		want:  "the custom metrics API (v1beta1.custom.metrics.k8s.io) is not served",
	},

	// ---- function Input and EnvironmentConfig --------------------------------
	{
		name: "InputUnknownField", kind: "Input", by: byFatal,
		wrote: "Composition input `spec.tenancy.podSecurityLvl: baseline`",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		input: "spec: {tenancy: {podSecurityLvl: baseline}}",
		want:  `cannot decode the function input: json: unknown field "podSecurityLvl"`,
		note:  "The Input is decoded strictly, with a stable message (the SDK's decoder words its errors differently from call to call).",
	},
	{
		name: "InputQuantityInvalid", kind: "Input", by: byFatal,
		wrote: "Composition input `spec.tenancy.defaultLimits.cpu: lots`",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		input: "spec: {tenancy: {defaultLimits: {cpu: lots}}}",
		want:  "cannot decode the function input: quantities must match the regular expression",
		note:  "The message starts with \"cannot decode the function input\" but does not name the field.",
	},
	{
		name: "EnvironmentConfigRootGroup", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {security: {fsGroup: 0}}`",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		add:   []string{environmentConfig("{security: {fsGroup: 0}}")},
		want:  "defaults: security.fsGroup must be a non-root gid (> 0), got 0",
	},
	{
		name: "EnvironmentConfigWildcardHostname", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {gateway: {hostname: '*.models.example.com'}}`",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		add:   []string{environmentConfig("{gateway: {hostname: '*.models.example.com'}}")},
		want:  `defaults: gateway.hostname "*.models.example.com" must be a host name, not a wildcard`,
	},
	{
		name: "ApplicationWildcardHostname", kind: tApplication, by: bySchema,
		wrote: "`spec.gateway.hostname: '*.models.example.com'`",
		obj:   applicationXR("detector", "vision-prod", "projectRef: vision, storage: {secretName: models-s3}, gateway: {enabled: true, hostname: '*.models.example.com'}"),
		want:  `spec.gateway.hostname in body should match`,
	},
	{
		name: "EnvironmentConfigUnknownKey", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {trition: {tag: 25.01-py3}}`",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		add:   []string{environmentConfig("{trition: {tag: 25.01-py3}}")},
		want:  `EnvironmentConfig kalypso-defaults: data must mirror the function Input's spec: json: unknown field "trition"`,
	},
	{
		name: "EnvironmentConfigNestedUnknownKey", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {tenancy: {podSecurity: baseline}}` (the Input spells it podSecurityLevel)",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		add:   []string{environmentConfig("{tenancy: {podSecurity: baseline}}")},
		want:  `json: unknown field "podSecurity"`,
	},
	{
		name: "EnvironmentConfigWrongType", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {security: {runAsUser: root}}`",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		add:   []string{environmentConfig("{security: {runAsUser: root}}")},
		want:  "EnvironmentConfig kalypso-defaults: data must mirror the function Input's spec: json: cannot unmarshal string into Go struct field",
	},
	{
		name: "EnvironmentConfigRoot", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {security: {runAsUser: 0}}`",
		obj:   serverXR("yolo", ""),
		add:   []string{environmentConfig("{security: {runAsUser: 0}}")},
		want:  "defaults: security.runAsUser must be a non-root uid (> 0), got 0",
	},
	{
		name: "EnvironmentConfigPodSecurityLevel", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {tenancy: {podSecurityLevel: strict}}`",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		add:   []string{environmentConfig("{tenancy: {podSecurityLevel: strict}}")},
		want:  `defaults: tenancy.podSecurityLevel "strict" is not one of privileged, baseline, restricted`,
	},
	{
		name: "EnvironmentConfigGatewayScheme", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {gateway: {scheme: ftp}}`",
		obj:   applicationXR("detector", "vision-prod", detectorSpec),
		add:   []string{environmentConfig("{gateway: {scheme: ftp}}")},
		want:  `defaults: gateway.scheme "ftp" is not http or https`,
	},
	{
		name: "EnvironmentConfigParentRefWithoutName", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {gateway: {parentRefs: [{namespace: gateway}]}}`",
		obj:   applicationXR("detector", "vision-prod", detectorSpec),
		add:   []string{environmentConfig("{gateway: {parentRefs: [{namespace: gateway}]}}")},
		want:  "defaults: gateway.parentRefs[0].name must not be empty",
	},
	{
		name: "EnvironmentConfigEmptyGPUResource", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: {gpu: {resourceName: \"\"}}`",
		obj:   serverXR("yolo", "gpus: 1"),
		add:   []string{environmentConfig(`{gpu: {resourceName: ""}}`)},
		want:  "defaults: gpu.resourceName must not be empty",
	},
	{
		name: "EnvironmentConfigDataNotAMap", kind: "EnvironmentConfig", by: byFatal,
		wrote: "`data: \"triton: {tag: 25.01-py3}\"` (a string)",
		obj:   projectXR(envs("dev: {namespace: vision-dev}")),
		add:   []string{environmentConfig(`"triton: {tag: 25.01-py3}"`)},
		want:  "EnvironmentConfig kalypso-defaults: data must mirror the function Input's spec",
	},
	{
		name: "EnvironmentConfigTracesOTLPgRPC", kind: "EnvironmentConfig", by: byCondition,
		wrote: "`data: {observability: {tracesEndpoint: http://collector.otel.svc:4317}}`",
		obj:   serverXR("yolo", "observability: {enabled: true, tracing: {enabled: true}}"),
		add:   []string{environmentConfig("{observability: {tracesEndpoint: 'http://collector.otel.svc:4317'}}")},
		cond:  "Tracing=TracingMisconfigured",
		want:  `"http://collector.otel.svc:4317" points at port 4317, OTLP over gRPC`,
		note:  "The platform's default endpoint is checked where it is used: servers that trace report it, and serve without tracing. (The message names spec.observability.collectorEndpoint although the server does not set it.)",
	},

	// ---- gRPC ----------------------------------------------------------------
	{
		name: "RequestOverSizeLimit", kind: "RunFunctionRequest", by: byGRPC,
		wrote: "a 5 MiB RunFunctionRequest (e.g. huge annotations or many observed objects)",
		want:  "rpc error: code = ResourceExhausted desc = grpc: received message larger than max (",
		note:  "The function binary's --max-recv-message-size defaults to 4 MB; the call is refused before the function runs and Crossplane reports the error on the XR (Synced=False).",
		run:   oversizedRequest,
	},
}
