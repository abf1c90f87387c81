package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetrics checks /metrics against what was done to a fresh server: one
// profile stored, one refused, a flush into a block, and the requests
// themselves by route and status.
func TestMetrics(t *testing.T) {
	ts := newServer(t, nil)
	post := func(path string, body []byte) int {
		t.Helper()
		resp, err := http.Post(ts.URL+path, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := corpusProfile(t, 0)
	if code := post("/ingest?name=svc.cpu&format=pprof&from=1700000000&until=1700000010", good); code != 200 {
		t.Fatalf("good profile: %d", code)
	}
	if code := post("/ingest?name=svc.cpu&format=pprof", []byte("not a profile")); code != 400 {
		t.Fatalf("bad profile: %d, want 400", code)
	}
	if code := post("/-/flush", nil); code != 200 {
		t.Fatalf("flush: %d", code)
	}

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Errorf("no metric %s", name)
			return -1
		}
	metrics:
		for _, m := range f.Metric {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.Label {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			return metricValue(m)
		}
		t.Errorf("no metric %s%v", name, labels)
		return -1
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"hearth_ingest_profiles_stored_total", nil, 1},
		{"hearth_ingest_bytes_total", nil, float64(len(good))},
		{"hearth_ingest_profiles_refused_total", []string{"reason", "bad_data"}, 1},
		{"hearth_ingest_profiles_refused_total", []string{"reason", "too_large"}, 0},
		{"hearth_ingest_profiles_failed_total", nil, 0},
		{"hearth_ingest_inflight_bytes", nil, 0},
		{"hearth_ingest_busy_total", nil, 0},
		{"hearth_query_priority_wait_seconds_total", nil, 0},
		{"hearth_storage_quarantined_total", nil, 0},
		{"hearth_storage_tenants", nil, 1},
		{"hearth_storage_blocks", nil, 1},
		{"hearth_storage_head_series", nil, 0},
		{"hearth_storage_appends_total", nil, 1},
		{"hearth_storage_oldest_block_timestamp_seconds", nil, 1700000000},
		{"hearth_http_requests_total", []string{"handler", "POST /ingest", "code", "200"}, 1},
		{"hearth_http_requests_total", []string{"handler", "POST /ingest", "code", "400"}, 1},
		{"hearth_http_requests_total", []string{"handler", "POST /-/flush", "code", "200"}, 1},
	} {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value("hearth_storage_block_bytes"); got <= 0 {
		t.Errorf("hearth_storage_block_bytes = %v, want the block's size", got)
	}
	if got := value("process_resident_memory_bytes"); got <= 0 {
		t.Errorf("process_resident_memory_bytes = %v", got)
	}
	if n := value("hearth_http_request_duration_seconds", "handler", "POST /ingest"); n != 2 {
		t.Errorf("%v timed /ingest requests, want 2", n)
	}
	if strings.Contains(resp.Header.Get("Content-Type"), "html") {
		t.Errorf("metrics served as %s", resp.Header.Get("Content-Type"))
	}
}

// metricValue is a metric's value; a histogram's is its count.
func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}
