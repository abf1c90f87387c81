package scrape

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"

	"github.com/prometheus/common/config"
)

// userAgent is sent with every scrape, so that a target's logs say who
// asks.
const userAgent = "Hearth-scrape/1"

// newClient builds the HTTP client of a validated job as Prometheus' scrape
// pools build theirs. Keep-alives stay on (the default): a target is asked
// for a handful of endpoints every interval, and reusing connections across
// intervals of up to a few minutes saves a handshake per scrape.
// Credentials and TLS files are read again as requests need them, so a
// rotated token or certificate takes effect without a reload.
func newClient(sc *ScrapeConfig) (*http.Client, error) {
	return config.NewClientFromConfig(sc.HTTPClientConfig, sc.JobName, config.WithUserAgent(userAgent))
}

// clientFingerprint identifies a job's HTTP client settings, so that a
// reload rebuilds the client, and restarts the job's loops, only when they
// changed. It hashes every value of c rather than c's YAML, which shows
// secrets as <secret> and a proxy URL's password as xxxxx: a changed
// password must count as a change too.
func clientFingerprint(c *config.HTTPClientConfig) string {
	h := sha256.New()
	writeValue(h, reflect.ValueOf(c).Elem())
	return hex.EncodeToString(h.Sum(nil))
}

// writeValue writes an encoding of v, unexported fields included, in which
// different values differ: strings carry their length, nil a marker of its
// own, interfaces their dynamic type, and map entries come sorted so that
// the result is stable. Functions (ProxyConfig caches one) are left out.
func writeValue(w io.Writer, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			io.WriteString(w, "nil;")
			return
		}
		if v.Kind() == reflect.Interface {
			io.WriteString(w, v.Elem().Type().String())
		}
		io.WriteString(w, "&")
		writeValue(w, v.Elem())
	case reflect.Struct:
		io.WriteString(w, "{")
		for i := range v.NumField() {
			writeValue(w, v.Field(i))
		}
		io.WriteString(w, "}")
	case reflect.Slice, reflect.Array:
		fmt.Fprintf(w, "[%d:", v.Len())
		for i := range v.Len() {
			writeValue(w, v.Index(i))
		}
	case reflect.Map:
		type entry struct{ key, value bytes.Buffer }
		entries := make([]*entry, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			e := &entry{}
			writeValue(&e.key, it.Key())
			writeValue(&e.value, it.Value())
			entries = append(entries, e)
		}
		slices.SortFunc(entries, func(a, b *entry) int { return bytes.Compare(a.key.Bytes(), b.key.Bytes()) })
		fmt.Fprintf(w, "map%d:", len(entries))
		for _, e := range entries {
			w.Write(e.key.Bytes())
			w.Write(e.value.Bytes())
		}
	case reflect.String:
		fmt.Fprintf(w, "%d:%s;", v.Len(), v.String())
	case reflect.Bool:
		fmt.Fprintf(w, "%t;", v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		fmt.Fprintf(w, "%d;", v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		fmt.Fprintf(w, "%d;", v.Uint())
	case reflect.Float32, reflect.Float64:
		fmt.Fprintf(w, "%v;", v.Float())
	}
}
