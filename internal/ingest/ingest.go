package ingest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/priority"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// InputError is input that Hearth will not store; its message names the
// cause, for the client. BadData, Unsupported and TooLarge make one.
type InputError struct {
	// Reason says why the input was refused; it decides the API's status
	// and error type, and the refusal metric's label.
	Reason Reason
	Msg    string
	// Limit names the tenant's limit that refused the input (a name of
	// package limits, such as limits.MaxSamples), "" when no limit did:
	// refusals by a limit are counted by tenant and limit.
	Limit string
}

func (e *InputError) Error() string { return e.Msg }

// Reason is why an input was refused.
type Reason uint8

// The reasons of an InputError. The zero Reason is ReasonBadData, which is
// what the API has always answered for a refusal that names no reason.
const (
	// ReasonBadData is malformed input.
	ReasonBadData Reason = iota
	// ReasonUnsupported is a format that Hearth does not read.
	ReasonUnsupported
	// ReasonTooLarge is input over a limit.
	ReasonTooLarge
	// ReasonSeriesLimit is a profile that would add series to a tenant's
	// head past its limit (limits.MaxSeriesPerTenant). As in Prometheus'
	// and Mimir's per-tenant series limits, sending it again does not
	// help until the head is cut or the limit raised, so it is a client
	// error (HTTP 400), not one to retry.
	ReasonSeriesLimit

	numReasons
)

