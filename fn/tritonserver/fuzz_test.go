package tritonserver

import (
	"strings"
	"testing"
)

// FuzzParsers feeds arbitrary strings to the parsers of user input: they
// must never panic, and every refusal names the field it refuses.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"0.1", "1", "abc", "0", "1.5", "1e-7", "NaN", "s3://bucket/path", "s3://minio:9000/b/p",
		"s3://https://h:443/b", "gs://b/p", "as://acct/c/p", "http://x", "", "http://minio.minio.svc:9000", "https://h", "ftp://h", "http://h/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := samplingRate(s); err == nil {
			if n < 1 || n > 1_000_000 {
				t.Fatalf("samplingRate(%q) = %d, outside 1..1000000", s, n)
			}
		} else if !strings.Contains(err.Error(), "spec.observability.tracing.samplingRate") {
			t.Fatalf("samplingRate(%q): error does not name the field: %v", s, err)
		}
		if u, err := tracesURL(s); err == nil {
			if !strings.HasSuffix(u, tracesPath) {
				t.Fatalf("tracesURL(%q) = %q does not end in %s", s, u, tracesPath)
			}
		} else if !strings.Contains(err.Error(), "spec.observability.collectorEndpoint") {
			t.Fatalf("tracesURL(%q): error does not name the field: %v", s, err)
		}
		if _, err := storageScheme(s); err != nil && !strings.Contains(err.Error(), "spec.storageUri") {
			t.Fatalf("storageScheme(%q): error does not name the field: %v", s, err)
		}
		if u, err := modelURI("s3://bucket/models", s); err == nil {
			if !strings.HasPrefix(u, "s3://") {
				t.Fatalf("modelURI(…, %q) = %q is not an S3 URI", s, u)
			}
		} else if !strings.Contains(err.Error(), "spec.storage.endpoint") {
			t.Fatalf("modelURI(…, %q): error does not name the field: %v", s, err)
		}
		if u, err := modelURI(s, "http://minio:9000"); err == nil && strings.HasPrefix(s, "s3://") && !strings.HasPrefix(u, "s3://") {
			t.Fatalf("modelURI(%q, …) = %q lost its scheme", s, u)
		}
	})
}
