package badinput_test

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/test/schemacheck"
)

var update = flag.Bool("update", false, "rewrite README.md from the catalogue")

// TestCatalogue runs every row: the API server rows admit the object
// against the generated XRD, the function rows call RunFunction with every
// requirement answered, the gRPC rows call a gRPC server.
func TestCatalogue(t *testing.T) {
	names := map[string]bool{}
	for _, r := range catalogue {
		if names[r.name] {
			t.Fatalf("two rows are named %s", r.name)
		}
		names[r.name] = true
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			r.check(t)
		})
	}
}

func (r row) check(t *testing.T) {
	t.Helper()
	if r.want == "" || r.wrote == "" {
		t.Fatal("a row says what the user wrote and what they are told")
	}
	switch r.by {
	case bySchema, byCEL:
		r.checkAPIServer(t)
	case byFatal, byCondition:
		r.checkFunction(t)
	case byGRPC:
		err := r.run(t)
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Fatalf("want an error containing %q, got %v", r.want, err)
		}
	default:
		t.Fatalf("unknown catcher %q", r.by)
	}
}

func kindOf(t *testing.T, obj map[string]any) string {
	t.Helper()
	k, _ := obj["kind"].(string)
	return k
}

func (r row) checkAPIServer(t *testing.T) {
	t.Helper()
	obj := schemacheck.MustParse(t, r.obj)
	var old map[string]any
	if r.old != "" {
		old = schemacheck.MustParse(t, r.old)
	}
	kind := kindOf(t, obj)
	_, err := validators.For(t, kind).Admit(t.Context(), obj, old)
	if err == nil {
		t.Fatalf("the API server accepts it; want it refused with %q", r.want)
	}
	if !strings.Contains(err.Error(), r.want) {
		t.Fatalf("want the refusal to contain %q, got:\n%v", r.want, err)
	}
	// The catcher is what the row says: a CEL row's message is one of the
	// XRD's x-kubernetes-validations messages, a schema row's is none.
	isRule := false
	for _, m := range ruleMessages(t, kind) {
		if strings.Contains(m, r.want) || strings.Contains(r.want, m) {
			isRule = true
		}
	}
	if isRule != (r.by == byCEL) {
		t.Errorf("the row says %q, but the message %s one of the XRD's CEL rule messages", r.by, map[bool]string{true: "is", false: "is not"}[isRule])
	}
}

func (r row) checkFunction(t *testing.T) {
	t.Helper()
	obj := schemacheck.MustParse(t, r.obj)
	kind := kindOf(t, obj)
	xr := obj
	stored, err := validators.For(t, kind).Admit(t.Context(), obj, nil)
	switch {
	case r.schemaToo == "" && err != nil:
		t.Fatalf("the API server refuses the object, so the function never sees it: %v", err)
	case r.schemaToo == "":
		xr = stored
	case err == nil || !strings.Contains(err.Error(), r.schemaToo):
		t.Fatalf("want the API server to refuse the object too, with %q; got %v", r.schemaToo, err)
	}
	md, _ := xr["metadata"].(map[string]any)
	md["generation"] = int64(1)

	rsp := converge(t, xr, r.input, pool(t, r.drop, r.add))
	f := composetest.Fatal(rsp)
	switch r.by {
	case byFatal:
		if f == nil {
			t.Fatalf("want a Fatal containing %q, got none; conditions: %v", r.want, rsp.GetConditions())
		}
		if !strings.Contains(f.GetMessage(), r.want) {
			t.Fatalf("want the Fatal to contain %q, got:\n%s", r.want, f.GetMessage())
		}
		if len(rsp.GetDesired().GetResources()) > 0 || rsp.GetDesired().GetComposite() != nil {
			t.Errorf("a Fatal carries no desired state, got %v", rsp.GetDesired())
		}
	case byCondition:
		if f != nil {
			t.Fatalf("want a condition, got a Fatal: %s", f.GetMessage())
		}
		typ, reason, _ := strings.Cut(r.cond, "=")
		c := conditionOf(rsp, typ)
		switch {
		case c == nil:
			t.Fatalf("no %s condition; got %v", typ, rsp.GetConditions())
		case c.GetStatus() != fnv1.Status_STATUS_CONDITION_FALSE || c.GetReason() != reason:
			t.Fatalf("want %s=False with reason %s, got %s %s: %s", typ, reason, c.GetStatus(), c.GetReason(), c.GetMessage())
		case !strings.Contains(c.GetMessage(), r.want):
			t.Fatalf("want the %s message to contain %q, got:\n%s", typ, r.want, c.GetMessage())
		}
		if rsp.GetDesired().GetComposite() == nil {
			t.Errorf("a condition row still writes the composite's status")
		}
	}
}

