package spans

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ServiceInfo describes one service of the fleet, as the workload draws
// its requests: for benchmarks that make more data about the same
// requests (profiles of the services that served them) and must know
// what to expect.
type ServiceInfo struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Share is the service's share of the workload's requests: 0 for a
	// service outside Config.Services.
	Share  float64     `json:"share"`
	Routes []RouteInfo `json:"routes"`
}

// RouteInfo describes one route of a service.
type RouteInfo struct {
	Method   string `json:"method"`
	Template string `json:"template"` // http.route
	// Share is the route's share of its service's requests.
	Share float64 `json:"share"`
	// Median and Sigma give the log-normal duration of the server span
	// (before the slow minority's factor).
	Median time.Duration `json:"median"`
	Sigma  float64       `json:"sigma"`
}

// ServiceInfo lists the fleet's services in the order of the fleet.
func (w *Workload) ServiceInfo() []ServiceInfo {
	f := w.fleet
	total := w.serviceCum[len(w.serviceCum)-1]
	out := make([]ServiceInfo, len(f.services))
	for k, s := range f.services {
		si := ServiceInfo{Name: s.name, Namespace: s.namespace}
		if i := slices.Index(w.serviceIdx, k); i >= 0 {
			si.Share = (w.serviceCum[i] - cumBefore(w.serviceCum, i)) / total
		}
		rtotal := s.routeCum[len(s.routeCum)-1]
		for j, r := range s.routes {
			si.Routes = append(si.Routes, RouteInfo{Method: r.method, Template: r.template,
				Share: (s.routeCum[j] - cumBefore(s.routeCum, j)) / rtotal, Median: time.Duration(r.median), Sigma: r.sigma})
		}
		out[k] = si
	}
	return out
}

func cumBefore(cum []float64, i int) float64 {
	if i == 0 {
		return 0
	}
	return cum[i-1]
}

// ServiceNames are the fleet's 50 service names, in its order.
func ServiceNames() []string { return slices.Clone(serviceNames[:]) }

// pickServices sets the services requests are drawn among: those of
// cfg.Services, or every one, with the fleet's weights.
func (w *Workload) pickServices() error {
	f := w.fleet
	if len(w.cfg.Services) == 0 {
		for k := range f.services {
			w.serviceIdx = append(w.serviceIdx, k)
		}
		w.serviceCum = f.serviceCum
		return nil
	}
	for _, name := range w.cfg.Services {
		k := slices.Index(serviceNames[:], name)
		if k < 0 {
			return fmt.Errorf("service %q: not in the fleet; its services are %s", name, strings.Join(serviceNames[:], ", "))
		}
		if slices.Contains(w.serviceIdx, k) {
			return fmt.Errorf("service %q named twice", name)
		}
		w.serviceIdx = append(w.serviceIdx, k)
		w.serviceCum = append(w.serviceCum, cumAdd(w.serviceCum, f.serviceCum[k]-cumBefore(f.serviceCum, k)))
	}
	return nil
}

// pickService draws a request's service from u in [0,1).
func (w *Workload) pickService(u float64) int {
	return w.serviceIdx[pick(w.serviceCum, u)]
}
