package project

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// The project's Grafana dashboard (README, "Dashboards"): classic dashboard
// JSON, which Grafana's dashboard sidecar (kiwigrid/k8s-sidecar) loads
// from every ConfigMap carrying its label, in the namespace the platform
// names, into the folder the folder annotation gives. Its panels read the
// servers' recording rules (fn/tritonserver/alerts.go) and
// kube-state-metrics.

const (
	ConditionDashboard = "Dashboard"

	reqDashboardNamespace = "dashboard-namespace"
	// grafanaUIDMax is the longest dashboard uid Grafana accepts.
	grafanaUIDMax = 40
	// dashboardSchemaVersion is Grafana 11.0's (see projectDashboard).
	dashboardSchemaVersion = 39
)

// The recording rules the panels read (fn/tritonserver/alerts.go; the
// kind packages do not import each other, and TestDashboardReadsRecords
// checks the names against the rule file the servers ship).
const (
	recordQueueTime    = "kalypso:queue_time_us:mean"
	recordLatency      = "kalypso:request_latency_us:mean"
	recordSuccessRate  = "kalypso:nv_inference_request_success:rate"
	recordFailureRatio = "kalypso:request_failure:ratio"
	recordGPUUtil      = "kalypso:gpu_utilization:avg"
	recordGPUMemory    = "kalypso:gpu_memory_used:ratio"
)

// panel is one graph: its title, unit and queries.
type panel struct {
	title, description, unit string
	targets                  []target
}

type target struct{ expr, legend string }

// The dashboard's variables, as its queries use them.
const (
	varDatasource  = "datasource"
	varEnvironment = "environment"
	varApplication = "application"
	varServer      = "server"
)

// dashboardPanels are the panels of a project's dashboard. gpu is the
// platform's GPU resource name as kube-state-metrics writes it in
// kube_pod_container_resource_requests (non-alphanumerics become _,
// internal/store/utils.go SanitizeLabelName) and kube_resourcequota (as
// is, with requests.).
func dashboardPanels(project string, gpu corev1.ResourceName) []panel {
	servers := fmt.Sprintf(`{kalypso_project=%q,namespace=~"$%s",kalypso_application=~"$%s",kalypso_server=~"$%s"}`, project, varEnvironment, varApplication, varServer)
	byServer := "{{kalypso_environment}}/{{kalypso_server}} {{model}}"
	ksmGPU := compose.KSMResource(gpu)
	ns := fmt.Sprintf(`namespace=~"$%s"`, varEnvironment)
	deploy := fmt.Sprintf(`deployment=~"${%s}-deploy"`, varServer)
	hpa := fmt.Sprintf(`horizontalpodautoscaler=~"${%s}-(hpa|kda)"`, varServer)
	return []panel{
		{title: "Queue time", unit: "µs", description: "Mean time a request waits in Triton's queue, per model (nv_inference_queue_duration_us / nv_inference_request_success).",
			targets: []target{{recordQueueTime + servers, byServer}}},
		{title: "Request latency", unit: "µs", description: "Mean request time in Triton, per model (nv_inference_request_duration_us / nv_inference_request_success); an ensemble's is end to end.",
			targets: []target{{recordLatency + servers, byServer}}},
		{title: "Throughput", unit: "reqps", description: "Successful requests per second, per model (nv_inference_request_success); an ensemble's requests count under it and under each model it calls.",
			targets: []target{{recordSuccessRate + servers, byServer}}},
		{title: "Failures", unit: "percentunit", description: "Share of requests that failed, per model (nv_inference_request_failure, every reason but CANCELED).",
			targets: []target{{recordFailureRatio + servers, byServer}}},
		{title: "GPU utilisation", unit: "percentunit", description: "Mean utilisation of each pod's GPUs (nv_gpu_utilization).",
			targets: []target{{recordGPUUtil + servers, "{{kalypso_server}} {{pod}}"}}},
		{title: "GPU memory", unit: "percentunit", description: "Memory in use of each GPU a pod sees (nv_gpu_memory_used_bytes / nv_gpu_memory_total_bytes).",
			targets: []target{{recordGPUMemory + servers, "{{kalypso_server}} {{pod}} {{gpu_uuid}}"}}},
		{title: "Replicas and autoscaling bounds", unit: "short", description: "Available replicas of each server's Deployment, and the bounds of its HorizontalPodAutoscaler (hpa) or KEDA's (kda), from kube-state-metrics.",
			targets: []target{
				{fmt.Sprintf("kube_deployment_status_replicas_available{%s,%s}", ns, deploy), "{{namespace}}/{{deployment}} available"},
				{fmt.Sprintf("kube_horizontalpodautoscaler_spec_min_replicas{%s,%s}", ns, hpa), "{{namespace}}/{{horizontalpodautoscaler}} min"},
				{fmt.Sprintf("kube_horizontalpodautoscaler_spec_max_replicas{%s,%s}", ns, hpa), "{{namespace}}/{{horizontalpodautoscaler}} max"},
			}},
		{title: "GPUs requested and quota", unit: "short", description: "GPUs the environment's pods request against its ResourceQuota, from kube-state-metrics.",
			targets: []target{
				{fmt.Sprintf(`sum by (namespace) (kube_pod_container_resource_requests{%s,resource=%q})`, ns, ksmGPU), "{{namespace}} requested"},
				// Not the value showback tracks with, which never limits.
				{fmt.Sprintf(`max by (namespace) (kube_resourcequota{%s,resource=%q,type="hard"} < %d)`, ns, "requests."+string(gpu), compose.UntrackedGPUQuota), "{{namespace}} quota"},
			}},
	}
}

