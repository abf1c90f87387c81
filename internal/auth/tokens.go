// Package auth holds Hearth's bearer tokens: the tokens file (who may
// call, for which tenants, with which scopes), the credentials a request
// carries (Bearer, or basic auth with the token as password), and the
// identity a request resolves to.
//
// A token's secret never leaves this package in an error or a log line:
// tokens are known by their name, and an unknown one by nothing at all.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v2"

	"github.com/hearth-profiler/hearth/internal/tenant"
)

// Scope is a set of permissions. The scopes are independent: admin does
// not imply read or write.
type Scope uint8

// The scopes a token may hold.
const (
	// Read opens the query APIs and the scrape targets.
	Read Scope = 1 << iota
	// Write opens every way in: /ingest, push.v1, OTLP.
	Write
	// Admin opens /-/flush, /-/reload, /debug/pprof and, when protected,
	// /metrics.
	Admin
)

// AllScopes is every scope, as an open server grants.
const AllScopes = Read | Write | Admin

var scopeNames = []struct {
	scope Scope
	name  string
}{{Read, "read"}, {Write, "write"}, {Admin, "admin"}}

// Has reports whether s holds every scope of need.
func (s Scope) Has(need Scope) bool { return s&need == need }

// Names returns the names of s's scopes, in the order read, write, admin.
func (s Scope) Names() []string {
	out := []string{}
	for _, n := range scopeNames {
		if s.Has(n.scope) {
			out = append(out, n.name)
		}
	}
	return out
}

func (s Scope) String() string { return strings.Join(s.Names(), ",") }

// ParseScope returns the scope named name.
func ParseScope(name string) (Scope, error) {
	for _, n := range scopeNames {
		if n.name == name {
			return n.scope, nil
		}
	}
	return 0, fmt.Errorf("unknown scope %q (scopes are read, write and admin)", name)
}

// AnyTenant in a token's tenants lets it name every tenant.
const AnyTenant = "*"

// Token is one entry of the tokens file, without its secret.
type Token struct {
	// Name stands for the token in logs and answers.
	Name string
	// Tenants are the tenants the token may name, as listed; AnyTenant
	// stands for all.
	Tenants []string
	Scopes  Scope

	digest [sha256.Size]byte
}

// AnyTenant reports whether t may name every tenant.
func (t *Token) AnyTenant() bool { return slices.Contains(t.Tenants, AnyTenant) }

// Allows reports whether t may name tenant id.
func (t *Token) Allows(id string) bool { return t.AnyTenant() || slices.Contains(t.Tenants, id) }

// DefaultTenant is the tenant of a request that names none: the first
// listed, or tenant.Default when that is AnyTenant.
func (t *Token) DefaultTenant() string {
	if t.Tenants[0] == AnyTenant {
		return tenant.Default
	}
	return t.Tenants[0]
}

// Tokens is a parsed tokens file. It is not changed after Parse, so it is
// safe for concurrent use.
type Tokens struct {
	list     []*Token
	byDigest map[[sha256.Size]byte]*Token
	hasPlain bool // an entry gives its token in plain
}

// Lookup returns the token whose secret is secret, or nil.
//
// The presented secret is hashed first and only digests are compared: the
// time a lookup takes depends on the digest of what was sent, which a
// caller cannot steer towards a valid token's digest, so timing tells
// nothing about the valid tokens. The final comparison is constant-time
// regardless.
func (ts *Tokens) Lookup(secret string) *Token {
	if ts == nil || secret == "" {
		return nil
	}
	d := sha256.Sum256([]byte(secret))
	t := ts.byDigest[d]
	if t == nil || subtle.ConstantTimeCompare(d[:], t.digest[:]) != 1 {
		return nil
	}
	return t
}

// Names returns the tokens' names, in file order.
func (ts *Tokens) Names() []string {
	out := make([]string, len(ts.list))
	for i, t := range ts.list {
		out[i] = t.Name
	}
	return out
}

// file is the tokens file's schema.
type file struct {
	Tokens []entry `yaml:"tokens"`
}

type entry struct {
	Name        string   `yaml:"name"`
	Token       string   `yaml:"token"`
	TokenSHA256 string   `yaml:"token_sha256"`
	Tenants     []string `yaml:"tenants"`
	Scopes      []string `yaml:"scopes"`
}

