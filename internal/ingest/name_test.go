package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/labels"
)

type nameCase struct {
	name    string
	in      string
	want    Name
	wantErr string // substring of the error; "" means success
}

// nameCases also seed FuzzParseName. The first ones are names that the
// pyroscope-go SDK v1.5.0 really sent, captured from its HTTP requests.
var nameCases = []nameCase{
	{
		name: "SDK: app without tags",
		in:   "simple.golang.app{__session_id__=77e425ea48b3919f,otel.scope.name=com.grafana.pyroscope/go,otel.scope.version=v1.5.0,process.runtime.name=go,process.runtime.version=go1.26.8}",
		want: Name{
			App:       "simple.golang.app",
			SessionID: "77e425ea48b3919f",
			Labels: labels.FromStrings(
				"otel_scope_name", "com.grafana.pyroscope/go",
				"otel_scope_version", "v1.5.0",
				"process_runtime_name", "go",
				"process_runtime_version", "go1.26.8",
				"service_name", "simple.golang.app",
			),
		},
	},
	{
		name: "SDK: tags with service_name",
		in:   "ride-sharing-app{__session_id__=9766c61117d774d9,hostname=host-1,otel.scope.name=com.grafana.pyroscope/go,otel.scope.version=v1.5.0,process.runtime.name=go,process.runtime.version=go1.26.8,region=us-east,service_name=rides}",
		want: Name{
			App:       "ride-sharing-app",
			SessionID: "9766c61117d774d9",
			Labels: labels.FromStrings(
				"hostname", "host-1",
				"otel_scope_name", "com.grafana.pyroscope/go",
				"otel_scope_version", "v1.5.0",
				"process_runtime_name", "go",
				"process_runtime_version", "go1.26.8",
				"region", "us-east",
				"service_name", "rides",
			),
		},
	},
	{
		name: "SDK: godeltaprof upload with a kind suffix and an unescaped value",
		in:   "my.app.cpu{__session_id__=77e425ea48b3919f,env=prod,otel.scope.name=com.grafana.pyroscope/godeltaprof,otel.scope.version=v0.1.12,process.runtime.name=go,process.runtime.version=go1.26.8,region=eu-west-1,service.version=1.2.3,weird=a b=c{d}",
		want: Name{
			App:       "my.app",
			Kind:      "cpu",
			SessionID: "77e425ea48b3919f",
			Labels: labels.FromStrings(
				"env", "prod",
				"otel_scope_name", "com.grafana.pyroscope/godeltaprof",
				"otel_scope_version", "v0.1.12",
				"process_runtime_name", "go",
				"process_runtime_version", "go1.26.8",
				"region", "eu-west-1",
				"service_name", "my.app",
				"service_version", "1.2.3",
				"weird", "a b=c{d",
			),
		},
	},
	{
		name: "SDK: slash in the app name, dotted tag",
		in:   "foo.bar/baz{__session_id__=379e926185d2ef87,bar=1,baz=2,otel.scope.name=com.grafana.pyroscope/go,otel.scope.version=v1.5.0,pod.name=p-0,process.runtime.name=go,process.runtime.version=go1.26.8}",
		want: Name{
			App:       "foo.bar/baz",
			SessionID: "379e926185d2ef87",
			Labels: labels.FromStrings(
				"bar", "1",
				"baz", "2",
				"otel_scope_name", "com.grafana.pyroscope/go",
				"otel_scope_version", "v1.5.0",
				"pod_name", "p-0",
				"process_runtime_name", "go",
				"process_runtime_version", "go1.26.8",
				"service_name", "foo.bar/baz",
			),
		},
	},
	{
		name: "app only",
		in:   "myapp",
		want: Name{App: "myapp", Labels: labels.FromStrings("service_name", "myapp")},
	},
	{
		name: "empty braces",
		in:   "myapp{}",
		want: Name{App: "myapp", Labels: labels.FromStrings("service_name", "myapp")},
	},
	{
		name: "old client kind suffix",
		in:   "backend.purchases.alloc_space{env=staging}",
		want: Name{App: "backend.purchases", Kind: "alloc_space", Labels: labels.FromStrings("env", "staging", "service_name", "backend.purchases")},
	},
	{
		name: "unknown suffix stays in the app",
		in:   "backend.purchases",
		want: Name{App: "backend.purchases", Labels: labels.FromStrings("service_name", "backend.purchases")},
	},
	{
		name: "a kind alone is an app",
		in:   "cpu",
		want: Name{App: "cpu", Labels: labels.FromStrings("service_name", "cpu")},
	},
	{
		name: "leading dot keeps the kind in the app",
		in:   ".cpu",
		want: Name{App: ".cpu", Labels: labels.FromStrings("service_name", ".cpu")},
	},
	{
		name: "itimer from async-profiler",
		in:   "java.app.itimer",
		want: Name{App: "java.app", Kind: "itimer", Labels: labels.FromStrings("service_name", "java.app")},
	},
	{
		name: "spaces as the SDK's own test has them",
		in:   " foo { bar = 1 , baz = 2 } ",
		want: Name{App: "foo", Labels: labels.FromStrings("bar", "1", "baz", "2", "service_name", "foo")},
	},
	{
		name: "trailing comma",
		in:   "foo{a=1,}",
		want: Name{App: "foo", Labels: labels.FromStrings("a", "1", "service_name", "foo")},
	},
	{
		name: "last value wins, also after dots become underscores",
		in:   "foo{a=1,a=2,b.c=3,b_c=4}",
		want: Name{App: "foo", Labels: labels.FromStrings("a", "2", "b_c", "4", "service_name", "foo")},
	},
	{
		name: "empty value dropped",
		in:   "foo{a=,b=1}",
		want: Name{App: "foo", Labels: labels.FromStrings("b", "1", "service_name", "foo")},
	},
	{
		name: "OpenTelemetry service.name sets service_name",
		in:   "foo{service.name=checkout}",
		want: Name{App: "foo", Labels: labels.FromStrings("service_name", "checkout")},
	},
	{
		name: "empty service_name is set from the app",
		in:   "foo{service_name=}",
		want: Name{App: "foo", Labels: labels.FromStrings("service_name", "foo")},
	},
	{
		name: "reserved names dropped",
		in:   "foo{__name__=bar,__profile_type__=x,__session_id__=abc,.._x=1,ok=1}",
		want: Name{App: "foo", SessionID: "abc", Labels: labels.FromStrings("ok", "1", "service_name", "foo")},
	},
	{
		name: "leading digit",
		in:   "foo{1st=a,_x=b}",
		want: Name{App: "foo", Labels: labels.FromStrings("_x", "b", "key_1st", "a", "service_name", "foo")},
	},
	{
		name: "unicode value",
		in:   "foo{city=Zürich}",
		want: Name{App: "foo", Labels: labels.FromStrings("city", "Zürich", "service_name", "foo")},
	},
	{name: "empty", in: "", wantErr: "offset 0: empty application name"},
	{name: "only spaces", in: "   ", wantErr: "offset 3: empty application name"},
	{name: "no app before labels", in: "{a=b}", wantErr: "offset 0: empty application name"},
	{name: "space inside the app", in: "my app", wantErr: `offset 2: character ' ' is not allowed in an application name`},
	{name: "close without open", in: "foo}", wantErr: `offset 3: character '}' is not allowed`},
	{name: "unclosed", in: "foo{a=b", wantErr: "offset 3: unclosed '{'"},
	{name: "unclosed after comma", in: "foo{a=b,", wantErr: "offset 3: unclosed '{'"},
	{name: "unclosed in name", in: "foo{a", wantErr: "offset 3: unclosed '{'"},
	{name: "label without value", in: "foo{a}", wantErr: `offset 4: label "a" has no value`},
	{name: "label without value before comma", in: "foo{a,b=c}", wantErr: `offset 4: label "a" has no value`},
	{name: "empty label", in: "foo{a=b,,c=d}", wantErr: "offset 8: empty label"},
	{name: "empty label name", in: "foo{=b}", wantErr: "offset 4: empty label name"},
	{name: "bad label character", in: "foo{a-b=c}", wantErr: `offset 5: character '-' is not allowed in a label name`},
	{name: "brace in label name", in: "foo{a{b=c}", wantErr: `offset 5: character '{' is not allowed in a label name`},
	{name: "text after close", in: "foo{a=b} x", wantErr: "offset 9: unexpected text after '}'"},
	{name: "second label set", in: "foo{a=b}{c=d}", wantErr: "offset 8: unexpected text after '}'"},
	{name: "invalid utf-8 value", in: "foo{a=\xff}", wantErr: `offset 6: value of label "a" is not valid UTF-8`},
	{name: "too many labels", in: "foo{" + strings.Repeat("a=b,", MaxNameLabels) + "z=1}", wantErr: "more than 64 labels"},
}

