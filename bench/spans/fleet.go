package spans

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// The fleet is what the traffic runs on: services, their pods (each one
// OTLP resource) and their routes, drawn once from the seed. Every batch
// draws requests from the same fleet.

// serviceNames are the 50 services, grouped by the Kubernetes namespace
// they run in (namespaces below).
var serviceNames = [...]string{
	"storefront", "checkout", "cart", "catalog", "pricing", "search", "recommendations", "reviews", "wishlist", "promotions",
	"payments", "refunds", "invoicing", "ledger", "fraud", "payouts", "tax", "currency", "billing", "disputes",
	"identity", "sessions", "accounts", "profiles", "consent", "tokens", "devices", "notifications", "email", "sms",
	"inventory", "warehouse", "fulfillment", "shipping", "carriers", "returns", "tracking", "labels", "pickups", "routing",
	"gateway", "images", "feeds", "exports", "reports", "audit", "support", "merchants", "stores", "scheduler",
}

var namespaces = [...]string{"shop", "payments", "identity", "logistics", "platform"}

// nouns name the resources of the routes; service k owns nouns 2k and 2k+1.
var nouns = [...]string{
	"pages", "banners", "checkouts", "orders", "carts", "items", "products", "categories", "prices", "quotes",
	"queries", "suggestions", "recommendations", "similar", "reviews", "ratings", "wishlists", "saved", "promotions", "coupons",
	"payments", "methods", "refunds", "credits", "invoices", "receipts", "entries", "balances", "checks", "scores",
	"payouts", "transfers", "rates", "exemptions", "currencies", "conversions", "subscriptions", "plans", "disputes", "evidence",
	"users", "logins", "sessions", "refresh", "accounts", "settings", "profiles", "avatars", "consents", "preferences",
	"tokens", "keys", "devices", "pushes", "notifications", "channels", "emails", "templates", "messages", "numbers",
	"stock", "reservations", "warehouses", "bins", "shipments", "parcels", "quotes", "zones", "carriers", "services",
	"returns", "claims", "events", "positions", "labels", "manifests", "pickups", "slots", "routes", "stops",
	"proxies", "health", "images", "thumbnails", "feeds", "entries", "exports", "jobs", "reports", "dashboards",
	"audits", "trails", "tickets", "replies", "merchants", "contracts", "stores", "hours", "schedules", "runs",
}

var subResources = [...]string{"items", "history", "status", "lines", "summary", "events"}

// Regions: every service runs pods in the first five; each also has one
// small pod in the last, eu-west-3, which serves SmallRegionShare of the
// service's requests.
var regions = [...]string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "eu-west-3"}

// SmallRegion is the region that serves a small share of every service's
// requests: the default slow minority.
const SmallRegion = "eu-west-3"

// SmallRegionShare is the share of each service's requests that its pod in
// SmallRegion serves.
const SmallRegionShare = 0.02

// customerTiers are app.customer.tier's values with their shares of the
// requests.
var customerTiers = [...]struct {
	name  string
	share float64
}{{"free", 0.55}, {"pro", 0.30}, {"business", 0.13}, {"enterprise", 0.02}}

var userAgents = [...]string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Mobile Safari/537.36",
	"ShopApp/4.12.0 (iPhone; iOS 17.5; Scale/3.00)",
	"ShopApp/4.11.2 (Android 14; Pixel 8)",
	"okhttp/4.12.0",
	"Go-http-client/1.1",
	"python-requests/2.32.3",
	"curl/8.9.1",
	"grpc-gateway/2.20.0",
}

// kv is one attribute.
type kv struct {
	key   string
	str   string
	num   int64
	isInt bool
}

func str(k, v string) kv       { return kv{key: k, str: v} }
func num(k string, v int64) kv { return kv{key: k, num: v, isInt: true} }

// pod is one OTLP resource: one process of a service.
type pod struct {
	attrs  []kv // resource attributes, in the order sent
	region string
}

// callKind is what a client span calls.
type callKind int

const (
	callSQL callKind = iota
	callRedis
	callHTTP
)

// call is one client span a route's requests make, in order.
type call struct {
	kind  callKind
	name  string // span name
	attrs []kv   // its attributes but the per-request ones
	// For callHTTP: the route called, for url.full and the status code.
	target *route
	scope  int // index in scopes
}

// route is one HTTP route of a service.
type route struct {
	service  int
	method   string
	template string  // http.route
	name     string  // span name: method and route
	idKind   int     // what {id} is: 0 none, 1 an order, 2 a user, 3 another number
	median   float64 // of the server span's duration, in nanoseconds
	sigma    float64
	errRate  float64
	calls    []call
	host     string // server.address
	bodyMean float64
}

