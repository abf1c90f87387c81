// Package tenant names the tenant a request belongs to: the
// X-Scope-OrgID header (HTTP) or metadata key (gRPC), as Pyroscope, Loki and
// Tempo read it.
package tenant

import (
	"fmt"
	"net/http"
	"strings"
)

// Header selects the tenant of a request; gRPC metadata uses its lower-case
// form.
const Header = "X-Scope-OrgID"

// Default is the tenant of requests that name none.
const Default = "anonymous"

// Check returns id, or Default when id is empty, and refuses IDs that could
// not be a directory name.
func Check(id string) (string, error) {
	if id == "" {
		return Default, nil
	}
	if len(id) > 150 || strings.ContainsAny(id, "/\\\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("invalid tenant ID %q in %s", id, Header)
	}
	return id, nil
}

// FromHTTP returns the tenant of an HTTP request.
func FromHTTP(r *http.Request) (string, error) { return Check(r.Header.Get(Header)) }
