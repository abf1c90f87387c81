package storage

import (
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
	"github.com/hearth-profiler/hearth/internal/storage/fsys"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// Options configure a DB. Zero durations and sizes take the defaults of
// DefaultOptions, except Retention, where zero keeps data forever.
type Options struct {
	// Decode turns a logged payload back into the inputs it stood for. It
	// must be deterministic: replay feeds it every payload that Append
	// logged, in order.
	Decode func(payload []byte) ([]*Input, error)
	// WALSync fsyncs the log on every write (power-loss safety, slower).
	WALSync bool
	// WALSegmentBytes is the size of one log segment.
	WALSegmentBytes int64

	// BlockDuration is the span of profile time after which a head is cut
	// into a block; a head that has had no writes for this long (wall
	// time) is cut too. Default 1h.
	BlockDuration time.Duration
	// MaxHeadBytes is the estimated sample memory of one tenant's head
	// after which it is cut. Default 128 MiB.
	MaxHeadBytes int64
	// CheckInterval is how often Run looks for heads to cut. Default 10s.
	CheckInterval time.Duration
	// CompactInterval is how often Run compacts and applies retention.
	// Default 1m.
	CompactInterval time.Duration
	// CompactionRanges are the block spans compaction builds, smallest
	// first: blocks shorter than a range whose aligned window of that
	// range is over are merged. Nil means 6h, 24h; an empty slice turns
	// compaction off.
	CompactionRanges []time.Duration
	// Retention deletes blocks whose newest profile is older than now
	// minus Retention. Zero keeps everything. DefaultOptions: 30 days.
	Retention time.Duration
	// Now is the wall clock, for tests; nil means time.Now.
	Now func() time.Time
	// Bucket holds the blocks. Nil means a bucket.Dir at DIR/tenants,
	// where blocks have always been kept. The DB uses it from Open to
	// Close, and does not close a Bucket it was given.
	Bucket bucket.Bucket
	// ReadOnly opens the store as a querier does: over the blocks of
	// the bucket alone, with no write-ahead log, no head, no checkpoint,
	// and nothing written, moved or deleted in the bucket. Appends fail
	// with ErrReadOnly; Run re-lists the bucket every SyncInterval
	// (Sync) instead of cutting and compacting. With Compactor set it
	// changes the bucket all the same, as that says.
	ReadOnly bool
	// SyncInterval is how often Run syncs a ReadOnly store with its
	// bucket. Default 15s.
	SyncInterval time.Duration
	// SharedBucket says that other instances write blocks to the bucket
	// too (ingesters beside this one). Open then deletes, moves and
	// quarantines nothing there: a block directory without meta.json may
	// be another instance's upload in progress. The store names itself
	// in DIR/instance and in the meta.json of the blocks it cuts, and
	// its log's replay goes by those blocks alone. It says nothing of
	// compaction and retention, which CompactionRanges and Retention
	// turn off.
	SharedBucket bool
	// KeepUploaded is how long a SharedBucket store (an ingester) keeps
	// a block it uploaded in its view after the upload: in its own
	// queries and in its HeadSnapshot. It must exceed the queriers' sync
	// interval, so that a querier has listed a block before the
	// ingester stops counting it. Zero keeps them all, with every other
	// instance's block that Open found.
	KeepUploaded time.Duration
	// Compactor, with ReadOnly, makes the store the compactor of a
	// shared bucket: it takes no writes and holds no log or head, as a
	// querier, but Run takes the bucket's lease (one compactor at a
	// time), syncs with the bucket, compacts the blocks of every
	// instance, and applies retention, deleting in two phases
	// (CompactorOptions.DeletionDelay). Nil for other stores.
	Compactor *CompactorOptions
	// RetentionFor, when set, returns a tenant's retention, which then
	// replaces Retention for it (zero keeps its data forever).
	RetentionFor func(tenant string) time.Duration

	// fs makes every change to local files (checkpoints, and the default
	// bucket's objects), and walFS creates the log's segments: seams for
	// tests that inject disk faults. Nil means the operating system's.
	fs    fsys.FS
	walFS wal.FS
}

// DefaultOptions returns the options of a plain server, without Decode.
func DefaultOptions() Options {
	return Options{
		BlockDuration:    time.Hour,
		MaxHeadBytes:     128 << 20,
		CheckInterval:    10 * time.Second,
		CompactInterval:  time.Minute,
		CompactionRanges: []time.Duration{6 * time.Hour, 24 * time.Hour},
		Retention:        30 * 24 * time.Hour,
		SyncInterval:     15 * time.Second,
	}
}

func (o *Options) setDefaults() {
	d := DefaultOptions()
	if o.BlockDuration <= 0 {
		o.BlockDuration = d.BlockDuration
	}
	if o.MaxHeadBytes <= 0 {
		o.MaxHeadBytes = d.MaxHeadBytes
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = d.CheckInterval
	}
	if o.CompactInterval <= 0 {
		o.CompactInterval = d.CompactInterval
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = d.SyncInterval
	}
	if o.CompactionRanges == nil {
		o.CompactionRanges = d.CompactionRanges
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if c := o.Compactor; c != nil {
		dc := DefaultCompactorOptions()
		if c.LeaseTTL <= 0 {
			c.LeaseTTL = dc.LeaseTTL
		}
		if c.MinBlockAge < 0 {
			c.MinBlockAge = 0
		}
		if c.DeletionDelay < 0 {
			c.DeletionDelay = 0
		}
	}
	if o.fs == nil {
		o.fs = fsys.OS{}
	}
}

// CompactorOptions configure a compactor's store (Options.Compactor).
type CompactorOptions struct {
	// Holder names this compactor in the lease object; "" means the
	// host name and a random suffix.
	Holder string
	// LeaseTTL is how long the lease holds without renewal; its holder
	// renews it every third of it, and a standby takes over when it has
	// expired. Zero means DefaultCompactorOptions' 1m.
	LeaseTTL time.Duration
	// MinBlockAge is how old a block must be (by the time in its ID,
	// when it was cut) before it is compacted: an ingester may still
	// serve its data from memory meanwhile, and a querier that asks it
	// tells the two apart by block ID, which a merge would change.
	// Blocks a compactor made are not held back. Zero holds none back;
	// DefaultCompactorOptions: 10m.
	MinBlockAge time.Duration
	// DeletionDelay is how long a block marked for deletion stays in
	// the bucket before it is deleted: queriers drop a marked block at
	// their next sync, and a query reading it must be done by then.
	// Zero deletes at the next pass; DefaultCompactorOptions: 10m.
	DeletionDelay time.Duration
	// PartialUploadAge is how old (by the time in its ID) a block
	// directory without meta.json and without a deletion mark must be
	// before the compactor deletes it as what an instance killed
	// mid-upload left: younger, it may be an upload in progress, which
	// a deletion would leave without some objects once its meta.json
	// lands. Zero leaves them all. DefaultCompactorOptions: 48h, as
	// Thanos' compactor.
	PartialUploadAge time.Duration
	// Lease is where the lease object is written; nil means
	// Options.Bucket, which must then be a bucket.ConditionalUploader.
	Lease bucket.ConditionalUploader
}

// DefaultCompactorOptions returns the defaults of a compactor.
//
// A querier syncs every 15 s and a query runs at most 2 minutes (the
// default query timeout), so a querier has stopped reading a marked block
// within about 2m15s; 10 minutes leaves room for a few failed syncs.
// Thanos' default of 48 h reflects its store gateways' slower syncs and
// caches of blocks, which Hearth's queriers do not have.
func DefaultCompactorOptions() CompactorOptions {
	return CompactorOptions{LeaseTTL: time.Minute, MinBlockAge: 10 * time.Minute, DeletionDelay: 10 * time.Minute,
		PartialUploadAge: 48 * time.Hour}
}
