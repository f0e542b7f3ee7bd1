// Package fn is the Kalypso composition function: it decodes the request,
// dispatches on the composite's kind and writes the kind's result into the
// response.
package fn

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/response"
	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/application"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/project"
	"github.com/kalypsoserving/function-kalypso/fn/tritonserver"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// environmentConfigRequirement is the key of the platform's EnvironmentConfig.
const environmentConfigRequirement = "environment-config"

// Function runs the Kalypso composition.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log logging.Logger
}

// New returns the function.
func New(log logging.Logger) *Function { return &Function{log: log} }

// composer is one decoded composite of some kind.
type composer interface {
	// Requirements are the resources it looks up; the same on every call
	// with the same platform defaults. A composer may also check kinds
	// through required schemas (compose.SchemaRequirer).
	Requirements(p compose.Platform) map[string]*fnv1.ResourceSelector
	// Compose decides the desired state once every requirement is resolved.
	Compose(p compose.Platform, required map[string][]resource.Required) compose.Result
}

// kind is how the function serves one composite kind.
type kind struct {
	decode         func(*resource.Composite, map[resource.Name]resource.ObservedComposed) (composer, error)
	conditionTypes []string
}

var (
	projectKind = kind{
		decode: func(xr *resource.Composite, o map[resource.Name]resource.ObservedComposed) (composer, error) {
			return project.New(xr, o)
		},
		conditionTypes: project.ConditionTypes,
	}
	applicationKind = kind{
		decode: func(xr *resource.Composite, o map[resource.Name]resource.ObservedComposed) (composer, error) {
			return application.New(xr, o)
		},
		conditionTypes: application.ConditionTypes,
	}
	tritonServerKind = kind{
		decode: func(xr *resource.Composite, o map[resource.Name]resource.ObservedComposed) (composer, error) {
			return tritonserver.New(xr, o)
		},
		conditionTypes: tritonserver.ConditionTypes,
	}
)

// kinds maps each served composite kind (both flavours) to its composer.
var kinds = map[string]kind{
	v1alpha1.KindProject:       projectKind,
	v1alpha1.KindApplication:   applicationKind,
	v1alpha1.KindXApplication:  applicationKind,
	v1alpha1.KindTritonServer:  tritonServerKind,
	v1alpha1.KindXTritonServer: tritonServerKind,
}

// RunFunction composes the observed composite.
func (f *Function) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp := response.To(req, response.DefaultTTL)

	oxr, err := request.GetObservedCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot get the observed composite resource"))
		return rsp, nil
	}
	gvk := oxr.Resource.GroupVersionKind()
	log := f.log.WithValues("xr-apiversion", oxr.Resource.GetAPIVersion(), "xr-kind", gvk.Kind, "xr-name", oxr.Resource.GetName())

	k, ok := kinds[gvk.Kind]
	if gvk.Group != v1alpha1.Group || !ok {
		response.Fatal(rsp, errors.Errorf("function-kalypso does not compose %s: it serves %s kinds %s", gvk, v1alpha1.Group, servedKinds()))
		return rsp, nil
	}

	in, err := input(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot decode the function input"))
		return rsp, nil
	}
	observed, err := request.GetObservedComposedResources(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot get the observed composed resources"))
		return rsp, nil
	}
	c, err := k.decode(oxr, observed)
	if err != nil {
		fatal(rsp, oxr, k.conditionTypes, errors.Wrapf(err, "invalid %s %s", gvk.Kind, oxr.Resource.GetName()))
		return rsp, nil
	}

	ecName := in.EnvironmentConfigName
	if ecName == "" {
		ecName = v1beta1.DefaultEnvironmentConfigName
	}
	// The platform defaults decide some lookups (e.g. the API key Secret's
	// name), so they are resolved from what is known so far: the Input
	// alone on the first call, with the EnvironmentConfig once Crossplane
	// fetched it. Crossplane calls again until the requirements settle.
	var envConfig *unstructured.Unstructured
	if items, _, err := request.GetRequiredResource(req, environmentConfigRequirement); err == nil && len(items) > 0 {
		envConfig = items[0].Resource
	}
	platform, err := compose.ResolvePlatform(in, envConfig)
	if err != nil {
		fatal(rsp, oxr, k.conditionTypes, err)
		return rsp, nil
	}

	// A composer whose Secret lookups depend on the platform asks for the
	// EnvironmentConfig alone first: otherwise Crossplane would fetch those
	// Secrets for the Input's defaults, then again for the
	// EnvironmentConfig's (core fetches every requirement again when the
	// set changes, and reads Secrets past its cache).
	if pf, ok := c.(compose.PlatformFirst); ok && pf.PlatformFirst() {
		if _, resolved, err := request.GetRequiredResource(req, environmentConfigRequirement); err == nil && !resolved {
			rsp.Requirements = &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
				environmentConfigRequirement: compose.KindEnvironmentCfg.Named("", ecName),
			}}
			return rsp, nil
		}
	}
	requirements := c.Requirements(platform)
	requirements[environmentConfigRequirement] = compose.KindEnvironmentCfg.Named("", ecName)
	schemas := compose.SchemasOf(c, platform)
	rsp.Requirements = &fnv1.Requirements{Resources: requirements, Schemas: schemas}

	required := map[string][]resource.Required{}
	for name := range requirements {
		items, resolved, err := request.GetRequiredResource(req, name)
		if err != nil {
			fatal(rsp, oxr, k.conditionTypes, errors.Wrapf(err, "cannot read required resource %s", name))
			return rsp, nil
		}
		if !resolved {
			// Crossplane fetches the requirements and calls again.
			log.Debug("waiting for required resources")
			return rsp, nil
		}
		required[name] = items
	}
	for name, sel := range schemas {
		schema, resolved := request.GetRequiredSchema(req, name)
		if !resolved {
			log.Debug("waiting for required schemas")
			return rsp, nil
		}
		required[name] = compose.Served(sel, schema)
	}

	res := c.Compose(platform, required)
	if res.Fatal != nil {
		fatal(rsp, oxr, k.conditionTypes, errors.Wrapf(res.Fatal, "invalid %s %s", gvk.Kind, oxr.Resource.GetName()))
		return rsp, nil
	}
	if held := compose.HoldBackNewKinds(observed, res.Desired); held > 0 {
		res.Ready = false
		log.Debug("holding back objects of kinds composed for the first time", "held", held)
	}
	res.TTL = compose.BreakerTTL(oxr.Resource.Object, res.TTL, res.Ready)
	if err := write(rsp, req, res); err != nil {
		fatal(rsp, oxr, k.conditionTypes, err)
		return rsp, nil
	}
	log.Debug("composed", "resources", len(res.Desired), "ready", res.Ready)
	return rsp, nil
}

