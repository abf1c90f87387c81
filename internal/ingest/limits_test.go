package ingest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"
	"github.com/klauspost/compress/gzip"
)

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecodeDecompressionLimit: a profile that decompresses past the
// limit is refused as too large, naming the flag, before any parser sees
// it; so is one gzipped twice, which google/pprof's fallback would
// gunzip again without a bound.
func TestDecodeDecompressionLimit(t *testing.T) {
	lim := DefaultProfileLimits()
	lim.MaxDecompressedBytes = 1 << 20
	bomb := gzipBytes(t, make([]byte, lim.MaxDecompressedBytes+1))
	for name, tc := range map[string]struct {
		r    *Request
		want Reason
	}{
		"profile":      {&Request{Name: "a.cpu", Format: "pprof", Profile: bomb}, ReasonTooLarge},
		"prev_profile": {&Request{Name: "a.cpu", Format: "pprof", Profile: smallProfile(t), PrevProfile: bomb}, ReasonTooLarge},
		"twice":        {&Request{Name: "a.cpu", Format: "pprof", Profile: gzipBytes(t, gzipBytes(t, make([]byte, 4<<20)))}, ReasonBadData},
	} {
		_, err := Decode(tc.r, lim, time.Now())
		ie, ok := errors.AsType[*InputError](err)
		if !ok || ie.Reason != tc.want {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
		if tc.want == ReasonTooLarge && !strings.Contains(err.Error(), FlagMaxDecompressedBytes) {
			t.Errorf("%s: %q does not name %s", name, err, FlagMaxDecompressedBytes)
		}
	}
}

// TestLeaseBounds: leases together hold at most the budget, except a
// request alone, which may always proceed; released bytes are free again.
func TestLeaseBounds(t *testing.T) {
	b := NewBudget(100)
	l1, l2 := b.Lease(), b.Lease()
	if err := l1.Grow(150); err != nil {
		t.Fatalf("a request alone over the budget: %v", err)
	}
	if err := l2.Grow(1); !isBusy(err) {
		t.Fatalf("second request beyond the budget: err = %v, want busy", err)
	}
	l1.Release()
	if err := l2.Grow(60); err != nil {
		t.Fatal(err)
	}
	if err := l1.Grow(40); err != nil {
		t.Fatalf("within the budget: %v", err)
	}
	if err := l1.Grow(1); !isBusy(err) || !strings.Contains(err.Error(), FlagMaxInflightBytes) {
		t.Fatalf("over the budget: err = %v, want busy naming %s", err, FlagMaxInflightBytes)
	}
	if used, refused := b.InUse(); used != 100 || refused != 2 {
		t.Errorf("InUse() = %d, %d; want 100, 2", used, refused)
	}
	l1.Release()
	l2.Release()
	if used, _ := b.InUse(); used != 0 {
		t.Errorf("%d bytes in use after every release", used)
	}
	var none *Budget
	if err := none.Lease().Grow(1 << 40); err != nil {
		t.Errorf("nil budget: %v", err)
	}
}

// TestIngestBusy: a profile whose decompression would take the budget
// over its bound, while another request holds most of it, is answered
// busy, is not counted as a storage failure, and holds nothing after.
func TestIngestBusy(t *testing.T) {
	ig := New(nil, DefaultProfileLimits(), nil)
	ig.LimitInflight(1 << 20)
	_, other := ig.Lease(context.Background())
	if err := other.Grow(1 << 19); err != nil {
		t.Fatal(err)
	}
	ctx, lease := ig.Lease(context.Background())
	err := ig.Ingest(ctx, "t", &Request{Name: "a.cpu", Format: "pprof", Profile: gzipBytes(t, make([]byte, 1<<20))})
	if !isBusy(err) {
		t.Fatalf("err = %v, want busy", err)
	}
	lease.Release()
	other.Release()
	if used, refused := ig.Inflight(); used != 0 || refused != 1 {
		t.Errorf("Inflight() = %d, %d; want 0, 1", used, refused)
	}
	if st := ig.Stats(); st.Failed != 0 {
		t.Errorf("a busy refusal counted as %d storage failures", st.Failed)
	}
}

// smallProfile is a valid gzipped pprof profile of one sample.
func smallProfile(t *testing.T) []byte {
	t.Helper()
	fn := &gpprof.Function{ID: 1, Name: "main"}
	loc := &gpprof.Location{ID: 1, Line: []gpprof.Line{{Function: fn}}}
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Sample:     []*gpprof.Sample{{Location: []*gpprof.Location{loc}, Value: []int64{1}}},
		Location:   []*gpprof.Location{loc},
		Function:   []*gpprof.Function{fn},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func isBusy(err error) bool {
	_, ok := errors.AsType[*BusyError](err)
	return ok
}
