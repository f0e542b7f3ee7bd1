package project

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

const (
	amcCRD = `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: alertmanagerconfigs.monitoring.coreos.com}}`
	// Two environments whose namespaces exist; oncall (PagerDuty) serves
	// prod's critical alerts, team (Slack) every environment's.
	alertingSpec = "  environments: {dev: {namespace: vision-dev}, prod: {namespace: vision-prod}}\n" +
		"  alerting:\n    receivers:\n" +
		"    - {name: team, type: slack, channel: '#vision', secretRef: {name: alert-receivers, key: slack-url}}\n" +
		"    - {name: oncall, type: pagerduty, environments: [prod], severities: [critical], secretRef: {name: pagerduty, key: routing-key}}\n"
	prodNS = `{apiVersion: v1, kind: Namespace, metadata: {name: vision-prod, labels: {kalypso-serving.io/environment: prod}}, status: {phase: Active}}`
)

func secret(ns, name, key string) string {
	return `{apiVersion: v1, kind: Secret, metadata: {name: ` + name + `, namespace: ` + ns + `}, data: {` + key + `: aHR0cHM6Ly9ob29rcw==}}`
}

func TestComposeAlerting(t *testing.T) {
	allSecrets := map[string][]string{
		reqAlertmanagerConfig:                                {amcCRD},
		receiverSecretRequirement("dev", "alert-receivers"):  {secret("vision-dev", "alert-receivers", "slack-url")},
		receiverSecretRequirement("prod", "alert-receivers"): {secret("vision-prod", "alert-receivers", "slack-url")},
		receiverSecretRequirement("prod", "pagerduty"):       {secret("vision-prod", "pagerduty", "routing-key")},
	}
	without := func(key string) map[string][]string {
		out := map[string][]string{}
		for k, v := range allSecrets {
			if k != key {
				out[k] = v
			}
		}
		return out
	}
	wrongKey := without(receiverSecretRequirement("prod", "pagerduty"))
	wrongKey[receiverSecretRequirement("prod", "pagerduty")] = []string{secret("vision-prod", "pagerduty", "key")}
	withSecret := func(key, ns, name, dataKey, value string) map[string][]string {
		out := without(key)
		out[key] = []string{`{apiVersion: v1, kind: Secret, metadata: {name: ` + name + `, namespace: ` + ns + `}, data: {` + dataKey + `: "` + value + `"}}`}
		return out
	}
	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		required map[string][]string
		amcs     []string // environments with an AlertmanagerConfig
		// prodReceivers: the receivers of prod's AlertmanagerConfig, when set.
		prodReceivers []string
		cond          compose.Condition
		fatal         string
	}{
		"Off": {
			reason: "Without spec.alerting nothing is composed or read.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n", observed: map[string]string{"namespace-dev": activeNS},
			cond: compose.Condition{Reason: reasonRoutingDisabled},
		},
		"Routed": {
			reason: "Every environment with receivers and their Secrets gets its AlertmanagerConfig.",
			spec:   alertingSpec, observed: map[string]string{"namespace-dev": activeNS, "namespace-prod": prodNS}, required: allSecrets,
			amcs: []string{"dev", "prod"},
			cond: compose.Condition{Status: true, Reason: reasonRoutingComposed, Message: "alerts are routed from vision-dev to team; vision-prod to oncall, team"},
		},
		"NamespaceNotYet": {
			reason: "An environment whose namespace does not exist yet gets none.",
			spec:   alertingSpec, observed: map[string]string{"namespace-dev": activeNS}, required: allSecrets,
			amcs: []string{"dev"},
			cond: compose.Condition{Status: true, Reason: reasonRoutingComposed, Message: "alerts are routed from vision-dev to team"},
		},
		"SecretMissing": {
			reason: "A receiver's Secret missing in one namespace: that environment's AlertmanagerConfig leaves the receiver out (the operator would refuse the whole object), and the condition names the receiver, namespace and Secret.",
			spec:   alertingSpec, observed: map[string]string{"namespace-dev": activeNS, "namespace-prod": prodNS},
			required: without(receiverSecretRequirement("prod", "pagerduty")),
			amcs:     []string{"dev", "prod"}, prodReceivers: []string{noReceiver, "team"},
			cond: compose.Condition{Reason: reasonReceiverSecretMissing, Message: "receiver oncall in namespace vision-prod (environment prod): Secret pagerduty does not exist: create each Secret in that namespace"},
		},
		"SecretKeyMissing": {
			reason: "…and the same for a key the Secret lacks.",
			spec:   alertingSpec, observed: map[string]string{"namespace-dev": activeNS, "namespace-prod": prodNS}, required: wrongKey,
			amcs: []string{"dev", "prod"}, prodReceivers: []string{noReceiver, "team"},
			cond: compose.Condition{Reason: reasonReceiverSecretMissing, Message: "Secret pagerduty has no key routing-key"},
		},
		"SecretEmpty": {
			reason: "An empty routing key would make Alertmanager refuse its whole configuration.",
			spec:   alertingSpec, observed: map[string]string{"namespace-dev": activeNS, "namespace-prod": prodNS}, required: withSecret(receiverSecretRequirement("prod", "pagerduty"), "vision-prod", "pagerduty", "routing-key", ""),
			amcs: []string{"dev", "prod"}, prodReceivers: []string{noReceiver, "team"},
			cond: compose.Condition{Reason: reasonReceiverSecretMissing, Message: "key routing-key of Secret pagerduty is empty"},
		},
		"SlackNotURL": {
			reason: "A Slack key that is not a URL: the operator refuses it (ValidateSecretURL), so it is left out and named.",
			spec:   alertingSpec, observed: map[string]string{"namespace-dev": activeNS, "namespace-prod": prodNS}, required: withSecret(receiverSecretRequirement("prod", "alert-receivers"), "vision-prod", "alert-receivers", "slack-url", "bm90LWEtdXJs"),
			amcs: []string{"dev", "prod"}, prodReceivers: []string{noReceiver, "oncall"},
			cond: compose.Condition{Reason: reasonReceiverSecretMissing, Message: "receiver team in namespace vision-prod (environment prod): key slack-url of Secret alert-receivers does not hold an http(s) URL"},
		},
		"CRDMissing": {
			reason: "Without the AlertmanagerConfig CRD nothing is composed, and the condition names the CRD.",
			spec:   alertingSpec, observed: map[string]string{"namespace-dev": activeNS, "namespace-prod": prodNS}, required: without(reqAlertmanagerConfig),
			cond: compose.Condition{Reason: reasonRoutingCRDMissing, Message: "the alertmanagerconfigs.monitoring.coreos.com CRD is not installed"},
		},
		"NoReceivers": {
			reason: "An empty receiver list is refused (the schema's minItems; crossplane render does not check it).",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n  alerting: {receivers: []}\n",
			fatal:  "spec.alerting.receivers is empty",
		},
		"UnknownEnvironment": {
			reason: "A receiver for an environment the project does not have is refused, naming the field.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n  alerting: {receivers: [{name: team, type: slack, environments: [prod], secretRef: {name: s, key: k}}]}\n",
			fatal:  `spec.alerting.receivers[0].environments: "prod" is not in spec.environments (dev)`,
		},
		"DuplicateReceiver": {
			reason: "Receiver names are unique.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n  alerting: {receivers: [{name: team, type: slack, secretRef: {name: s, key: k}}, {name: team, type: webhook, secretRef: {name: s, key: k}}]}\n",
			fatal:  `spec.alerting.receivers[1].name: "team" is used twice`,
		},
		"BadName": {
			reason: "crossplane render does not check the schema's pattern; the function does (and no name can take the reserved kalypso.none).",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n  alerting: {receivers: [{name: kalypso.none, type: slack, secretRef: {name: s, key: k}}]}\n",
			fatal:  `spec.alerting.receivers[0].name: "kalypso.none" must start with a letter`,
		},
		"UnknownType": {
			reason: "crossplane render does not check the schema's enum; the function does.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n  alerting: {receivers: [{name: team, type: email, secretRef: {name: s, key: k}}]}\n",
			fatal:  `spec.alerting.receivers[0].type: "email" is not one of slack, pagerduty, webhook, msteams`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			observed := map[string]string{"usage": readyUsage}
			for k, v := range tc.observed {
				observed[k] = v
			}
			c, err := New(xr(t, tc.spec), composetest.Observed(t, observed))
			if err != nil {
				t.Fatal(err)
			}
			req := composetest.Required(t, tc.required)
			got := c.Compose(platform(t), req)
			if tc.fatal != "" {
				if got.Fatal == nil || !strings.Contains(got.Fatal.Error(), tc.fatal) {
					t.Fatalf("%s\nwant Fatal containing %q, got %v", tc.reason, tc.fatal, got.Fatal)
				}
				return
			}
			if got.Fatal != nil {
				t.Fatal(got.Fatal)
			}
			var amcs []string
			for _, env := range []string{"dev", "prod"} {
				if _, ok := got.Desired[alertmanagerConfigPart(env)]; ok {
					amcs = append(amcs, env)
				}
			}
			if d := cmp.Diff(tc.amcs, amcs); d != "" {
				t.Errorf("%s\nAlertmanagerConfigs: -want +got\n%s", tc.reason, d)
			}
			if tc.prodReceivers != nil {
				var names []string
				for _, r := range composetest.Decode[monitoringv1alpha1.AlertmanagerConfig](t, got.Desired[alertmanagerConfigPart("prod")]).Spec.Receivers {
					names = append(names, r.Name)
				}
				if d := cmp.Diff(tc.prodReceivers, names); d != "" {
					t.Errorf("%s\nprod's receivers: -want +got\n%s", tc.reason, d)
				}
			}
			want := tc.cond
			want.Type = ConditionAlertRouting
			checkCondition(t, tc.reason, got, want)
			cond := conditionOf(got, ConditionAlertRouting)
			if !cond.Status && tc.spec == alertingSpec && got.TTL != compose.PollTTL {
				t.Errorf("%s\nwaiting for a Secret or the CRD: want TTL %v, got %v", tc.reason, compose.PollTTL, got.TTL)
			}
		})
	}
}

