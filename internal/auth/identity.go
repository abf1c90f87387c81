package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/hearth-profiler/hearth/internal/tenant"
)

// ErrTenantDenied is wrapped by the errors of Resolve for a tenant the
// token may not use.
var ErrTenantDenied = errors.New("tenant not allowed")

// Resolve returns the tenant a request of t acts on: the one the request
// names (in the tenant header, or as the basic auth user; both must agree),
// else t's default. Naming a tenant outside t's is an error wrapping
// ErrTenantDenied; an invalid tenant ID is another error.
func (t *Token) Resolve(header, user string) (string, error) {
	if header != "" && user != "" && header != user {
		return "", fmt.Errorf("%w: basic auth user %q and %s %q name different tenants", ErrTenantDenied, user, tenant.Header, header)
	}
	id, from := header, tenant.Header
	if id == "" {
		id, from = user, "the basic auth user"
	}
	if id == "" {
		return t.DefaultTenant(), nil
	}
	if _, err := tenant.Check(id); err != nil {
		return "", err
	}
	if !t.Allows(id) {
		return "", fmt.Errorf("%w: token %q may not use tenant %q (named by %s)", ErrTenantDenied, t.Name, id, from)
	}
	return id, nil
}

// Identity is who a request acts as, once authenticated.
type Identity struct {
	// Token is nil when authentication is off.
	Token *Token
	// Tenant is the tenant the request acts on.
	Tenant string
}

// Scopes are the identity's scopes: every scope when authentication is
// off.
func (id *Identity) Scopes() Scope {
	if id.Token == nil {
		return AllScopes
	}
	return id.Token.Scopes
}

// SeesAllTenants reports whether the identity may see every tenant's
// shared state (scrape targets): when authentication is off, or its token
// names every tenant or holds the admin scope.
func (id *Identity) SeesAllTenants() bool {
	return id.Token == nil || id.Token.AnyTenant() || id.Token.Scopes.Has(Admin)
}

type contextKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the identity NewContext put in ctx, if any.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(*Identity)
	return id, ok
}