func TestParseName(t *testing.T) {
	for _, tc := range nameCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseName(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseName(%q): got error %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseName(%q): got error %v, want none", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(labels.Labels.Equal)); diff != "" {
				t.Errorf("ParseName(%q) mismatch (-want +got):\n%s\ngot labels %s", tc.in, diff, got.Labels)
			}
			if err := got.Labels.Validate(); err != nil {
				t.Errorf("ParseName(%q): labels %s: %v", tc.in, got.Labels, err)
			}
		})
	}
}

func TestParseNameError(t *testing.T) {
	in := "foo{a=b} " + strings.Repeat("x", 300)
	_, err := ParseName(in)
	var ne *NameError
	if !errors.As(err, &ne) {
		t.Fatalf("ParseName(%q): got %#v, want a *NameError", in, err)
	}
	if ne.Offset != 9 || ne.Name != in {
		t.Errorf("got offset %d and name of %d bytes, want 9 and %d", ne.Offset, len(ne.Name), len(in))
	}
	if n := len(err.Error()); n > 250 {
		t.Errorf("error message has %d bytes, want the name cut short: %s", n, err)
	}
}

func TestParseNameMaxLabels(t *testing.T) {
	in := "foo{" + strings.Repeat("a=b,", MaxNameLabels-1) + "z=1}"
	if _, err := ParseName(in); err != nil {
		t.Errorf("ParseName with %d labels: got %v, want no error", MaxNameLabels, err)
	}
	in = "foo{" + strings.Repeat("a=b,", MaxNameLabels) + "z=1}"
	if _, err := ParseName(in); !errors.Is(err, ErrLimitExceeded) {
		t.Errorf("ParseName with %d labels: got %v, want an error matching ErrLimitExceeded", MaxNameLabels+1, err)
	}
}