// TestAlertmanagerConfig: the prod environment's routes and receivers.
func TestAlertmanagerConfig(t *testing.T) {
	c, err := New(xr(t, alertingSpec), composetest.Observed(t, map[string]string{"usage": readyUsage, "namespace-prod": prodNS}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compose(platform(t), composetest.Required(t, map[string][]string{
		reqAlertmanagerConfig:                                {amcCRD},
		receiverSecretRequirement("prod", "alert-receivers"): {secret("vision-prod", "alert-receivers", "slack-url")},
		receiverSecretRequirement("prod", "pagerduty"):       {secret("vision-prod", "pagerduty", "routing-key")},
	}))
	if got.Fatal != nil {
		t.Fatal(got.Fatal)
	}
	d, ok := got.Desired[alertmanagerConfigPart("prod")]
	if !ok {
		t.Fatal("no AlertmanagerConfig for prod")
	}
	amc := composetest.Decode[monitoringv1alpha1.AlertmanagerConfig](t, d)
	if amc.Name != "vision-prod-alerts" || amc.Namespace != "vision-prod" || amc.Labels["release"] != "prometheus" {
		t.Errorf("want vision-prod-alerts in vision-prod labelled release: prometheus, got %s/%s %v", amc.Namespace, amc.Name, amc.Labels)
	}
	route := amc.Spec.Route
	if route.Receiver != noReceiver || !cmp.Equal(route.Matchers, []monitoringv1alpha1.Matcher{{Name: "namespace", Value: "vision-prod", MatchType: "="}}) {
		t.Errorf("top route: want receiver %s matching namespace vision-prod, got %s %v", noReceiver, route.Receiver, route.Matchers)
	}
	var children []monitoringv1alpha1.Route
	for _, raw := range route.Routes {
		var r monitoringv1alpha1.Route
		if err := json.Unmarshal(raw.Raw, &r); err != nil {
			t.Fatal(err)
		}
		children = append(children, r)
	}
	wantChildren := []monitoringv1alpha1.Route{
		{Receiver: "oncall", Continue: true, Matchers: []monitoringv1alpha1.Matcher{{Name: "severity", Value: "critical", MatchType: "=~"}}},
		{Receiver: "team", Continue: true},
	}
	if d := cmp.Diff(wantChildren, children); d != "" {
		t.Errorf("child routes: -want +got\n%s", d)
	}
	sel := func(name, key string) corev1.SecretKeySelector {
		return corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}
	}
	pd, slack := sel("pagerduty", "routing-key"), sel("alert-receivers", "slack-url")
	wantReceivers := []monitoringv1alpha1.Receiver{
		{Name: noReceiver},
		{Name: "oncall", PagerDutyConfigs: []monitoringv1alpha1.PagerDutyConfig{{RoutingKey: &pd, SendResolved: ptr.To(true)}}},
		{Name: "team", SlackConfigs: []monitoringv1alpha1.SlackConfig{{APIURL: &slack, Channel: "#vision", SendResolved: ptr.To(true)}}},
	}
	if d := cmp.Diff(wantReceivers, amc.Spec.Receivers); d != "" {
		t.Errorf("receivers (Secrets referenced, never copied): -want +got\n%s", d)
	}
}

// TestReceiverSecretRequirementsDistinct: environments whose names extend
// each other, with Secrets whose names do too, get distinct requirements.
func TestReceiverSecretRequirementsDistinct(t *testing.T) {
	if receiverSecretRequirement("prod", "eu-alerts") == receiverSecretRequirement("prod-eu", "alerts") {
		t.Error("prod/eu-alerts and prod-eu/alerts share a requirement key: one environment would read the other's Secret")
	}
}
