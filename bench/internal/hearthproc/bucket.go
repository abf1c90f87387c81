package hearthproc

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BucketIO is what a server asked of its object store, from the counters
// of its /metrics: requests of every kind (GET, ranged GET, LIST, HEAD,
// upload, delete) and the bytes its reads fetched.
type BucketIO struct {
	Ops   int64 `json:"ops"`
	Gets  int64 `json:"gets"` // whole and ranged GETs
	Bytes int64 `json:"fetched_bytes"`
}

// Sub is b minus an earlier reading.
func (b BucketIO) Sub(earlier BucketIO) BucketIO {
	return BucketIO{Ops: b.Ops - earlier.Ops, Gets: b.Gets - earlier.Gets, Bytes: b.Bytes - earlier.Bytes}
}

// ReadBucketIO reads the object-store counters of the server at addr:
// hearth_objstore_bucket_operations_total and
// hearth_objstore_bucket_operation_fetched_bytes_total, summed over
// buckets and operations.
func ReadBucketIO(addr string) (BucketIO, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return BucketIO{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return BucketIO{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var io BucketIO
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			continue
		}
		switch name {
		case "hearth_objstore_bucket_operations_total":
			io.Ops += int64(v)
			if strings.Contains(rest, `operation="get"`) || strings.Contains(rest, `operation="get_range"`) {
				io.Gets += int64(v)
			}
		case "hearth_objstore_bucket_operation_fetched_bytes_total":
			io.Bytes += int64(v)
		}
	}
	return io, sc.Err()
}