// Parse reads a tokens file:
//
//	tokens:
//	  - name: grafana                  # shown in logs instead of the token
//	    token_sha256: 5e88...          # hex SHA-256 of the token; or token: the token itself
//	    tenants: [team-a, team-b]      # the first is the default; "*" is every tenant
//	    scopes: [read]                 # read, write, admin
//
// Unknown fields, duplicate tokens or names, unknown scopes, empty or
// invalid tenants are errors naming the entry and the field. Errors never
// hold a token's secret.
func Parse(data []byte) (*Tokens, error) {
	var f file
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, yamlError(err)
	}
	if len(f.Tokens) == 0 {
		return nil, errors.New("no tokens: the tokens list is empty or missing")
	}
	ts := &Tokens{byDigest: make(map[[sha256.Size]byte]*Token, len(f.Tokens))}
	where := make(map[*Token]string, len(f.Tokens))
	names := make(map[string]string, len(f.Tokens))
	for i, e := range f.Tokens {
		at := fmt.Sprintf("entry %d", i+1)
		t, err := e.token()
		if errors.Is(err, errNameIsToken) {
			return nil, fmt.Errorf("%s: %w", at, err) // without the name
		}
		if e.Name != "" {
			at += fmt.Sprintf(" (name %q)", e.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if prev, ok := names[t.Name]; ok {
			return nil, fmt.Errorf("%s: name: already used by %s; names tell tokens apart in logs", at, prev)
		}
		if prev, ok := ts.byDigest[t.digest]; ok {
			return nil, fmt.Errorf("%s: the same token as %s", at, where[prev])
		}
		ts.hasPlain = ts.hasPlain || e.Token != ""
		names[t.Name] = at
		where[t] = at
		ts.byDigest[t.digest] = t
		ts.list = append(ts.list, t)
	}
	return ts, nil
}

var errNameIsToken = errors.New("name: is the token itself; names are written to logs")

// token validates one entry.
func (e *entry) token() (*Token, error) {
	t := &Token{Name: e.Name}
	if e.Token != "" && e.Name == e.Token {
		return nil, errNameIsToken
	}
	if strings.TrimSpace(e.Name) == "" {
		return nil, errors.New("name: required; it stands for the token in logs")
	}
	switch {
	case e.Token != "" && e.TokenSHA256 != "":
		return nil, errors.New("token and token_sha256: give one, not both")
	case e.Token != "":
		for i := 0; i < len(e.Token); i++ {
			if c := e.Token[i]; c <= ' ' || c > '~' {
				// The position, not the character: it is part of a secret.
				return nil, fmt.Errorf("token: character %d is not printable ASCII (spaces and control characters cannot be sent in a header)", i+1)
			}
		}
		t.digest = sha256.Sum256([]byte(e.Token))
	case e.TokenSHA256 != "":
		b, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, errors.New("token_sha256: not 64 hexadecimal digits (make one with: printf %s TOKEN | sha256sum)")
		}
		copy(t.digest[:], b)
	default:
		return nil, errors.New("token or token_sha256: one is required")
	}
	if sha256.Sum256([]byte(e.Name)) == t.digest {
		return nil, errNameIsToken
	}
	if len(e.Tenants) == 0 {
		return nil, fmt.Errorf("tenants: empty; list the tenants the token may use, or %q for every tenant", AnyTenant)
	}
	for _, id := range e.Tenants {
		if id == "" {
			return nil, errors.New("tenants: an empty tenant ID")
		}
		if id != AnyTenant {
			if _, err := tenant.Check(id); err != nil {
				return nil, fmt.Errorf("tenants: %q is not a valid tenant ID (at most 150 bytes, no slashes or NUL, not . or ..)", id)
			}
		}
		if slices.Contains(t.Tenants, id) {
			return nil, fmt.Errorf("tenants: %q listed twice", id)
		}
		t.Tenants = append(t.Tenants, id)
	}
	if len(e.Scopes) == 0 {
		return nil, errors.New("scopes: empty; list some of read, write and admin")
	}
	for _, name := range e.Scopes {
		s, err := ParseScope(name)
		if err != nil {
			return nil, fmt.Errorf("scopes: %w", err)
		}
		if t.Scopes.Has(s) {
			return nil, fmt.Errorf("scopes: %q listed twice", name)
		}
		t.Scopes |= s
	}
	return t, nil
}

var (
	yamlUnknownField = regexp.MustCompile(`field (\S+) not found`)
	yamlFieldTwice   = regexp.MustCompile(`field (\S+) already set`)
	// yaml quotes the value it could not decode; in this file that value
	// may be a secret.
	yamlQuotedValue = regexp.MustCompile("`[^`]*` ")
	yamlTypeNames   = strings.NewReplacer("in type auth.file", "at the top level", "in type auth.entry", "in a token entry",
		"[]auth.entry", "a list of token entries", "auth.entry", "a token entry")
)

// yamlError words a yaml error for a user, with its line, and without the
// values yaml quotes.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("parse tokens: %w", err)
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		m = yamlUnknownField.ReplaceAllString(m, `unknown field "$1"`)
		m = yamlFieldTwice.ReplaceAllString(m, `field "$1" set twice`)
		m = yamlQuotedValue.ReplaceAllString(m, "")
		msgs[i] = yamlTypeNames.Replace(m)
	}
	return fmt.Errorf("parse tokens: %s", strings.Join(msgs, "; "))
}