// input decodes the function input strictly, with a stable message for an
// unknown field (the SDK's decoder words its errors differently from call to
// call, which would change the composite's Synced message every time).
func input(req *fnv1.RunFunctionRequest) (*v1beta1.Input, error) {
	in := &v1beta1.Input{}
	if req.GetInput() == nil {
		return in, nil
	}
	b, err := req.GetInput().MarshalJSON()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(in); err != nil {
		return nil, err
	}
	return in, nil
}

func servedKinds() string {
	served := make([]string, 0, len(kinds))
	for k := range kinds {
		served = append(served, k)
	}
	slices.Sort(served)
	return strings.Join(served, ", ")
}

// write puts a result into the response.
func write(rsp *fnv1.RunFunctionResponse, req *fnv1.RunFunctionRequest, res compose.Result) error {
	dxr, err := request.GetDesiredCompositeResource(req)
	if err != nil {
		return errors.Wrap(err, "cannot get the desired composite resource")
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(res.Status)
	if err != nil {
		return errors.Wrap(err, "cannot convert the composite's status")
	}
	dxr.Resource.Object["status"] = status
	dxr.Ready = resource.ReadyFalse
	if res.Ready {
		dxr.Ready = resource.ReadyTrue
	}
	if err := response.SetDesiredCompositeResource(rsp, dxr); err != nil {
		return errors.Wrap(err, "cannot set the desired composite resource")
	}
	desired, err := request.GetDesiredComposedResources(req)
	if err != nil {
		return errors.Wrap(err, "cannot get the desired composed resources")
	}
	for name, d := range res.Desired {
		desired[name] = d
	}
	if err := response.SetDesiredComposedResources(rsp, desired); err != nil {
		return errors.Wrap(err, "cannot set the desired composed resources")
	}
	setConditions(rsp, res.Conditions)
	if res.TTL > 0 {
		rsp.Meta.Ttl = durationpb.New(res.TTL)
	}
	return nil
}

func setConditions(rsp *fnv1.RunFunctionResponse, conds []compose.Condition) {
	for _, c := range conds {
		var co *response.ConditionOption
		if c.Status {
			co = response.ConditionTrue(rsp, c.Type, c.Reason)
		} else {
			co = response.ConditionFalse(rsp, c.Type, c.Reason)
		}
		co.WithMessage(c.Message).TargetCompositeAndClaim()
	}
}

// fatal refuses the call. Crossplane then keeps every composed object and
// the last status; the kind's conditions are re-sent as last observed, since
// Crossplane turns custom conditions that are not re-sent into Unknown.
func fatal(rsp *fnv1.RunFunctionResponse, oxr *resource.Composite, types []string, err error) {
	response.Fatal(rsp, err)
	for _, t := range types {
		c := oxr.Resource.GetCondition(xpv2.ConditionType(t))
		if c.Type == "" || c.Reason == "" {
			continue
		}
		var co *response.ConditionOption
		switch c.Status {
		case "True":
			co = response.ConditionTrue(rsp, t, string(c.Reason))
		case "False":
			co = response.ConditionFalse(rsp, t, string(c.Reason))
		default:
			co = response.ConditionUnknown(rsp, t, string(c.Reason))
		}
		co.WithMessage(c.Message).TargetCompositeAndClaim()
	}
}
