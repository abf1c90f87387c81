package auth

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Credentials are what a request presents: a token, and for basic auth
// the user name, which picks the tenant (Grafana's data sources send the
// tenant as user and the token as password).
type Credentials struct {
	Token string
	User  string
}

// ErrNoCredentials is the error of a request without an Authorization
// header.
var ErrNoCredentials = errors.New("no credentials: send Authorization: Bearer TOKEN, or basic auth with the token as password")

// ParseAuthorization reads the values of the Authorization header (HTTP)
// or the authorization metadata key (gRPC): "Bearer TOKEN", or "Basic
// base64(user:token)". Its errors never hold any part of a value.
func ParseAuthorization(values []string) (Credentials, error) {
	switch len(values) {
	case 0:
		return Credentials{}, ErrNoCredentials
	case 1:
	default:
		return Credentials{}, errors.New("more than one Authorization header")
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if rest == "" {
			return Credentials{}, errors.New("bearer authorization without a token")
		}
		return Credentials{Token: rest}, nil
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Credentials{}, errors.New("basic auth credentials are not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || pass == "" {
			return Credentials{}, errors.New("basic auth without a password; the password is the token")
		}
		return Credentials{Token: pass, User: user}, nil
	}
	// The scheme is not named: a client that sends the bare token would
	// see it echoed.
	return Credentials{}, errors.New("the Authorization header is neither Bearer nor Basic")
}
