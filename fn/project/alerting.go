package project

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Alert routing (README, "Alerts"): with spec.alerting, every environment
// namespace gets an AlertmanagerConfig that routes the alerts raised in
// it to the receivers serving that environment. The receivers' Secrets are
// referenced by name, never copied: the Prometheus Operator reads them
// from the AlertmanagerConfig's own namespace
// (pkg/alertmanager/amcfg.go, convertSlackConfig and the like), so each
// must exist there, which the project checks.

const (
	ConditionAlertRouting = "AlertRouting"

	reqAlertmanagerConfig = "alertmanagerconfig-schema"
	alertmanagerConfigCRD = "alertmanagerconfigs.monitoring.coreos.com"
	// noReceiver takes what no receiver's route takes: the top route of an
	// AlertmanagerConfig must name a receiver. The dot keeps it out of the
	// receiver names a project may choose (the operator refuses duplicates,
	// pkg/alertmanager/validation/v1alpha1 validation.go).
	noReceiver = "kalypso.none"
)

// Reasons of the AlertRouting condition.
const (
	reasonRoutingDisabled       = "AlertRoutingDisabled"
	reasonRoutingCRDMissing     = "AlertmanagerConfigCRDMissing"
	reasonReceiverSecretMissing = "ReceiverSecretMissing"
	reasonRoutingComposed       = "AlertRoutingComposed"
)

func alertmanagerConfigPart(env string) resource.Name { return partName("alertmanagerconfig", env) }

// receiverSecretRequirement keys a receiver Secret of an environment: the
// dot cannot be in an environment's name (a DNS label), so environment
// prod with Secret eu-alerts and prod-eu with alerts do not collide.
func receiverSecretRequirement(env, secret string) string {
	return "receiver-secret-" + env + "." + secret
}

// checkAlerting refuses receivers naming environments the project does not
// have, and duplicate names (the schema's list map refuses those on the
// API server; crossplane render does not).
func (c *Composer) checkAlerting() error {
	if c.spec.Alerting == nil {
		return nil
	}
	if len(c.spec.Alerting.Receivers) == 0 {
		return fmt.Errorf("spec.alerting.receivers is empty: name at least one receiver, or remove spec.alerting")
	}
	seen := map[string]bool{}
	for i, r := range c.spec.Alerting.Receivers {
		if seen[r.Name] {
			return fmt.Errorf("spec.alerting.receivers[%d].name: %q is used twice: receiver names must be unique", i, r.Name)
		}
		seen[r.Name] = true
		if !receiverNameRE.MatchString(r.Name) || len(r.Name) > 40 {
			return fmt.Errorf("spec.alerting.receivers[%d].name: %q must start with a letter and hold only lower case letters, digits and '-' (at most 40)", i, r.Name)
		}
		if !slices.Contains(receiverTypes, r.Type) {
			return fmt.Errorf("spec.alerting.receivers[%d].type: %q is not one of %s", i, r.Type, strings.Join(receiverTypes, ", "))
		}
		for _, env := range r.Environments {
			if _, ok := c.spec.Environments[env]; !ok {
				return fmt.Errorf("spec.alerting.receivers[%d].environments: %q is not in spec.environments (%s)", i, env, strings.Join(c.envs, ", "))
			}
		}
	}
	return nil
}

// receiverTypes are the receiver kinds the schema admits.
var receiverTypes = []string{"slack", "pagerduty", "webhook", "msteams"}

var receiverNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// receiversOf are the receivers serving an environment, by name.
func (c *Composer) receiversOf(env string) []v1alpha1.AlertReceiver {
	if c.spec.Alerting == nil {
		return nil
	}
	var out []v1alpha1.AlertReceiver
	for _, r := range c.spec.Alerting.Receivers {
		if len(r.Environments) == 0 || slices.Contains(r.Environments, env) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b v1alpha1.AlertReceiver) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// PlatformFirst: a project that routes alerts reads its receivers'
// Secrets, and the platform decides some of its other requirements
// (dashboards, showback), so it asks for the EnvironmentConfig alone first.
func (c *Composer) PlatformFirst() bool { return c.spec.Alerting != nil }

// alertingRequirements: the receivers' Secrets in every environment
// namespace they serve.
func (c *Composer) alertingRequirements(req map[string]*fnv1.ResourceSelector) {
	for _, env := range c.envs {
		ns := c.spec.Environments[env].Namespace
		for _, r := range c.receiversOf(env) {
			req[receiverSecretRequirement(env, r.SecretRef.Name)] = compose.KindSecret.Named(ns, r.SecretRef.Name)
		}
	}
}

// Schemas: whether AlertmanagerConfigs and PrometheusRules are served,
// asked while the project routes alerts (keeps showback) and composes none
// of the kind yet.
func (c *Composer) Schemas(p compose.Platform) map[string]*fnv1.SchemaSelector {
	s := map[string]*fnv1.SchemaSelector{}
	if c.spec.Alerting != nil && !c.composesKind(compose.KindAlertmanagerConfig.Kind) {
		s[reqAlertmanagerConfig] = compose.KindAlertmanagerConfig.Schema()
	}
	if p.ShowbackEnabled && !c.composesKind(compose.KindPrometheusRule.Kind) {
		s[reqPrometheusRule] = compose.KindPrometheusRule.Schema()
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

// secretProblem says what is wrong with a receiver's Secret in an
// environment namespace, "" when nothing is. The Prometheus Operator
// refuses a whole AlertmanagerConfig whose Secret or key is missing, or
// whose URL does not parse (pkg/alertmanager/amcfg.go convertSlackConfig,
// convertWebhookConfig, convertPagerdutyConfig; ValidateSecretURL), and an
// empty PagerDuty key makes Alertmanager refuse its whole configuration.
// The value is read only to check it: it never leaves this function.
func secretProblem(r v1alpha1.AlertReceiver, items []resource.Required) string {
	if len(items) == 0 {
		return fmt.Sprintf("Secret %s does not exist", r.SecretRef.Name)
	}
	raw, ok, _ := unstructured.NestedString(items[0].Resource.Object, "data", r.SecretRef.Key)
	if !ok {
		return fmt.Sprintf("Secret %s has no key %s", r.SecretRef.Name, r.SecretRef.Key)
	}
	value, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || strings.TrimSpace(string(value)) == "" {
		return fmt.Sprintf("key %s of Secret %s is empty", r.SecretRef.Key, r.SecretRef.Name)
	}
	if r.Type == "pagerduty" {
		return ""
	}
	u, err := url.Parse(strings.TrimSpace(string(value)))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("key %s of Secret %s does not hold an http(s) URL", r.SecretRef.Key, r.SecretRef.Name)
	}
	return ""
}

// composeAlerting composes the AlertmanagerConfig of every environment in
// live (whose namespace exists) that has receivers and their Secrets; an
// environment missing a Secret keeps the AlertmanagerConfig it has.
func (c *Composer) composeAlerting(d *compose.Desired, p compose.Platform, live []string, required map[string][]resource.Required) (compose.Condition, error) {
	cond := compose.Condition{Type: ConditionAlertRouting}
	if c.spec.Alerting == nil {
		cond.Reason, cond.Message = reasonRoutingDisabled, "spec.alerting is unset: the environments' alerts are routed as the platform's Alertmanager routes them"
		return cond, nil
	}
	if !c.composesKind(compose.KindAlertmanagerConfig.Kind) && len(required[reqAlertmanagerConfig]) == 0 {
		cond.Reason, cond.Message = reasonRoutingCRDMissing, compose.CRDMissing(alertmanagerConfigCRD, ", so no alerts are routed: install the Prometheus Operator's CRDs, or remove spec.alerting")
		return cond, nil
	}
	var missing, routed []string
	for _, env := range live {
		receivers := c.receiversOf(env)
		if len(receivers) == 0 {
			continue
		}
		ns := c.spec.Environments[env].Namespace
		// Only receivers whose Secret is sound: the operator would refuse
		// the namespace's whole AlertmanagerConfig for one that is not.
		var sound []v1alpha1.AlertReceiver
		var names []string
		for _, r := range receivers {
			if problem := secretProblem(r, required[receiverSecretRequirement(env, r.SecretRef.Name)]); problem != "" {
				missing = append(missing, fmt.Sprintf("receiver %s in namespace %s (environment %s): %s", r.Name, ns, env, problem))
				continue
			}
			sound = append(sound, r)
			names = append(names, r.Name)
		}
		m := c.meta(compose.Owner{Project: c.name, Environment: env}, "alertmanagerconfig", c.objectName(env, "alerts"), ns)
		m.Labels = compose.Merge(m.Labels, p.AlertmanagerConfigLabels)
		amc, err := alertmanagerConfig(m, sound)
		if err != nil {
			return cond, err
		}
		if _, err := d.Add(alertmanagerConfigPart(env), amc, compose.Exists); err != nil {
			return cond, err
		}
		if len(names) > 0 {
			routed = append(routed, fmt.Sprintf("%s to %s", ns, strings.Join(names, ", ")))
		}
	}
	if len(missing) > 0 {
		cond.Reason = reasonReceiverSecretMissing
		cond.Message = strings.Join(missing, "; ") + ": create each Secret in that namespace with its key holding the receiver's URL or routing key (the project references it and never copies it); until then those receivers are left out of the environment's AlertmanagerConfig"
		return cond, nil
	}
	cond.Status, cond.Reason = true, reasonRoutingComposed
	cond.Message = "alerts are routed from " + strings.Join(routed, "; ")
	if len(routed) == 0 {
		cond.Message = "no receiver serves an environment whose namespace exists yet"
	}
	return cond, nil
}

// alertmanagerConfig routes the namespace's alerts to the receivers: a
// top route that matches the namespace (whatever the Alertmanager's
// alertmanagerConfigMatcherStrategy; with OnNamespace, the default, the
// operator adds the same matcher), and one child route per receiver,
// filtered by severity, each continuing to the next.
func alertmanagerConfig(m metav1.ObjectMeta, receivers []v1alpha1.AlertReceiver) (*monitoringv1alpha1.AlertmanagerConfig, error) {
	spec := monitoringv1alpha1.AlertmanagerConfigSpec{
		Route: &monitoringv1alpha1.Route{
			Receiver: noReceiver,
			GroupBy:  []string{"alertname", "kalypso_server"},
			Matchers: []monitoringv1alpha1.Matcher{{Name: "namespace", Value: m.Namespace, MatchType: monitoringv1alpha1.MatchEqual}},
		},
		Receivers: []monitoringv1alpha1.Receiver{{Name: noReceiver}},
	}
	for _, r := range receivers {
		route := monitoringv1alpha1.Route{Receiver: r.Name, Continue: true}
		if len(r.Severities) > 0 {
			sev := slices.Compact(slices.Sorted(slices.Values(r.Severities)))
			route.Matchers = []monitoringv1alpha1.Matcher{{Name: "severity", Value: strings.Join(sev, "|"), MatchType: monitoringv1alpha1.MatchRegexp}}
		}
		raw, err := json.Marshal(route)
		if err != nil {
			return nil, err
		}
		spec.Route.Routes = append(spec.Route.Routes, apiextensionsv1.JSON{Raw: raw})
		spec.Receivers = append(spec.Receivers, receiver(r))
	}
	return &monitoringv1alpha1.AlertmanagerConfig{
		ObjectMeta: m,
		Spec:       spec,
	}, nil
}

// receiver is one Alertmanager receiver reading the Secret's key.
func receiver(r v1alpha1.AlertReceiver) monitoringv1alpha1.Receiver {
	secret := corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: r.SecretRef.Name}, Key: r.SecretRef.Key}
	out := monitoringv1alpha1.Receiver{Name: r.Name}
	resolved := ptr.To(true)
	switch r.Type {
	case "slack":
		out.SlackConfigs = []monitoringv1alpha1.SlackConfig{{APIURL: &secret, Channel: r.Channel, SendResolved: resolved}}
	case "pagerduty":
		out.PagerDutyConfigs = []monitoringv1alpha1.PagerDutyConfig{{RoutingKey: &secret, SendResolved: resolved}}
	case "msteams":
		// Teams' Workflows webhooks (msteamsv2, Alertmanager 0.28 or
		// later): the operator checks their Secret per object, and
		// Microsoft retired the connectors msteams (v1) posts to.
		out.MSTeamsV2Configs = []monitoringv1alpha1.MSTeamsV2Config{{WebhookURL: &secret, SendResolved: resolved}}
	default:
		out.WebhookConfigs = []monitoringv1alpha1.WebhookConfig{{URLSecret: &secret, SendResolved: resolved}}
	}
	return out
}