// service is one of the fleet's services.
type service struct {
	name      string
	namespace string
	pods      []pod
	podCum    []float64 // cumulative pod weights
	routes    []*route
	routeCum  []float64
	db        string // db.system.name of its database
	dbHost    string
	cacheHost string
}

type fleet struct {
	services   []*service
	serviceCum []float64
	routes     int
}

// scopes are the instrumentation scopes spans are grouped under, as the
// OpenTelemetry SDK groups them.
var scopes = [...]struct{ name, version string }{
	{"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.63.0"},
	{"github.com/exaring/otelpgx", "0.9.3"},
	{"github.com/redis/go-redis/extra/redisotel/v9", "9.7.0"},
}

const (
	scopeHTTP = iota
	scopeSQL
	scopeRedis
)

// newFleet draws the fleet from seed.
func newFleet(seed uint64, errorRate float64) *fleet {
	rng := rand.New(rand.NewPCG(seed, 0xf1ee7))
	f := &fleet{}
	var sum float64
	for k, name := range serviceNames {
		s := &service{name: name, namespace: namespaces[k/10]}
		s.db = []string{"postgresql", "postgresql", "postgresql", "mysql", "mongodb"}[rng.IntN(5)]
		s.dbHost = fmt.Sprintf("%s-db.%s.svc.cluster.local", name, s.namespace)
		s.cacheHost = fmt.Sprintf("%s-cache.%s.svc.cluster.local", name, s.namespace)
		s.pods = newPods(rng, k, s)
		for i := range s.pods {
			w := (1 - SmallRegionShare) / float64(len(s.pods)-1)
			if s.pods[i].region == SmallRegion {
				w = SmallRegionShare
			}
			s.podCum = append(s.podCum, cumAdd(s.podCum, w))
		}
		f.services = append(f.services, s)
		// Some services are busier: weights fall as a Zipf law of a
		// random rank, from 1 to about 1/20.
		sum += 1 / math.Pow(float64(1+rng.IntN(50)), 0.8)
		f.serviceCum = append(f.serviceCum, sum)
	}
	// Routes come second, so that an HTTP call can name any service's.
	for k, s := range f.services {
		s.routes = newRoutes(rng, k, s, errorRate)
		f.routes += len(s.routes)
	}
	for k, s := range f.services {
		for _, r := range s.routes {
			r.calls = newCalls(rng, f, k, r)
		}
		var rs float64
		for i := range s.routes {
			rs += 1 / math.Pow(float64(i+1), 1.1)
			s.routeCum = append(s.routeCum, rs)
		}
	}
	return f
}

func cumAdd(cum []float64, w float64) float64 {
	if len(cum) == 0 {
		return w
	}
	return cum[len(cum)-1] + w
}

// pick returns the index that u (in [0,1)) falls on in cumulative weights.
func pick(cum []float64, u float64) int {
	i, _ := slices.BinarySearch(cum, u*cum[len(cum)-1])
	return min(i, len(cum)-1)
}

const hexDigits = "0123456789abcdef"

func randHex(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[rng.IntN(16)]
	}
	return string(b)
}

// newPods makes a service's pods: five in the big regions, one in
// SmallRegion. The newest pod of a service runs the next version, as
// during a rollout.
func newPods(rng *rand.Rand, k int, s *service) []pod {
	major, minor, patch := 1+rng.IntN(3), rng.IntN(30), rng.IntN(10)
	rs := randHex(rng, 10)
	var pods []pod
	for i := range 6 {
		region := regions[i]
		version := fmt.Sprintf("%d.%d.%d", major, minor, patch)
		if i == 4 {
			version = fmt.Sprintf("%d.%d.%d", major, minor, patch+1)
		}
		podName := fmt.Sprintf("%s-%s-%s", s.name, rs, randAlnum(rng, 5))
		host := fmt.Sprintf("ip-10-%d-%d-%d.%s.compute.internal", rng.IntN(256), rng.IntN(256), rng.IntN(256), region)
		pods = append(pods, pod{region: region, attrs: []kv{
			str("service.name", s.name),
			str("service.namespace", s.namespace),
			str("service.version", version),
			str("service.instance.id", fmt.Sprintf("%s-%s-%s-%s-%s", randHex(rng, 8), randHex(rng, 4), randHex(rng, 4), randHex(rng, 4), randHex(rng, 12))),
			str("host.name", host),
			str("k8s.pod.name", podName),
			str("k8s.namespace.name", s.namespace),
			str("k8s.deployment.name", s.name),
			str("deployment.environment.name", "production"),
			str("cloud.provider", "aws"),
			str("cloud.region", region),
			str("telemetry.sdk.name", "opentelemetry"),
			str("telemetry.sdk.language", "go"),
			str("telemetry.sdk.version", "1.38.0"),
		}})
	}
	return pods
}

