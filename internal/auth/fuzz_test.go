package auth

import (
	"encoding/base64"
	"os"
	"testing"

	yaml "go.yaml.in/yaml/v2"

	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// FuzzParse: Parse never panics, and what it accepts keeps its promises:
// every token has a name, tenants and scopes, and a plain token given in
// the file is found by Lookup.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(testfiles.Path(f, "internal/auth/testdata/tokens.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("tokens:\n  - {name: a, token: x, tenants: ['*'], scopes: [admin]}\n"))
	f.Add([]byte("tokens:\n  - {name: a, token: x, tenants: [a], scopes: [read]}\n  - {name: b, token: x, tenants: [a], scopes: [read]}\n"))
	f.Add([]byte("tokens:\n  - name: a\n    tokne: x\n"))
	f.Add([]byte("tokens: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := Parse(data)
		if err != nil {
			return
		}
		if len(ts.list) == 0 {
			t.Fatal("no error and no tokens")
		}
		for _, tok := range ts.list {
			if tok.Name == "" || len(tok.Tenants) == 0 || tok.Scopes == 0 || tok.Scopes&^AllScopes != 0 {
				t.Fatalf("accepted an incomplete token: %+v", tok)
			}
			if tok.DefaultTenant() == "" {
				t.Fatalf("token %q has no default tenant", tok.Name)
			}
		}
		// Plain tokens as the file has them are found, under their name.
		var f file
		_ = yaml.UnmarshalStrict(data, &f)
		for _, e := range f.Tokens {
			if e.Token == "" {
				continue
			}
			if tok := ts.Lookup(e.Token); tok == nil || tok.Name != e.Name {
				t.Fatalf("Lookup of entry %q's token = %v", e.Name, tok)
			}
		}
	})
}

// FuzzParseAuthorization: no panic, and no error depends on the value
// beyond its kind: each is one of the errors of a few fixed values, so none
// can carry a part of a token.
func FuzzParseAuthorization(f *testing.F) {
	known := map[string]bool{}
	for _, v := range []string{"Bearer", "Basic !", "Basic " + base64.StdEncoding.EncodeToString([]byte("u")), "x"} {
		_, err := ParseAuthorization([]string{v})
		known[err.Error()] = true
	}
	f.Add("Bearer abcdef")
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("team-a:abcdef")))
	f.Add("abcdef")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseAuthorization([]string{v})
		if err != nil {
			if !known[err.Error()] {
				t.Fatalf("%q: error %q is not one of the fixed errors", v, err)
			}
			return
		}
		if c.Token == "" {
			t.Fatalf("%q: no error and no token", v)
		}
	})
}
