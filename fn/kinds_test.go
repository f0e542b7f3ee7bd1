package fn_test

import (
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

// TestKindTableCoversEveryStage: every requirement and composed object of
// every example at every render stage uses a kind of the kind table, with
// the access the table declares (composetest.Converge checks each call; the
// bad-input catalogue and the fuzz target check theirs the same way).
func TestKindTableCoversEveryStage(t *testing.T) {
	f := fn.New(logging.NewNopLogger())
	for _, c := range exCases(t) {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			if _, _, err := composetest.Converge(f, c.xr, c.input, c.observed, c.pool, func(*fnv1.RunFunctionResponse) { calls++ }); err != nil {
				t.Fatal(err)
			}
			if calls == 0 {
				t.Fatal("the function was never called")
			}
		})
	}
}

// TestKindsOutsideTableAreFound: the check itself finds a required kind and
// a composed kind the table does not hold, and a composed kind the table
// holds only for reading.
func TestKindsOutsideTableAreFound(t *testing.T) {
	obj := func(apiVersion, kind string) *fnv1.Resource {
		s, err := structpb.NewStruct(map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "x"}})
		if err != nil {
			t.Fatal(err)
		}
		return &fnv1.Resource{Resource: s}
	}
	rsp := &fnv1.RunFunctionResponse{
		Requirements: &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
			"replicaset": {ApiVersion: "apps/v1", Kind: "ReplicaSet", Match: &fnv1.ResourceSelector_MatchName{MatchName: "x"}},
			"pods":       {ApiVersion: "v1", Kind: "Pod", Match: &fnv1.ResourceSelector_MatchName{MatchName: "x"}},
		}},
		Desired: &fnv1.State{Resources: map[string]*fnv1.Resource{
			"job":    obj("batch/v1", "Job"),
			"secret": obj("v1", "Secret"),
			"svc":    obj("v1", "Service"),
		}},
	}
	err := composetest.KindsOutsideTable(rsp)
	if err == nil {
		t.Fatal("no error for kinds outside the table")
	}
	for _, want := range []string{"requirement replicaset: apps/v1, Kind=ReplicaSet is not in the kind table", "composed job: batch/v1, Kind=Job is not in the kind table", "composed secret: v1, Kind=Secret is not marked"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	for _, clean := range []string{"pods", "svc"} {
		if strings.Contains(err.Error(), " "+clean+":") {
			t.Errorf("error %q names %s, which the table holds", err, clean)
		}
	}
}