// dashboardUID is the project's dashboard uid. Grafana takes at most 40
// letters, digits, - and _ (pkg/util/shortid_generator.go): a name with
// other characters (a dot) or too long keeps a prefix and a hash.
func dashboardUID(project string) string {
	uid := "kalypso-" + project
	clean := uidInvalidRE.ReplaceAllString(uid, "-")
	if clean == uid && len(uid) <= grafanaUIDMax {
		return uid
	}
	sum := sha256.Sum256([]byte(project))
	return clean[:min(len(clean), grafanaUIDMax-9)] + "-" + hex.EncodeToString(sum[:])[:8]
}

var uidInvalidRE = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// projectDashboard builds the dashboard: the datasource, environment
// (each environment's name shows, its namespace is the value),
// application and server as variables, and the panels two by two. No
// variable has an allValue: Grafana opens on All, and a custom one (.*)
// would be put in the queries as it is, showing every namespace's series;
// without it All is the listed values as a regex (the Prometheus data
// source's interpolateQueryExpr). Schema version 39 (Grafana 11.0):
// Grafana migrates older dashboards forward, and some refuse newer ones
// than they know (Grafana 12's backend migrator).
func projectDashboard(project, title string, envs []string, namespaces map[string]string, gpu corev1.ResourceName) (dashboard.Dashboard, error) {
	ds := common.DataSourceRef{Type: ptr.To("prometheus"), Uid: ptr.To("${" + varDatasource + "}")}
	choices := make([]string, 0, len(envs))
	for _, env := range envs {
		choices = append(choices, env+" : "+namespaces[env])
	}
	queryVar := func(name, label, query string) cog.Builder[dashboard.VariableModel] {
		return dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(ds).
			Query(dashboard.StringOrMap{String: ptr.To(query)}).Definition(query).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true)
	}
	b := dashboard.NewDashboardBuilder(title).
		Uid(dashboardUID(project)).
		Tags([]string{"kalypso", "triton"}).
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder(varDatasource).Label("Prometheus").Type("prometheus")).
		WithVariable(dashboard.NewCustomVariableBuilder(varEnvironment).Label("Environment").
			Values(dashboard.StringOrMap{String: ptr.To(strings.Join(choices, ","))}).Multi(true).IncludeAll(true)).
		WithVariable(queryVar(varApplication, "Application",
			fmt.Sprintf(`label_values(%s{kalypso_project=%q,namespace=~"$%s"}, kalypso_application)`, recordSuccessRate, project, varEnvironment))).
		WithVariable(queryVar(varServer, "Server",
			fmt.Sprintf(`label_values(%s{kalypso_project=%q,namespace=~"$%s",kalypso_application=~"$%s"}, kalypso_server)`, recordSuccessRate, project, varEnvironment, varApplication)))
	for i, p := range dashboardPanels(project, gpu) {
		tb := timeseries.NewPanelBuilder().Id(uint32(i + 1)).Title(p.title).Description(p.description).Unit(p.unit).
			Datasource(ds).Height(8).Span(12).Min(0)
		for j, t := range p.targets {
			tb = tb.WithTarget(prometheus.NewDataqueryBuilder().RefId(string(rune('A' + j))).Expr(t.expr).LegendFormat(t.legend))
		}
		b = b.WithPanel(tb)
	}
	d, err := b.Build()
	d.SchemaVersion = dashboardSchemaVersion
	return d, err
}