// ruleMessages are the messages of every CEL rule of a kind's XRD.
func ruleMessages(t *testing.T, kind string) []string {
	t.Helper()
	b, err := os.ReadFile(xrds[kind].Path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch n := v.(type) {
		case map[string]any:
			if rules, ok := n["x-kubernetes-validations"].([]any); ok {
				for _, rule := range rules {
					if m, ok := rule.(map[string]any)["message"].(string); ok {
						out = append(out, m)
					}
				}
			}
			for _, e := range n {
				walk(e)
			}
		case []any:
			for _, e := range n {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

// maxRecvMessageSize is the function binary's default
// --max-recv-message-size (fn/cmd/function: 4 MB).
const maxRecvMessageSize = 4 << 20

// oversizedRequest sends a 5 MiB request to the function served by a gRPC
// server configured like the function binary, and a 3 MiB one that must
// pass. It returns the error of the large one.
func oversizedRequest(t *testing.T) error {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxRecvMessageSize))
	fnv1.RegisterFunctionRunnerServiceServer(srv, fn.New(logging.NewNopLogger()))
	go srv.Serve(lis) //nolint:errcheck // stopped below.
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := fnv1.NewFunctionRunnerServiceClient(conn)

	call := func(size int) (*fnv1.RunFunctionRequest, error) {
		xr := schemacheck.MustParse(t, projectXR(envs("dev: {namespace: vision-dev}")))
		md, _ := xr["metadata"].(map[string]any)
		md["annotations"] = map[string]any{"padding": strings.Repeat("x", size)}
		s, err := structpb.NewStruct(xr)
		if err != nil {
			t.Fatal(err)
		}
		req := &fnv1.RunFunctionRequest{Meta: &fnv1.RequestMeta{Tag: "size"}, Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: s}}}
		_, err = client.RunFunction(t.Context(), req)
		return req, err
	}
	req, err := call(3 << 20)
	if err != nil {
		t.Fatalf("a %d byte request must pass: %v", proto.Size(req), err)
	}
	req, err = call(5 << 20)
	if size := proto.Size(req); size <= maxRecvMessageSize {
		t.Fatalf("the large request is only %d bytes", size)
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("want %s, got %v", codes.ResourceExhausted, err)
	}
	return err
}

// ---- README.md -----------------------------------------------------------------

// TestREADME fails when README.md is not what the catalogue generates;
// -update rewrites it.
func TestREADME(t *testing.T) {
	want := readme()
	if *update {
		if err := os.WriteFile("README.md", want, 0o644); err != nil { //nolint:gosec // a documentation file.
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("%v: run go test ./test/badinput -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("README.md is stale: run go test ./test/badinput -update")
	}
}

var kindOrder = []string{tProject, tApplication, tXRApp, tServer, tXRServer, "Input", "EnvironmentConfig", "RunFunctionRequest"}

func readme() []byte {
	var b bytes.Buffer
	count := map[catcher]int{}
	for _, r := range catalogue {
		count[r.by]++
	}
	b.WriteString(`# Bad-input catalogue

<!-- Generated from the table in catalogue_test.go by
     go test ./test/badinput -update
     Do not edit: go test ./test/badinput fails when this file is stale. -->

What users get wrong in the three Kalypso kinds, in the function's Input and
in the ` + "`kalypso-defaults`" + ` EnvironmentConfig; who catches it first; and
the exact words they get back. Every row is a test
(` + "`go test ./test/badinput -run 'TestCatalogue/<name>'`" + `):

- **API server** rows admit the object against the generated XRD with the
  API server's own pruning, defaulting, OpenAPI validation and CEL
  (` + "`test/schemacheck`" + `); the outcome is a substring of the refusal ` + "`kubectl`" + `
  prints. CEL rows' messages are checked to be the XRD's rule messages.
- **function** rows first check that the API server accepts the object (or,
  for the rows marked *stored*, that it refuses it too: the function's
  check is defence in depth for objects stored before an XRD change), then
  call ` + "`RunFunction`" + ` with the stored object and every required resource
  answered, as Crossplane does. A *Fatal* row's outcome is a substring of
  the Fatal result, shown in the composite's ` + "`Synced=False`" + ` condition
  (see "Bad input and Fatal results" in the top README); a *condition* row's is the condition type,
  status False, reason and a substring of its message.
- The **gRPC** row sends a request larger than the function binary's
  receive limit to a gRPC server configured the same way.

`)
	fmt.Fprintf(&b, "%d cases:", len(catalogue))
	var parts []string
	for _, c := range catchers {
		parts = append(parts, fmt.Sprintf(" %d by the %s", count[c], c))
	}
	b.WriteString(strings.Join(parts, ",") + ".\n")

	rows := slices.Clone(catalogue)
	slices.SortStableFunc(rows, func(a, c row) int { return slices.Index(kindOrder, a.kind) - slices.Index(kindOrder, c.kind) })
	kind := ""
	n := 0
	for _, r := range rows {
		if r.kind != kind {
			kind = r.kind
			fmt.Fprintf(&b, "\n## %s\n\n| # | Test | What the user wrote | Caught by | What they are told | Notes |\n|---|---|---|---|---|---|\n", kind)
		}
		n++
		caught := string(r.by)
		if r.schemaToo != "" {
			caught += "; *stored* (the API server refuses it too)"
		}
		outcome := code(r.want)
		if r.by == byCondition {
			typ, reason, _ := strings.Cut(r.cond, "=")
			outcome = fmt.Sprintf("`%s=False`, reason `%s`: %s", typ, reason, outcome)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", n, r.name, cell(r.wrote), caught, cell(outcome), cell(r.note))
	}
	return b.Bytes()
}

// code puts s in a code span (doubling the fence when s holds a backtick).
func code(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// cell makes s fit a table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
