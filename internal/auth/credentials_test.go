package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct {
		values  []string
		want    Credentials
		wantErr string
	}{
		{nil, Credentials{}, "no credentials"},
		{[]string{"Bearer abc"}, Credentials{Token: "abc"}, ""},
		{[]string{"bearer  abc "}, Credentials{Token: "abc"}, ""},
		{[]string{"Bearer"}, Credentials{}, "without a token"},
		{[]string{basic("team-a:tok:with:colons")}, Credentials{Token: "tok:with:colons", User: "team-a"}, ""},
		{[]string{basic(":tok")}, Credentials{Token: "tok"}, ""},
		{[]string{basic("team-a:")}, Credentials{}, "without a password"},
		{[]string{basic("team-a")}, Credentials{}, "without a password"},
		{[]string{"Basic !!!"}, Credentials{}, "not base64"},
		{[]string{"the-bare-token"}, Credentials{}, "neither Bearer nor Basic"},
		{[]string{"Token the-bare-token"}, Credentials{}, "neither Bearer nor Basic"},
		{[]string{"Bearer a", "Bearer b"}, Credentials{}, "more than one"},
	} {
		got, err := ParseAuthorization(c.values)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseAuthorization(%q) error = %v; want %q", c.values, err, c.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "the-bare-token") {
				t.Errorf("ParseAuthorization(%q) error %q holds the token", c.values, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseAuthorization(%q) = %+v, %v; want %+v", c.values, got, err, c.want)
		}
	}
}

func TestResolve(t *testing.T) {
	two := &Token{Name: "two", Tenants: []string{"team-a", "team-b"}, Scopes: Read}
	any := &Token{Name: "any", Tenants: []string{"*"}, Scopes: Read}
	for _, c := range []struct {
		tok          *Token
		header, user string
		want         string
		denied, bad  bool
	}{
		{tok: two, want: "team-a"},
		{tok: two, header: "team-b", want: "team-b"},
		{tok: two, user: "team-b", want: "team-b"},
		{tok: two, header: "team-b", user: "team-b", want: "team-b"},
		{tok: two, header: "team-a", user: "team-b", denied: true},
		{tok: two, header: "team-c", denied: true},
		{tok: two, user: "team-c", denied: true},
		{tok: two, header: "a/b", bad: true},
		{tok: any, want: "anonymous"},
		{tok: any, header: "team-z", want: "team-z"},
		{tok: any, user: "team-z", want: "team-z"},
		{tok: any, header: "..", bad: true},
	} {
		got, err := c.tok.Resolve(c.header, c.user)
		switch {
		case c.denied:
			if !errors.Is(err, ErrTenantDenied) {
				t.Errorf("%s.Resolve(%q, %q) = %q, %v; want denied", c.tok.Name, c.header, c.user, got, err)
			}
		case c.bad:
			if err == nil || errors.Is(err, ErrTenantDenied) {
				t.Errorf("%s.Resolve(%q, %q) = %q, %v; want an invalid-ID error", c.tok.Name, c.header, c.user, got, err)
			}
		case err != nil || got != c.want:
			t.Errorf("%s.Resolve(%q, %q) = %q, %v; want %q", c.tok.Name, c.header, c.user, got, err, c.want)
		}
	}
}