// dashboardConfigMap ships the dashboard for the sidecar. Its
// environments are the live ones, whose namespace the project holds: a
// foreign namespace named in the spec must not show in it.
func (c *Composer) dashboardConfigMap(p compose.Platform, live []string) (*corev1.ConfigMap, error) {
	title := c.spec.DisplayName
	if title == "" {
		title = c.name
	}
	namespaces := map[string]string{}
	for _, env := range live {
		namespaces[env] = c.spec.Environments[env].Namespace
	}
	d, err := projectDashboard(c.name, "Kalypso: "+title, live, namespaces, p.DefaultGPU().Resource)
	if err != nil {
		return nil, fmt.Errorf("dashboard of project %s: %w", c.name, err)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	labels := compose.Merge(compose.Owner{Project: c.name}.Labels("dashboard", c.name), p.DashboardLabels)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kalypso-dashboard-" + c.name, Namespace: p.DashboardNamespace, Labels: labels},
		Data:       map[string]string{"kalypso-" + c.name + ".json": string(b)},
	}
	if p.DashboardFolderAnnotation != "" {
		cm.Annotations = map[string]string{p.DashboardFolderAnnotation: c.name}
	}
	return cm, nil
}

// dashboardPart is the ConfigMap's pipeline name: with its namespace, so
// that moving dashboards.namespace deletes the old one (Crossplane deletes
// what a name no longer composes).
func dashboardPart(namespace string) resource.Name { return resource.Name("dashboard." + namespace) }

// observedDashboard is the dashboard ConfigMap composed so far, wherever.
func (c *Composer) observedDashboard() (resource.Name, bool) {
	for name := range c.observed {
		if strings.HasPrefix(string(name), "dashboard.") {
			return name, true
		}
	}
	return "", false
}

// composeDashboard composes the dashboard's ConfigMap when the platform
// ships dashboards and its namespace exists (an apply into a missing
// namespace would fail the project's whole reconcile).
func (c *Composer) composeDashboard(d *compose.Desired, p compose.Platform, live []string, required map[string][]resource.Required) (compose.Condition, error) {
	cond := compose.Condition{Type: ConditionDashboard}
	switch {
	case !p.DashboardsEnabled:
		cond.Reason, cond.Message = "DashboardsDisabled", "the platform ships no dashboards (function input dashboards.enabled)"
		return cond, nil
	case len(required[reqDashboardNamespace]) == 0:
		cond.Reason, cond.Message = "DashboardNamespaceMissing", fmt.Sprintf("namespace %s, where the platform ships dashboards (dashboards.namespace), does not exist: create it, or point dashboards.namespace at the one Grafana's dashboard sidecar searches", p.DashboardNamespace)
		if name, ok := c.observedDashboard(); ok {
			_, err := d.Keep(name, c.observed[name].Resource, compose.Exists)
			return cond, err
		}
		return cond, nil
	}
	cm, err := c.dashboardConfigMap(p, live)
	if err != nil {
		return cond, err
	}
	if _, err := d.Add(dashboardPart(cm.Namespace), cm, compose.Exists); err != nil {
		return cond, err
	}
	cond.Status, cond.Reason = true, "DashboardComposed"
	cond.Message = fmt.Sprintf("ConfigMap %s/%s holds Grafana dashboard %s", cm.Namespace, cm.Name, dashboardUID(c.name))
	return cond, nil
}