func randAlnum(rng *rand.Rand, n int) string {
	const alnum = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rng.IntN(len(alnum))]
	}
	return string(b)
}

// newRoutes makes 3 to 11 routes over the service's two nouns (about 7 on
// average: some 350 routes in all).
func newRoutes(rng *rand.Rand, k int, s *service, errorRate float64) []*route {
	type shape struct {
		method, tmpl string
		id           bool
	}
	var all []shape
	for _, noun := range []string{nouns[2*k], nouns[2*k+1]} {
		base := "/api/v1/" + noun
		sub := subResources[rng.IntN(len(subResources))]
		all = append(all,
			shape{"GET", base, false},
			shape{"GET", base + "/{id}", true},
			shape{"POST", base, false},
			shape{"PUT", base + "/{id}", true},
			shape{"DELETE", base + "/{id}", true},
			shape{"GET", base + "/{id}/" + sub, true},
		)
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	n := 3 + rng.IntN(9)
	host := fmt.Sprintf("%s.%s.svc.cluster.local", s.name, s.namespace)
	idKind := 3
	switch {
	case strings.Contains(s.name, "order") || s.name == "checkout" || s.name == "cart" || s.name == "fulfillment":
		idKind = 1
	case s.namespace == "identity":
		idKind = 2
	}
	var out []*route
	for _, sh := range all[:n] {
		r := &route{
			service:  k,
			method:   sh.method,
			template: sh.tmpl,
			name:     sh.method + " " + sh.tmpl,
			host:     host,
			// Medians from 4 ms to 250 ms, uniform in log scale.
			median: 4e6 * math.Exp(rng.Float64()*math.Log(250.0/4)),
			sigma:  0.35 + 0.45*rng.Float64(),
			// Some routes fail more than others: the rate is errorRate
			// times a log-normal factor of mean 1.
			errRate: min(0.5, errorRate*math.Exp(rng.NormFloat64()-0.5)),
		}
		if sh.id {
			r.idKind = idKind
		}
		if sh.method == "POST" || sh.method == "PUT" {
			r.bodyMean = 300 + 1500*rng.Float64()
		}
		out = append(out, r)
	}
	return out
}

// newCalls draws the client spans of a route: 1 to 4 of a cache read, SQL
// statements on the service's database, and HTTP calls to routes of other
// services.
func newCalls(rng *rand.Rand, f *fleet, k int, r *route) []call {
	s := f.services[k]
	n := 1 + rng.IntN(4)
	table := strings.TrimSuffix(strings.TrimPrefix(r.template, "/api/v1/"), "/{id}")
	table, _, _ = strings.Cut(table, "/")
	var calls []call
	for i := range n {
		switch {
		case i == 0 && r.method == "GET" && rng.IntN(3) == 0:
			op := "GET"
			calls = append(calls, call{kind: callRedis, name: op, scope: scopeRedis, attrs: []kv{
				str("db.system.name", "redis"),
				str("db.operation.name", op),
				str("db.namespace", "0"),
				str("server.address", s.cacheHost),
				num("server.port", 6379),
			}})
		case rng.IntN(3) == 0:
			// A call to another service's route.
			t := f.services[rng.IntN(len(f.services))]
			if t == s {
				t = f.services[(k+1)%len(f.services)]
			}
			tr := t.routes[rng.IntN(len(t.routes))]
			calls = append(calls, call{kind: callHTTP, name: tr.method, scope: scopeHTTP, target: tr, attrs: []kv{
				str("http.request.method", tr.method),
				str("server.address", tr.host),
				num("server.port", 8080),
				str("network.protocol.version", "1.1"),
			}})
		default:
			op := map[string]string{"GET": "SELECT", "POST": "INSERT", "PUT": "UPDATE", "DELETE": "DELETE"}[r.method]
			if i > 0 && rng.IntN(2) == 0 {
				op = "SELECT"
			}
			port := int64(5432)
			switch s.db {
			case "mysql":
				port = 3306
			case "mongodb":
				port = 27017
			}
			calls = append(calls, call{kind: callSQL, name: op + " " + table, scope: scopeSQL, attrs: []kv{
				str("db.system.name", s.db),
				str("db.namespace", s.name),
				str("db.operation.name", op),
				str("db.collection.name", table),
				str("db.query.summary", op+" "+table),
				str("server.address", s.dbHost),
				num("server.port", port),
			}})
		}
	}
	return calls
}