// String names the reason as the API's error type and the label value of
// hearth_ingest_profiles_refused_total do: bad_data, unsupported,
// too_large or series_limit. Both are public, so the names never change.
func (r Reason) String() string {
	switch r {
	case ReasonBadData:
		return "bad_data"
	case ReasonUnsupported:
		return "unsupported"
	case ReasonTooLarge:
		return "too_large"
	case ReasonSeriesLimit:
		return "series_limit"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// BadData refuses malformed input, with the message fmt.Sprintf(format,
// args...).
func BadData(format string, args ...any) error {
	return &InputError{Reason: ReasonBadData, Msg: fmt.Sprintf(format, args...)}
}

// Unsupported refuses input in a format that Hearth does not read, with
// the message fmt.Sprintf(format, args...).
func Unsupported(format string, args ...any) error {
	return &InputError{Reason: ReasonUnsupported, Msg: fmt.Sprintf(format, args...)}
}

// TooLarge refuses input over a limit, with the message
// fmt.Sprintf(format, args...).
func TooLarge(format string, args ...any) error {
	return &InputError{Reason: ReasonTooLarge, Msg: fmt.Sprintf(format, args...)}
}

// overLimit refuses input over the tenant's limit called limit, with the
// message fmt.Sprintf(format, args...) followed by the limit's names in
// the configuration file and on the command line.
func overLimit(limit string, format string, args ...any) error {
	return &InputError{Reason: ReasonTooLarge, Limit: limit,
		Msg: fmt.Sprintf(format, args...) + fmt.Sprintf(" (%s)", limit+", "+limits.Flag(limit))}
}

// ProfileLimits bound one ingested profile.
type ProfileLimits struct {
	// MaxSamples is the most samples one profile may hold.
	MaxSamples int
	// MaxStackDepth is the most frames one stack may hold.
	MaxStackDepth int
	// MaxLabels is the most series labels one profile may carry.
	MaxLabels int
	// MaxLabelNameLength and MaxLabelValueLength bound each series
	// label's name and value, in bytes: every series' labels are kept in
	// memory and in every block's index, so one huge value costs in each.
	MaxLabelNameLength, MaxLabelValueLength int
	// MaxDecompressedBytes is the most bytes a gzipped profile may
	// decompress to; 0 means the limit replay has always used (512 MiB).
	MaxDecompressedBytes int64
}

// DefaultProfileLimits are the profile limits of limits.Defaults, with the
// default decompression limit.
func DefaultProfileLimits() ProfileLimits {
	return profileLimits(limits.Defaults(), DefaultMaxDecompressedBytes)
}

// profileLimits are the profile limits of l, with maxDecompressed.
func profileLimits(l limits.Limits, maxDecompressed int64) ProfileLimits {
	return ProfileLimits{MaxSamples: l.MaxSamples, MaxStackDepth: l.MaxStackDepth, MaxLabels: l.MaxLabels,
		MaxLabelNameLength: l.MaxLabelNameLength, MaxLabelValueLength: l.MaxLabelValueLength,
		MaxDecompressedBytes: maxDecompressed}
}

// tenantLimits are the tenant limits of the profile limits p, with no
// other limit.
func (p ProfileLimits) tenantLimits() limits.Limits {
	return limits.Limits{MaxSamples: p.MaxSamples, MaxStackDepth: p.MaxStackDepth, MaxLabels: p.MaxLabels,
		MaxLabelNameLength: p.MaxLabelNameLength, MaxLabelValueLength: p.MaxLabelValueLength}
}

// Request is one push in the shape of the Pyroscope ingest API, free of
// HTTP. Times are resolved before a request is logged, so that replaying it
// gives the same result.
type Request struct {
	Name             string // app.kind{k=v,...}
	Format           string // pprof, folded, lines
	From, Until      int64  // unix nanoseconds; 0 when not given
	SampleRate       int64
	SpyName          string
	Units            string
	AggregationType  string
	Profile          []byte
	PrevProfile      []byte
	SampleTypeConfig []byte

	// Labels are series labels added to those of Name, replacing any of
	// the same name. A request with no Name takes its application from
	// the service_name label, which it must then have.
	Labels labels.Labels
	// NameKind, when not empty, replaces the kind that Name's suffix gives
	// (Name.Kind): a Pyroscope profile kind such as "cpu", "itimer" or
	// "alloc_space", which types a folded or lines profile. A pprof
	// profile names its own sample types; of the kinds, only the
	// contention ones (mutex_count, block_duration...) type it. JFR
	// uploads set it to Pyroscope's name of each of their profiles
	// ("process_cpu", "memory"...), so that the upload's name, which
	// stands for several profiles, types none of them.
	NameKind string
	// Contention says which of Go's contention profiles a pprof profile
	// is, where the way in knows it (the push API's __name__, a scrape
	// endpoint); it wins over the kind of Name and NameKind. Folded and
	// lines profiles ignore it.
	Contention Contention
	// ProfileName, when not empty, names every type of a pprof profile
	// (the first part of its type ID), as Pyroscope names them from the
	// push API's __name__: a client's own name (say "deadmans_switch")
	// must find its profiles under the ID it asks for.
	ProfileName string
	// SampleTypes, when not empty, keeps only these pprof sample types.
	SampleTypes []string
	// DropFirst stores only the baseline of a cumulative series that has
	// none: a scraped counter since process start is not the amount of
	// one interval.
	DropFirst bool
	// ProfileTime makes a pprof profile's own time_nanos its time when it
	// has one, rather than From: Pyroscope's push API takes the time from
	// the profile.
	ProfileTime bool
	// Parsed, when not nil, is the profile already decoded (from OTLP or
	// JFR); Profile is then left empty and Ingest fills it with Parsed's
	// pprof encoding for the log.
	Parsed *gpprof.Profile
}

// Contention is which of Go's two contention profiles a pprof profile is.
// The runtime writes the mutex and the block profile alike (sample types
// contentions and delay), so the profile itself does not say.
type Contention uint8

// The contentions.
const (
	// ContentionUnknown leaves it to the sample_type_config's display
	// names and to the kind of the request's name.
	ContentionUnknown Contention = iota
	// ContentionMutex is the mutex profile: time waited on locks, counted
	// where they were released.
	ContentionMutex
	// ContentionBlock is the block profile: time blocked on
	// synchronization primitives, counted where the wait was.
	ContentionBlock

	numContentions
)

// String returns "mutex", "block" or "" for ContentionUnknown.
func (c Contention) String() string {
	switch c {
	case ContentionUnknown:
		return ""
	case ContentionMutex:
		return "mutex"
	case ContentionBlock:
		return "block"
	}
	return fmt.Sprintf("Contention(%d)", uint8(c))
}

// ContentionOf returns the contention that a profile kind names: mutex,
// mutex_count and mutex_duration are ContentionMutex, block, block_count
// and block_duration ContentionBlock, and every other kind
// ContentionUnknown.
func ContentionOf(kind string) Contention {
	switch kind {
	case "mutex", "mutex_count", "mutex_duration":
		return ContentionMutex
	case "block", "block_count", "block_duration":
		return ContentionBlock
	}
	return ContentionUnknown
}

// Ingester decodes pushes and stores them.
type Ingester struct {
	db *storage.DB
	// limits are the limits of New; their MaxDecompressedBytes bounds
	// every tenant, the others are the tenants' own unless UseLimits
	// says otherwise.
	limits   ProfileLimits
	tenants  *limits.Overrides
	refusals *limits.Refusals // nil: not counted
	rates    tenantRates
	logger   *slog.Logger
	now      func() time.Time

	stored, storedBytes, failed atomic.Uint64
	refused                     [numReasons + 1]atomic.Uint64 // by Reason, then other
	failureLog                  logLimiter
	budget                      *Budget // nil: no in-flight bound
	foreground                  *priority.Governor
}

// otherRefusal is the Stats.Refused key of a refusal that is not an
// *InputError, or whose Reason is not one of the constants.
const otherRefusal = "other"

// Stats counts what an Ingester did since New, over every way in.
type Stats struct {
	// Stored is the requests stored, StoredBytes their profiles' bytes
	// as sent (compressed or not).
	Stored, StoredBytes uint64
	// Refused is the requests refused as bad input, by Reason.String(),
	// and "other" for refusals of no known Reason.
	Refused map[string]uint64
	// Failed is the requests not stored because storage failed (the
	// log could not be written, or the context ended).
	Failed uint64
}

// Stats returns the running totals.
func (ig *Ingester) Stats() Stats {
	st := Stats{Stored: ig.stored.Load(), StoredBytes: ig.storedBytes.Load(), Failed: ig.failed.Load(), Refused: map[string]uint64{}}
	for r := range numReasons {
		st.Refused[r.String()] = ig.refused[r].Load()
	}
	st.Refused[otherRefusal] = ig.refused[numReasons].Load()
	return st
}

// count adds the outcome of storing rs for tenant, whose refusals are
// refused (nil: none) and whose storage failed with err (nil: stored).
func (ig *Ingester) count(tenant string, rs []*Request, refused []error, err error) {
	for i, r := range rs {
		var why error
		if refused != nil {
			why = refused[i]
		}
		ig.countOne(tenant, r, why, err)
	}
}

// countOne adds the outcome of storing r for tenant: refused as bad input
// (why), not stored (err), or stored.
func (ig *Ingester) countOne(tenant string, r *Request, why, err error) {
	switch {
	case why != nil:
		k := numReasons // other
		if ie, ok := errors.AsType[*InputError](why); ok {
			if ie.Reason < numReasons {
				k = ie.Reason
			}
			if ie.Limit != "" {
				ig.refusals.Add(tenant, ie.Limit)
			}
		}
		ig.refused[k].Add(1)
	case err != nil:
		if _, busy := errors.AsType[*BusyError](err); !busy { // the Budget counts those
			ig.failed.Add(1)
		}
	default:
		ig.stored.Add(1)
		ig.storedBytes.Add(uint64(len(r.Profile) + len(r.PrevProfile)))
	}
}

// New returns an ingester writing to db, under lim for every tenant.
func New(db *storage.DB, lim ProfileLimits, logger *slog.Logger) *Ingester {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ingester{db: db, limits: lim, tenants: limits.NewOverrides(lim.tenantLimits()), logger: logger, now: time.Now}
}

// UseLimits makes o the tenants' limits (their profile limits, series
// and ingest rate; the decompression limit stays New's) and counts
// refusals by them in r (nil: nowhere). Call it before the first request;
// o may change afterwards.
func (ig *Ingester) UseLimits(o *limits.Overrides, r *limits.Refusals) {
	ig.tenants, ig.refusals = o, r
}

// tenantLimits returns the limits of tenant, and its profile limits.
func (ig *Ingester) tenantLimits(tenant string) (limits.Limits, ProfileLimits) {
	l := ig.tenants.For(tenant)
	return l, profileLimits(l, ig.limits.MaxDecompressedBytes)
}

// Prioritize makes every request that takes a lease tell g that writes
// are arriving, so that g holds queries back for them. Call it before the
// first request.
func (ig *Ingester) Prioritize(g *priority.Governor) { ig.foreground = g }

// LimitInflight bounds the bytes that requests being decoded hold at once
// (see Lease); max <= 0 bounds nothing. Call it before the first request.
func (ig *Ingester) LimitInflight(max int64) { ig.budget = NewBudget(max) }

// Limits returns the limits of New: the decompression limit that ig
// checks, and the profile limits of tenants when UseLimits was not
// called.
func (ig *Ingester) Limits() ProfileLimits { return ig.limits }

// Lease returns an empty share of the in-flight budget for one request,
// and ctx carrying it: the ingest path counts what it decompresses for
// the request in it, and the caller counts the body it reads (see
// LeasedReader). The caller releases it when the request is done.
func (ig *Ingester) Lease(ctx context.Context) (context.Context, *Lease) {
	ig.foreground.Mark()
	l := ig.budget.Lease()
	return WithLease(ctx, l), l
}

// Budget returns the in-flight budget of LimitInflight (nil: no bound),
// for ways in whose libraries decompress before the ingest path sees the
// request.
func (ig *Ingester) Budget() *Budget { return ig.budget }

// Inflight returns the bytes that requests being decoded hold now, and the
// requests refused with a *BusyError since LimitInflight.
func (ig *Ingester) Inflight() (bytes int64, refused uint64) { return ig.budget.InUse() }

// Ingest validates and decodes r and stores it for tenant. An *InputError
// says the input was refused; nothing of it was stored. A *StorageError
// says storage failed, a *BusyError that the server is busy: the client
// may retry.
func (ig *Ingester) Ingest(ctx context.Context, tenant string, r *Request) error {
	err := ig.ingest(ctx, tenant, r)
	if _, refused := errors.AsType[*InputError](err); refused {
		ig.countOne(tenant, r, err, nil)
	} else {
		ig.countOne(tenant, r, nil, err)
	}
	return err
}

func (ig *Ingester) ingest(ctx context.Context, tenant string, r *Request) error {
	if err := encodeParsed(r); err != nil {
		return err
	}
	tl, pl := ig.tenantLimits(tenant)
	inputs, err := decode(r, pl, ig.now(), LeaseOf(ctx))
	if err != nil {
		return err
	}
	payload := EncodeRequest(r)
	refused, err := ig.db.AppendLimited(ctx, tenant, payload, [][]*storage.Input{inputs}, tl.MaxSeriesPerTenant,
		func([]bool) []byte { return payload })
	if err != nil {
		return ig.storageFailed(tenant, 1, err)
	}
	if refused != nil {
		return seriesLimited(refused[0])
	}
	return nil
}

// seriesLimited turns storage's refusal of a profile over the series
// limit into an *InputError.
func seriesLimited(err error) error {
	se, ok := errors.AsType[*storage.SeriesLimitError](err)
	if !ok {
		return err
	}
	return &InputError{Reason: ReasonSeriesLimit, Limit: limits.MaxSeriesPerTenant, Msg: fmt.Sprintf(
		"series limit: the tenant's head holds %d series, and this profile would add %d, past the limit of %d (%s, %s); profiles of the series it holds are still stored",
		se.Series, se.New, se.Limit, limits.MaxSeriesPerTenant, limits.Flag(limits.MaxSeriesPerTenant))}
}

// IngestBatch stores every request of rs that decodes, in one log record,
// and says for each request why it was refused (nil when it was stored).
// A non-nil error means that nothing was stored: the log write failed (a
// *StorageError) or the context ended.
func (ig *Ingester) IngestBatch(ctx context.Context, tenant string, rs []*Request) (refused []error, err error) {
	refused = make([]error, len(rs))
	var ok []int // indexes in rs of the requests that decoded
	var groups [][]*storage.Input
	now := ig.now()
	lease := LeaseOf(ctx)
	tl, pl := ig.tenantLimits(tenant)
	for i, r := range rs {
		if err := encodeParsed(r); err != nil {
			refused[i] = err
			continue
		}
		in, err := decode(r, pl, now, lease)
		if _, busy := errors.AsType[*BusyError](err); busy {
			// Not the profile's fault: the whole batch waits.
			return nil, err
		}
		if err != nil {
			refused[i] = err
			continue
		}
		ok = append(ok, i)
		groups = append(groups, in)
	}
	if len(ok) == 0 {
		ig.count(tenant, rs, refused, nil)
		return refused, nil
	}
	encode := func(admitted []bool) []byte {
		kept := make([]*Request, 0, len(ok))
		for k, i := range ok {
			if admitted == nil || admitted[k] {
				kept = append(kept, rs[i])
			}
		}
		return EncodeRequests(kept)
	}
	limited, err := ig.db.AppendLimited(ctx, tenant, encode(nil), groups, tl.MaxSeriesPerTenant, encode)
	if err != nil {
		err = ig.storageFailed(tenant, len(ok), err)
		ig.count(tenant, rs, refused, err)
		return nil, err
	}
	for k, e := range limited {
		if e != nil {
			refused[ok[k]] = seriesLimited(e)
		}
	}
	ig.count(tenant, rs, refused, nil)
	return refused, nil
}

// encodeParsed fills r.Profile with the encoding of r.Parsed, before
// decoding changes the parsed profile, so that replaying the log gives
// what was stored.
func encodeParsed(r *Request) error {
	if r.Parsed == nil || len(r.Profile) > 0 {
		return nil
	}
	if err := r.Parsed.CheckValid(); err != nil {
		return BadData("profile: %v", err)
	}
	var buf bytes.Buffer
	if err := r.Parsed.WriteUncompressed(&buf); err != nil {
		return fmt.Errorf("encode profile: %w", err)
	}
	r.Profile = buf.Bytes()
	r.Format = "pprof"
	return nil
}

// Decode turns a request into the inputs storage takes. It fills a missing
// From with now, in r itself, so that the logged request is deterministic.
func Decode(r *Request, lim ProfileLimits, now time.Time) ([]*storage.Input, error) {
	return decode(r, lim, now, nil)
}

// decode is Decode counting what it decompresses in lease (nil: nowhere).
func decode(r *Request, lim ProfileLimits, now time.Time, lease *Lease) ([]*storage.Input, error) {
	name, err := requestName(r)
	if err != nil {
		return nil, err
	}
	if lim.MaxLabels > 0 && name.Labels.Len() > lim.MaxLabels {
		return nil, overLimit(limits.MaxLabels, "name: %d labels is over the limit of %d", name.Labels.Len(), lim.MaxLabels)
	}
	if err := lim.checkLabelLengths(name.Labels); err != nil {
		return nil, err
	}
	if err := name.Labels.Validate(); err != nil {
		return nil, BadData("name: %v", err)
	}
	if r.From == 0 {
		r.From = now.UnixNano()
	}
	var stc SampleTypeConfig
	if len(r.SampleTypeConfig) > 0 {
		if stc, err = ParseSampleTypeConfig(r.SampleTypeConfig); err != nil {
			return nil, BadData("sample_type_config: %v", err)
		}
	}
	var in *storage.Input
	switch strings.ToLower(r.Format) {
	case "pprof":
		in, err = decodePprof(r, name, stc, lim, lease)
	case "", "folded", "lines":
		in, err = decodeFolded(r, name, lim)
	case "trie", "tree", "jfr", "speedscope":
		return nil, Unsupported("format %q is not supported yet; send pprof, folded or lines", r.Format)
	default:
		return nil, Unsupported("unknown format %q; want pprof, folded or lines", r.Format)
	}
	if err != nil {
		return nil, err
	}
	in.Labels = moveCorrelationLabels(name.Labels, in.Profile)
	in.DropFirst = r.DropFirst
	return []*storage.Input{in}, nil
}

// requestName parses r.Name and adds r.Labels and r.NameKind.
func requestName(r *Request) (Name, error) {
	var name Name
	if r.Name == "" && r.Labels.Len() > 0 {
		app := r.Labels.Get("service_name")
		if app == "" {
			return Name{}, BadData("labels: service_name is missing")
		}
		name = Name{App: app, Labels: r.Labels}
	} else {
		var err error
		if name, err = ParseName(r.Name); err != nil {
			return Name{}, BadData("%v", err)
		}
		if r.Labels.Len() > 0 {
			b := labels.NewBuilder(name.Labels)
			r.Labels.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
			name.Labels = b.Labels()
		}
	}
	if r.NameKind != "" {
		name.Kind = r.NameKind
	}
	return name, nil
}

func decodePprof(r *Request, name Name, stc SampleTypeConfig, lim ProfileLimits, lease *Lease) (*storage.Input, error) {
	if len(r.Profile) == 0 && r.Parsed == nil {
		return nil, BadData("profile is empty")
	}
	var p *gpprof.Profile
	var err error
	if r.Parsed != nil {
		p = r.Parsed
		err = checkPprof(p, lim)
	} else {
		p, err = parsePprof(r.Profile, lim, lease, "profile")
	}
	if err != nil {
		return nil, err
	}
	if len(r.PrevProfile) > 0 {
		prev, err := parsePprof(r.PrevProfile, lim, lease, "profile")
		if err != nil {
			return nil, fmt.Errorf("prev_profile: %w", err)
		}
		if p, err = subtract(p, prev); err != nil {
			return nil, BadData("prev_profile: %v", err)
		}
	}
	if r.From != 0 && !(r.ProfileTime && p.TimeNanos > 0) {
		p.TimeNanos = r.From
	}
	in := &storage.Input{Profile: p, NumericSampleLabel: keepSampleLabel}
	for _, st := range p.SampleType {
		typ := typeOf(p, st, name.Kind, r.Contention, stc)
		if r.ProfileName != "" {
			typ.Name = r.ProfileName
		}
		if len(r.SampleTypes) > 0 && !slices.Contains(r.SampleTypes, st.Type) {
			typ = profile.Type{}
		}
		in.Types = append(in.Types, typ)
		cum := defaultCumulative(st.Type)
		if e := stc.lookup(st.Type); e != nil {
			cum = e.Cumulative
		}
		if len(r.PrevProfile) > 0 {
			cum = false // subtract made it a delta
		}
		in.Cumulative = append(in.Cumulative, cum)
	}
	return in, nil
}

// parsePprof parses any encoding google/pprof reads and checks limits.
func parsePprof(data []byte, lim ProfileLimits, lease *Lease, what string) (*gpprof.Profile, error) {
	// klauspost's decoder is about twice as fast as compress/gzip, which
	// google/pprof would use.
	data, err := Gunzip(data, lim.MaxDecompressedBytes, lease, what)
	if err != nil {
		return nil, err
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		// google/pprof's parser would gunzip it again, with no bound at
		// all: a bomb inside a gzip of the right size.
		return nil, BadData("%s: gzipped twice", what)
	}
	// Protobuf, what every current profiler writes, goes through Hearth's
	// own decoder; the legacy text and binary formats through google/pprof.
	p, err := decodePprofProto(data)
	if err != nil {
		var lerr error
		if p, lerr = gpprof.ParseData(data); lerr != nil {
			return nil, BadData("parse pprof: %v (as protobuf: %v)", lerr, err)
		}
	}
	return p, checkPprof(p, lim)
}

// checkPprof checks that p is whole and within limits.
func checkPprof(p *gpprof.Profile, lim ProfileLimits) error {
	if len(p.SampleType) == 0 {
		return BadData("pprof has no sample types")
	}
	if lim.MaxSamples > 0 && len(p.Sample) > lim.MaxSamples {
		return overLimit(limits.MaxSamples, "pprof has %d samples, over the limit of %d", len(p.Sample), lim.MaxSamples)
	}
	for _, s := range p.Sample {
		if len(s.Value) != len(p.SampleType) {
			return BadData("pprof sample has %d values for %d sample types", len(s.Value), len(p.SampleType))
		}
		if lim.MaxStackDepth > 0 && len(s.Location) > lim.MaxStackDepth {
			return overLimit(limits.MaxStackDepth, "pprof has a stack of %d frames, over the limit of %d", len(s.Location), lim.MaxStackDepth)
		}
		for _, l := range s.Location {
			if l == nil {
				return BadData("pprof sample refers to a missing location")
			}
		}
		if len(s.Label) > 0 || len(s.NumLabel) > 0 {
			if err := lim.checkSampleLabels(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSampleLabels refuses a per-sample label whose name or value is over
// its limit, as checkLabelLengths does for series labels: per-sample label
// sets are kept in the head and in every block too.
func (lim ProfileLimits) checkSampleLabels(s *gpprof.Sample) error {
	nameOK := func(k string) error {
		if lim.MaxLabelNameLength > 0 && len(k) > lim.MaxLabelNameLength {
			return overLimit(limits.MaxLabelNameLength, "sample label name %.40q...: %d bytes is over the limit of %d", k, len(k), lim.MaxLabelNameLength)
		}
		return nil
	}
	for k, vs := range s.Label {
		if err := nameOK(k); err != nil {
			return err
		}
		for _, v := range vs {
			if lim.MaxLabelValueLength > 0 && len(v) > lim.MaxLabelValueLength {
				return overLimit(limits.MaxLabelValueLength, "sample label %.40q: a value of %d bytes is over the limit of %d", k, len(v), lim.MaxLabelValueLength)
			}
		}
	}
	for k := range s.NumLabel {
		if err := nameOK(k); err != nil {
			return err
		}
	}
	return nil
}

// subtract returns cur - prev per stack, dropping what did not grow: the
// Pyroscope API's prev_profile turns a cumulative profile into a delta.
func subtract(cur, prev *gpprof.Profile) (*gpprof.Profile, error) {
	prev = prev.Copy()
	prev.Scale(-1)
	m, err := gpprof.Merge([]*gpprof.Profile{cur, prev})
	if err != nil {
		return nil, err
	}
	m.Sample = slices.DeleteFunc(m.Sample, func(s *gpprof.Sample) bool {
		for _, v := range s.Value {
			if v > 0 {
				return false
			}
		}
		return true
	})
	for _, s := range m.Sample {
		for i, v := range s.Value {
			s.Value[i] = max(v, 0)
		}
	}
	return m, nil
}

// correlationLabels are the per-sample labels that tie a sample to a span
// or trace; numeric ones are kept too.
var correlationLabels = []string{
	"span_id", "span_name", "trace_id", "profile_id", "otel.traceid", "local_root_span_id",
	"span id", "local root span id", "trace endpoint", "thread_name", "thread id", "thread name",
}

// keepSampleLabel keeps every string label and the numeric correlation
// labels. Other numeric labels (Go heap's "bytes") describe the sample
// itself and would split stacks without telling a user anything new.
// storage.Input.SampleLabels applies it to numeric labels only.
func keepSampleLabel(key string) bool { return slices.Contains(correlationLabels, key) }

// moveCorrelationLabels takes span and trace labels out of the series
// labels and puts them on every sample instead: one value per request would
// make one series per request.
func moveCorrelationLabels(ls labels.Labels, p *gpprof.Profile) labels.Labels {
	var moved []labels.Label
	ls.Range(func(l labels.Label) {
		if slices.Contains(correlationLabels, l.Name) {
			moved = append(moved, l)
		}
	})
	if len(moved) == 0 {
		return ls
	}
	for _, s := range p.Sample {
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		for _, l := range moved {
			if _, ok := s.Label[l.Name]; !ok {
				s.Label[l.Name] = []string{l.Value}
			}
		}
	}
	b := labels.NewBuilder(ls)
	for _, l := range moved {
		b.Set(l.Name, "")
	}
	return b.Labels()
}

// typeOf names the profile type of one pprof sample type, of a profile
// whose name has the given kind and whose way in says c.
func typeOf(p *gpprof.Profile, st *gpprof.ValueType, kind string, c Contention, stc SampleTypeConfig) profile.Type {
	t := profile.Type{SampleType: st.Type, SampleUnit: st.Unit}
	if p.PeriodType != nil {
		t.PeriodType, t.PeriodUnit = p.PeriodType.Type, p.PeriodType.Unit
	}
	display := ""
	if e := stc.lookup(st.Type); e != nil {
		display = e.DisplayName
	}
	if c == ContentionUnknown {
		c = ContentionOf(kind)
	}
	switch {
	case strings.HasPrefix(display, "mutex_") || c == ContentionMutex:
		t.Name = "mutex"
	case strings.HasPrefix(display, "block_") || c == ContentionBlock:
		t.Name = "block"
	case t.PeriodType == "cpu" || st.Type == "cpu":
		t.Name = "process_cpu"
	case strings.HasPrefix(st.Type, "alloc_") || strings.HasPrefix(st.Type, "inuse_") || t.PeriodType == "space":
		t.Name = "memory"
	case st.Type == "goroutine" || st.Type == "goroutines" || display == "goroutine":
		t.Name = "goroutine"
	case st.Type == "contentions" || st.Type == "delay":
		t.Name = "mutex"
	case t.PeriodType != "":
		t.Name = t.PeriodType
	default:
		t.Name = st.Type
	}
	if t.SampleUnit == "" {
		t.SampleUnit = "count"
	}
	return t
}

// defaultCumulative says which sample types Go's runtime reports as
// counts since process start, when the client gives no sample_type_config.
func defaultCumulative(sampleType string) bool {
	switch sampleType {
	case "alloc_objects", "alloc_space", "contentions", "delay":
		return true
	}
	return false
}

func (c SampleTypeConfig) lookup(sampleType string) *SampleTypeConfigEntry {
	if c == nil {
		return nil
	}
	return c[sampleType]
}

// foldedType maps a Pyroscope kind or unit to a profile type, and says how
// to scale values: CPU samples become nanoseconds.
func foldedType(kind string, units Units, sampleRate int64) (profile.Type, int64) {
	cpu := profile.Type{Name: "process_cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	if sampleRate <= 0 {
		sampleRate = 100
	}
	perSample := int64(time.Second) / sampleRate
	full := func(s string) profile.Type {
		t, _ := profile.ParseType(s)
		return t
	}
	switch kind {
	case "cpu", "itimer":
		return cpu, perSample
	case "wall":
		return profile.Type{Name: "wall", SampleType: "wall", SampleUnit: "nanoseconds", PeriodType: "wall", PeriodUnit: "nanoseconds"}, perSample
	case "alloc_objects", "alloc_space", "inuse_objects", "inuse_space":
		return full(kind), 1
	case "goroutine", "goroutines":
		return full("goroutine"), 1
	case "mutex_count", "lock_count":
		return full("mutex_contentions"), 1
	case "mutex_duration", "lock_duration":
		return full("mutex_delay"), 1
	case "block_count":
		return full("block_contentions"), 1
	case "block_duration":
		return full("block_delay"), 1
	}
	switch units {
	case UnitsObjects:
		return full("alloc_objects"), 1
	case UnitsBytes:
		return full("alloc_space"), 1
	case UnitsGoroutines:
		return full("goroutine"), 1
	case UnitsLockNanoseconds:
		return full("mutex_delay"), 1
	case UnitsLockSamples:
		return full("mutex_contentions"), 1
	}
	return cpu, perSample
}

func decodeFolded(r *Request, name Name, lim ProfileLimits) (*storage.Input, error) {
	fl := Limits{MaxSamples: lim.MaxSamples, MaxStackDepth: lim.MaxStackDepth}
	var samples []FoldedSample
	var err error
	if strings.EqualFold(r.Format, "lines") {
		samples, err = ParseLines(r.Profile, fl)
	} else {
		samples, err = ParseFolded(r.Profile, fl)
	}
	if err != nil {
		if fe, ok := errors.AsType[*FoldedError](err); ok && fe.Limit != "" {
			return nil, overLimit(fe.Limit, "%s: %v", cmp.Or(r.Format, "folded"), err)
		}
		if errors.Is(err, ErrLimitExceeded) {
			return nil, TooLarge("%s: %v", cmp.Or(r.Format, "folded"), err)
		}
		return nil, BadData("%s: %v", cmp.Or(r.Format, "folded"), err)
	}
	units, err := ParseUnits(r.Units)
	if err != nil {
		return nil, BadData("units: %v", err)
	}
	typ, scale := foldedType(name.Kind, units, r.SampleRate)
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: typ.SampleType, Unit: typ.SampleUnit}},
		TimeNanos:  r.From,
	}
	if typ.PeriodType != "" {
		p.PeriodType = &gpprof.ValueType{Type: typ.PeriodType, Unit: typ.PeriodUnit}
	}
	if r.Until > r.From {
		p.DurationNanos = r.Until - r.From
	}
	funcs := map[string]*gpprof.Location{}
	for _, s := range samples {
		locs := make([]*gpprof.Location, len(s.Stack))
		for i, frame := range s.Stack {
			l := funcs[frame]
			if l == nil {
				fn := &gpprof.Function{ID: uint64(len(p.Function) + 1), Name: frame}
				p.Function = append(p.Function, fn)
				l = &gpprof.Location{ID: uint64(len(p.Location) + 1), Line: []gpprof.Line{{Function: fn}}}
				p.Location = append(p.Location, l)
				funcs[frame] = l
			}
			locs[len(s.Stack)-1-i] = l // pprof stacks are leaf first
		}
		if s.Value > math.MaxInt64/scale {
			return nil, BadData("%s: value %d overflows when scaled to nanoseconds at sampleRate %d", cmp.Or(r.Format, "folded"), s.Value, r.SampleRate)
		}
		p.Sample = append(p.Sample, &gpprof.Sample{Location: locs, Value: []int64{s.Value * scale}})
	}
	return &storage.Input{Profile: p, Types: []profile.Type{typ}, Cumulative: []bool{false}}, nil
}

// Logged payloads start with a version byte. Version 1 is one request of
// the Pyroscope API's fields; version 2 is a batch of requests, each with
// the fields that later ways in added (labels, kind, sample types).
// Version 3 is version 2 with the kind split in two: NameKind where
// version 2 had the kind, then a Contention byte. Version 2's kind meant
// both and is read as NameKind alone, which types every profile as the
// kind did: the contention is read out of it (ContentionOf), and it
// replaces the kind of the name as it did.
const (
	payloadV1 = 1
	payloadV2 = 2
	payloadV3 = 3
)

// EncodeRequest serializes r for the write-ahead log.
func EncodeRequest(r *Request) []byte {
	if r.Labels.Len() == 0 && r.NameKind == "" && r.Contention == ContentionUnknown && len(r.SampleTypes) == 0 && !r.DropFirst && !r.ProfileTime {
		return appendRequestV1(make([]byte, 0, encodedSize(r)+1), r)
	}
	return EncodeRequests([]*Request{r})
}

// EncodeRequests serializes a batch of requests for the write-ahead log.
func EncodeRequests(rs []*Request) []byte {
	n := 8
	for _, r := range rs {
		n += encodedSize(r) + 64
	}
	b := make([]byte, 0, n)
	b = append(b, payloadV3)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = appendRequestFields(b, r)
		b = binary.AppendUvarint(b, uint64(r.Labels.Len()))
		r.Labels.Range(func(l labels.Label) {
			b = appendString(b, l.Name)
			b = appendString(b, l.Value)
		})
		b = appendString(b, r.NameKind)
		b = append(b, byte(r.Contention))
		b = binary.AppendUvarint(b, uint64(len(r.SampleTypes)))
		for _, st := range r.SampleTypes {
			b = appendString(b, st)
		}
		flags := byte(0)
		if r.DropFirst {
			flags |= 1
		}
		if r.ProfileTime {
			flags |= 2
		}
		b = append(b, flags)
	}
	return b
}

func encodedSize(r *Request) int {
	return 64 + len(r.Name) + len(r.Format) + len(r.SpyName) + len(r.Units) + len(r.AggregationType) +
		len(r.Profile) + len(r.PrevProfile) + len(r.SampleTypeConfig)
}

func appendRequestV1(b []byte, r *Request) []byte {
	b = append(b, payloadV1)
	return appendRequestFields(b, r)
}

func appendString[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRequestFields(b []byte, r *Request) []byte {
	for _, s := range []string{r.Name, r.Format, r.SpyName, r.Units, r.AggregationType} {
		b = appendString(b, s)
	}
	for _, v := range []int64{r.From, r.Until, r.SampleRate} {
		b = binary.AppendVarint(b, v)
	}
	for _, s := range [][]byte{r.Profile, r.PrevProfile, r.SampleTypeConfig} {
		b = appendString(b, s)
	}
	return b
}

var errTruncated = errors.New("truncated logged request")

type payloadReader struct{ rd *bytes.Reader }

func (p payloadReader) bytes() ([]byte, error) {
	n, err := binary.ReadUvarint(p.rd)
	if err != nil || n > uint64(p.rd.Len()) {
		return nil, errTruncated
	}
	out := make([]byte, n)
	_, _ = p.rd.Read(out)
	return out, nil
}

func (p payloadReader) string() (string, error) {
	b, err := p.bytes()
	return string(b), err
}

func (p payloadReader) count() (int, error) {
	n, err := binary.ReadUvarint(p.rd)
	if err != nil || n > uint64(p.rd.Len()) {
		return 0, errTruncated
	}
	return int(n), nil
}

func (p payloadReader) fields(r *Request) error {
	var err error
	for _, dst := range []*string{&r.Name, &r.Format, &r.SpyName, &r.Units, &r.AggregationType} {
		if *dst, err = p.string(); err != nil {
			return err
		}
	}
	for _, dst := range []*int64{&r.From, &r.Until, &r.SampleRate} {
		if *dst, err = binary.ReadVarint(p.rd); err != nil {
			return errTruncated
		}
	}
	for _, dst := range []*[]byte{&r.Profile, &r.PrevProfile, &r.SampleTypeConfig} {
		if *dst, err = p.bytes(); err != nil {
			return err
		}
		if len(*dst) == 0 {
			*dst = nil
		}
	}
	return nil
}

// batched reads one request of a version 2 or 3 batch.
func (p payloadReader) batched(version byte, r *Request) error {
	if err := p.fields(r); err != nil {
		return err
	}
	n, err := p.count()
	if err != nil {
		return err
	}
	ls := make([]labels.Label, n)
	for i := range ls {
		if ls[i].Name, err = p.string(); err != nil {
			return err
		}
		if ls[i].Value, err = p.string(); err != nil {
			return err
		}
	}
	r.Labels = labels.New(ls...)
	if r.NameKind, err = p.string(); err != nil {
		return err
	}
	if version >= payloadV3 {
		c, err := p.rd.ReadByte()
		if err != nil {
			return errTruncated
		}
		if r.Contention = Contention(c); r.Contention >= numContentions {
			return fmt.Errorf("logged request: unknown contention %d", c)
		}
	}
	if n, err = p.count(); err != nil {
		return err
	}
	for range n {
		st, err := p.string()
		if err != nil {
			return err
		}
		r.SampleTypes = append(r.SampleTypes, st)
	}
	flags, err := p.rd.ReadByte()
	if err != nil {
		return errTruncated
	}
	r.DropFirst = flags&1 != 0
	r.ProfileTime = flags&2 != 0
	return nil
}

// DecodeRequests parses what EncodeRequest or EncodeRequests wrote.
func DecodeRequests(b []byte) ([]*Request, error) {
	if len(b) == 0 {
		return nil, errors.New("empty logged request")
	}
	p := payloadReader{bytes.NewReader(b[1:])}
	switch b[0] {
	case payloadV1:
		r := &Request{}
		if err := p.fields(r); err != nil {
			return nil, err
		}
		return []*Request{r}, nil
	case payloadV2, payloadV3:
		n, err := p.count()
		if err != nil {
			return nil, err
		}
		rs := make([]*Request, n)
		for i := range rs {
			rs[i] = &Request{}
			if err := p.batched(b[0], rs[i]); err != nil {
				return nil, err
			}
		}
		return rs, nil
	}
	return nil, fmt.Errorf("unknown logged request version %d", b[0])
}

// Replay is storage.Options.Decode for payloads that Ingest logged. Limits
// are not checked again: the request was accepted under the limits in force
// then.
func Replay(payload []byte) ([]*storage.Input, error) {
	rs, err := DecodeRequests(payload)
	if err != nil {
		return nil, err
	}
	var out []*storage.Input
	for _, r := range rs {
		in, err := Decode(r, ProfileLimits{}, time.Unix(0, r.From))
		if err != nil {
			return nil, err
		}
		out = append(out, in...)
	}
	return out, nil
}

// checkLabelLengths refuses a label name or value over its limit; zero
// limits check nothing.
func (lim ProfileLimits) checkLabelLengths(ls labels.Labels) error {
	var err error
	ls.Range(func(l labels.Label) {
		switch {
		case err != nil:
		case lim.MaxLabelNameLength > 0 && len(l.Name) > lim.MaxLabelNameLength:
			err = overLimit(limits.MaxLabelNameLength, "label name %.40q...: %d bytes is over the limit of %d", l.Name, len(l.Name), lim.MaxLabelNameLength)
		case lim.MaxLabelValueLength > 0 && len(l.Value) > lim.MaxLabelValueLength:
			err = overLimit(limits.MaxLabelValueLength, "label %s: a value of %d bytes is over the limit of %d", l.Name, len(l.Value), lim.MaxLabelValueLength)
		}
	})
	return err
}
