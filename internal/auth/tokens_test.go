package auth

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/tenant"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

func readTestTokens(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(testfiles.Path(t, "internal/auth/testdata/tokens.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParse(t *testing.T) {
	ts, err := Parse(readTestTokens(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ts.Names(), []string{"grafana", "ci", "ops"}; !slices.Equal(got, want) {
		t.Errorf("names = %v; want %v", got, want)
	}
	for _, c := range []struct {
		secret, name string
		tenants      []string
		scopes       Scope
		defTenant    string
	}{
		// token_sha256: the file holds only the digest of this secret.
		{"team-a-reader-secret", "grafana", []string{"team-a"}, Read, "team-a"},
		{"ci-writer-secret", "ci", []string{"team-a", "team-b"}, Write, "team-a"},
		{"ops-admin-secret", "ops", []string{"*"}, Read | Write | Admin, tenant.Default},
	} {
		tok := ts.Lookup(c.secret)
		if tok == nil {
			t.Errorf("Lookup(secret of %s) = nil", c.name)
			continue
		}
		if tok.Name != c.name || !slices.Equal(tok.Tenants, c.tenants) || tok.Scopes != c.scopes || tok.DefaultTenant() != c.defTenant {
			t.Errorf("Lookup(secret of %s) = %+v, default %q; want %v %v default %q", c.name, tok, tok.DefaultTenant(), c.tenants, c.scopes, c.defTenant)
		}
	}
	for _, s := range []string{"", "team-a-reader-secre", "team-a-reader-secret ", "fdd60cb75c9a4e278afccfbec727e32bfcc61d640693e7f87fed94b7c5f15dbd", "grafana", "ci"} {
		if tok := ts.Lookup(s); tok != nil {
			t.Errorf("Lookup(%q) = %s; want nil", s, tok.Name)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const secret = "s3cret-token-value"
	entry := func(fields string) string {
		return "tokens:\n  - name: ok\n    token: other-token\n    tenants: [a]\n    scopes: [read]\n  - " + fields + "\n"
	}
	for _, c := range []struct {
		name, file string
		want       []string // every one in the error
	}{
		{"empty file", "", []string{"no tokens"}},
		{"no entries", "tokens: []\n", []string{"no tokens"}},
		{"not yaml", "tokens: [\n", []string{"parse tokens"}},
		{"top-level unknown field", "tokenz: []\n", []string{`unknown field "tokenz"`, "top level"}},
		{"entry unknown field", entry("name: b\n    tokne: " + secret + "\n    tenants: [a]\n    scopes: [read]"),
			[]string{`unknown field "tokne"`, "token entry", "line 7"}},
		{"field twice", entry("name: b\n    token: x1\n    token: " + secret + "\n    tenants: [a]\n    scopes: [read]"),
			[]string{`field "token" set twice`}},
		{"token of the wrong type", entry("name: b\n    token: {v: " + secret + "}\n    tenants: [a]\n    scopes: [read]"),
			[]string{"line 7", "cannot unmarshal"}},
		{"tenants of the wrong type", entry("name: b\n    token: " + secret + "\n    tenants: {a: " + secret + "}\n    scopes: [read]"),
			[]string{"cannot unmarshal"}},
		{"no name", entry("token: " + secret + "\n    tenants: [a]\n    scopes: [read]"), []string{"entry 2", "name: required"}},
		{"duplicate name", entry("name: ok\n    token: " + secret + "\n    tenants: [a]\n    scopes: [read]"),
			[]string{`entry 2 (name "ok")`, "name: already used by entry 1"}},
		{"no token", entry("name: b\n    tenants: [a]\n    scopes: [read]"), []string{`entry 2 (name "b")`, "token or token_sha256"}},
		{"both token fields", entry("name: b\n    token: " + secret + "\n    token_sha256: " + strings.Repeat("ab", 32) + "\n    tenants: [a]\n    scopes: [read]"),
			[]string{`entry 2 (name "b")`, "give one, not both"}},
		{"token with a space", entry("name: b\n    token: 's3cret token'\n    tenants: [a]\n    scopes: [read]"),
			[]string{`entry 2 (name "b")`, "token: character 7"}},
		{"short digest", entry("name: b\n    token_sha256: abcd\n    tenants: [a]\n    scopes: [read]"), []string{"token_sha256: not 64 hexadecimal digits"}},
		{"digest not hex", entry("name: b\n    token_sha256: " + strings.Repeat("zz", 32) + "\n    tenants: [a]\n    scopes: [read]"), []string{"token_sha256: not 64"}},
		{"duplicate token", entry("name: b\n    token: other-token\n    tenants: [a]\n    scopes: [read]"),
			[]string{`entry 2 (name "b")`, `the same token as entry 1 (name "ok")`}},
		{"duplicate token, plain and hashed", "tokens:\n  - {name: a, token: team-a-reader-secret, tenants: [x], scopes: [read]}\n" +
			"  - {name: b, token_sha256: FDD60CB75C9A4E278AFCCFBEC727E32BFCC61D640693E7F87FED94B7C5F15DBD, tenants: [x], scopes: [read]}\n",
			[]string{`entry 2 (name "b")`, `the same token as entry 1`}},
		{"name is the token", entry("name: " + secret + "x\n    token: " + secret + "x\n    tenants: [a]\n    scopes: [read]"), []string{"name: is the token itself"}},
		{"name is a bad token", entry("name: 's3cret token'\n    token: 's3cret token'\n    tenants: [a]\n    scopes: [read]"), []string{"entry 2: name: is the token itself"}},
		{"no tenants", entry("name: b\n    token: " + secret + "\n    scopes: [read]"), []string{`entry 2 (name "b")`, "tenants: empty"}},
		{"empty tenant", entry("name: b\n    token: " + secret + "\n    tenants: ['']\n    scopes: [read]"), []string{"tenants: an empty tenant ID"}},
		{"invalid tenant", entry("name: b\n    token: " + secret + "\n    tenants: [a/b]\n    scopes: [read]"), []string{`entry 2 (name "b")`, `tenants: "a/b" is not a valid tenant ID`}},
		{"tenant twice", entry("name: b\n    token: " + secret + "\n    tenants: [a, a]\n    scopes: [read]"), []string{`tenants: "a" listed twice`}},
		{"no scopes", entry("name: b\n    token: " + secret + "\n    tenants: [a]"), []string{`entry 2 (name "b")`, "scopes: empty"}},
		{"unknown scope", entry("name: b\n    token: " + secret + "\n    tenants: [a]\n    scopes: [read, delete]"), []string{`entry 2 (name "b")`, `scopes: unknown scope "delete"`}},
		{"scope twice", entry("name: b\n    token: " + secret + "\n    tenants: [a]\n    scopes: [write, write]"), []string{`scopes: "write" listed twice`}},
	} {
		_, err := Parse([]byte(c.file))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cret token") {
			t.Errorf("%s: error %q holds the token", c.name, err)
		}
	}
}

func TestScopeNames(t *testing.T) {
	if got := (Admin | Read).Names(); !slices.Equal(got, []string{"read", "admin"}) {
		t.Errorf("names = %v", got)
	}
	if Admin.Has(Read) || Admin.Has(Write) || !AllScopes.Has(Read|Admin) {
		t.Error("scopes are not independent")
	}
}

// TestReadmeExample parses the tokens file the README shows, so that the
// example a user copies loads.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(testfiles.Path(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "cat > tokens.yaml <<'EOF'\n")
	if !ok {
		t.Fatal("the README has no tokens.yaml example")
	}
	example, _, ok := strings.Cut(rest, "\nEOF\n")
	if !ok {
		t.Fatal("the README's tokens.yaml example does not end")
	}
	ts, err := Parse([]byte(example))
	if err != nil {
		t.Fatalf("the README's tokens.yaml: %v", err)
	}
	if got, want := ts.Names(), []string{"grafana", "ci", "ops"}; !slices.Equal(got, want) {
		t.Errorf("names = %v; want %v", got, want)
	}
}
