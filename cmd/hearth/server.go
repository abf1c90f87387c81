package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hearth-profiler/hearth/internal/server"
)

const serverUsage = `usage: hearth server [flags]

Keeps profiles (a write-ahead log, then blocks under --data, or in the
bucket of --config's storage section) and serves the ingest APIs, queries,
the web UI and /metrics on --listen. It profiles itself, and scrapes the
targets of --config.

--target chooses the role: all (the default) does everything; with a
bucket shared by several instances, ingester takes writes and uploads
blocks, querier serves queries over the bucket's blocks and, with
--ingesters, what the ingesters hold that is not in the bucket yet, and
compactor (one at a time, under a lease in the bucket) merges and
expires them.

flags:
`

func runServer(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	cfg.Version = versionName()
	fs := flag.NewFlagSet("hearth server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serverUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "address to serve HTTP on")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "directory for the write-ahead log and blocks")
	fs.Int64Var(&cfg.MaxBodyBytes, "limits.max-body-bytes", cfg.MaxBodyBytes, "largest request body accepted; larger gets 413")
	fs.Int64Var(&cfg.MaxDecompressedBytes, "limits.max-decompressed-bytes", cfg.MaxDecompressedBytes, "most bytes one request may decompress to (gzipped bodies, profiles, JFR recordings); more gets 413")
	fs.Int64Var(&cfg.MaxInflightBytes, "limits.max-inflight-bytes", cfg.MaxInflightBytes, "most bytes held by requests being decoded at once; more gets 429 with Retry-After; 0: no limit")
	fs.IntVar(&cfg.MaxConnections, "limits.max-connections", cfg.MaxConnections, "most open HTTP connections; more wait to be accepted; 0: no limit")
	ev := &cfg.Events
	fs.IntVar(&ev.MaxAttributes, "events.max-attributes", ev.MaxAttributes, "most attributes one event keeps (resource attributes first, then the span's own); the rest are dropped and counted in the answer")
	fs.IntVar(&ev.MaxValueBytes, "events.max-value-bytes", ev.MaxValueBytes, "longest string value of an event (attributes, name, log body), in bytes; longer values are cut and counted in the answer")
	fs.IntVar(&ev.MaxPerRequest, "events.max-per-request", ev.MaxPerRequest, "most events (spans, log records, JSON lines) in one request; more gets 413")
	fs.DurationVar(&cfg.ReadTimeout, "server.read-timeout", cfg.ReadTimeout, "longest time to read one request, body included; 0: no limit")
	fs.DurationVar(&cfg.IdleTimeout, "server.idle-timeout", cfg.IdleTimeout, "how long a kept-alive connection may wait for its next request")
	fs.DurationVar(&cfg.WriteTimeout, "server.write-timeout", cfg.WriteTimeout, "longest time to serve one request, its answer included (queries take up to 2m); 0: no limit")
	// Tenant limits: the limits: section of --config may change them for
	// every tenant or for some; 0 turns each off.
	lim := &cfg.Limits
	fs.IntVar(&lim.MaxSamples, "limits.max-samples", lim.MaxSamples, "most samples in one ingested profile, per tenant; more gets 413")
	fs.IntVar(&lim.MaxStackDepth, "limits.max-stack-depth", lim.MaxStackDepth, "most frames in one stack, per tenant; more gets 413")
	fs.IntVar(&lim.MaxLabels, "limits.max-labels", lim.MaxLabels, "most series labels on one profile, per tenant; more gets 413")
	fs.IntVar(&lim.MaxLabelNameLength, "limits.max-label-name-length", lim.MaxLabelNameLength, "longest label name (series and per-sample labels), in bytes, per tenant; longer gets 413")
	fs.IntVar(&lim.MaxLabelValueLength, "limits.max-label-value-length", lim.MaxLabelValueLength, "longest label value (series and per-sample labels), in bytes, per tenant; longer gets 413")
	fs.IntVar(&lim.MaxSeriesPerTenant, "limits.max-series-per-tenant", lim.MaxSeriesPerTenant, "most series in a tenant's in-memory head; a profile that would add more gets 400, those of existing series are stored")
	fs.Int64Var(&lim.IngestRateBytes, "limits.ingest-rate-bytes", lim.IngestRateBytes, "bytes per second of request bodies a tenant may send, on average; more gets 429 with Retry-After")
	fs.Int64Var(&lim.IngestBurstBytes, "limits.ingest-burst-bytes", lim.IngestBurstBytes, "bytes of request bodies a tenant may send at once above --limits.ingest-rate-bytes")
	fs.IntVar(&lim.QueryMaxSeries, "limits.query-max-series", lim.QueryMaxSeries, "most series one query may read, per tenant; more gets 422")
	fs.Int64Var(&lim.QueryMaxSamples, "limits.query-max-samples", lim.QueryMaxSamples, "most sample rows one query may read, per tenant; more gets 422")
	fs.DurationVar(&lim.QueryTimeout, "limits.query-timeout", lim.QueryTimeout, "longest time one query may run, per tenant; longer gets 422")
	fs.IntVar(&lim.QueryConcurrency, "limits.query-concurrency", lim.QueryConcurrency, "most queries a tenant runs at once; more wait up to 5s, then get 429 with Retry-After")
	fs.Var(durationFlag{&cfg.Retention}, "retention", "how long profiles are kept, e.g. 30d; 0 keeps them forever; the limits: section of --config may set it per tenant (retention:)")
	fs.DurationVar(&cfg.BlockDuration, "storage.block-duration", cfg.BlockDuration, "span of data kept in memory before it is cut into a block (a head without writes for as long is cut too); an ingester's cut period, after which queriers see its data")
	fs.StringVar(&cfg.Target, "target", cfg.Target, "role: all (takes writes, keeps, compacts and expires blocks), ingester (takes writes, uploads blocks to the shared bucket of --config; no compaction, no retention), querier (no writes; serves queries over the bucket's blocks) or compactor (no writes; one at a time under a lease in the bucket, compacts every ingester's blocks and applies retention)")
	cc := &cfg.Compactor
	fs.DurationVar(&cc.Interval, "compactor.interval", cc.Interval, "time between a compactor's passes over the bucket (compaction, retention, deletion of marked blocks)")
	fs.DurationVar(&cc.LeaseTTL, "compactor.lease-ttl", cc.LeaseTTL, "how long a compactor's lease holds unrenewed; the holder renews it every third of it, a standby takes over when it has not changed for this long")
	fs.DurationVar(&cc.MinBlockAge, "compactor.min-block-age", cc.MinBlockAge, "how old an ingester's block must be (since it was cut) before a compactor merges it; more than the time ingesters keep serving an uploaded block from memory")
	fs.DurationVar(&cc.PartialUploadAge, "compactor.partial-upload-age", cc.PartialUploadAge, "how old a block directory without meta.json must be before a compactor deletes it as an upload cut short (a younger one may be in progress); 0 deletes none")
	fs.DurationVar(&cc.DeletionDelay, "compactor.deletion-delay", cc.DeletionDelay, "how long a block marked for deletion (compacted or expired) stays in the bucket, so that queriers drop it first: several --querier.sync-interval and the longest query")
	fs.Int64Var(&cfg.CacheMemoryBytes, "storage.cache.memory-bytes", cfg.CacheMemoryBytes, "bytes of memory that the cache of blocks' files read from an object-store bucket (1 MiB chunks of samples and events) may hold; 0 turns the memory tier off, which makes every small read of a block a read of a chunk from disk")
	fs.Int64Var(&cfg.CacheDiskBytes, "storage.cache.disk-bytes", cfg.CacheDiskBytes, "bytes that the same cache may keep on disk in DATA/cache, which survives restarts; 0 turns the disk tier off; a filesystem bucket is not cached")
	fs.DurationVar(&cfg.BucketReadTimeout, "storage.bucket-read-timeout", cfg.BucketReadTimeout, "longest time one read of a block's samples or events (a 1 MiB chunk of the cache) from an object-store bucket may take; longer fails the query as the bucket not answering; 0: the HTTP client's timeouts; applies while the cache has a tier")
	fs.DurationVar(&cfg.SyncInterval, "querier.sync-interval", cfg.SyncInterval, "how often a querier lists the bucket for blocks uploaded and deleted since; a block is queryable within this long of its upload (at once with --ingesters); keep it below the ingesters' --ingester.keep-uploaded")
	fs.StringVar(&cfg.Ingesters, "ingesters", cfg.Ingesters, "a querier's ingesters, asked in every query for what they hold that is not in the bucket yet: comma-separated host:port, or dns+NAME:PORT for every A/AAAA record of NAME (a Kubernetes headless service); a query fails (502) when one of them does not answer. Empty: the querier serves the bucket's blocks alone")
	fs.DurationVar(&cfg.IngestersRefresh, "querier.ingesters-refresh", server.DefaultIngestersRefresh, "how often a querier resolves the dns+ entries of --ingesters; a failed resolution keeps the last addresses")
	fs.DurationVar(&cfg.IngesterTimeout, "querier.ingester-timeout", server.DefaultIngesterTimeout, "longest a querier waits for one ingester's answer; past it the query fails, naming the ingester")
	fs.Int64Var(&cfg.IngesterMaxBytes, "querier.ingester-max-bytes", server.DefaultIngesterMaxBytes, "largest answer of one ingester (its heads, written as blocks) that a querier holds in memory for a query; larger fails the query")
	fs.DurationVar(&cfg.KeepUploaded, "ingester.keep-uploaded", server.DefaultKeepUploaded, "how long an ingester keeps a block it uploaded in its view (its own queries, and its answers to queriers) before it leaves it to the bucket; must exceed the queriers' --querier.sync-interval, and stay below the compactor's minimum block age. An ingester's own query API serves its heads and these recent blocks only")
	fs.BoolVar(&cfg.WALSync, "wal.fsync", cfg.WALSync, "fsync the write-ahead log on every write (survives power loss; slower)")
	fs.DurationVar(&cfg.SelfProfileInterval, "self-profile.interval", cfg.SelfProfileInterval, "window of Hearth's own profiles; 0 turns self-profiling off")
	fs.BoolVar(&cfg.SelfEvents, "self-events", cfg.SelfEvents, "record Hearth's own requests, block writes, compactions, scrapes and log lines as events of the default tenant")
	fs.StringVar(&cfg.OTLPGRPCAddr, "otlp.grpc.listen", cfg.OTLPGRPCAddr, "address for OTLP gRPC (ProfilesService, TraceService and LogsService Export), over TLS with --tls.cert-file; empty serves it only on --listen, over HTTP/2")
	fs.Float64Var(&cfg.QueryCPUShare, "query.cpu-share", cfg.QueryCPUShare, "share of the CPUs (0 to 1) that queries may use while profiles arrive, so that queries never stall ingest; 1: no holding back")
	fs.StringVar(&cfg.ConfigFile, "config", cfg.ConfigFile, "YAML file with scrape_configs, limits and storage (the bucket of blocks: a directory or S3); re-read on SIGHUP and POST /-/reload, except storage, read at start-up only")
	fs.DurationVar(&cfg.BucketCheckTimeout, "storage.bucket-check-timeout", cfg.BucketCheckTimeout, "how long the check at start-up waits for the bucket of --config's storage section to answer before the start fails")
	fs.StringVar(&cfg.TLS.CertFile, "tls.cert-file", "", "PEM certificate (and intermediates) to serve HTTPS and OTLP gRPC over TLS with; needs --tls.key-file; re-read when it changes")
	fs.StringVar(&cfg.TLS.KeyFile, "tls.key-file", "", "PEM private key of --tls.cert-file")
	fs.StringVar(&cfg.TLS.ClientCAFile, "tls.client-ca-file", "", "PEM certificates of the authorities that sign client certificates; set, every client must present one")
	fs.StringVar(&cfg.TLS.MinVersion, "tls.min-version", "1.2", "oldest TLS version accepted: 1.2 or 1.3")
	fs.StringVar(&cfg.AuthTokensFile, "auth.tokens-file", cfg.AuthTokensFile, "YAML file of the tokens requests must carry (Authorization: Bearer TOKEN); re-read when it changes, on SIGHUP and POST /-/reload; empty: no authentication, anyone who reaches the port reads and writes every tenant")
	fs.BoolVar(&cfg.AuthProtectMetrics, "auth.protect-metrics", cfg.AuthProtectMetrics, "with --auth.tokens-file, /metrics needs a token with the admin scope")
	logLevel := fs.String("log.level", "info", "debug, info, warn or error")
	logFormat := fs.String("log.format", "text", "text or json")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if cfg.QueryCPUShare <= 0 {
		return fmt.Errorf("--query.cpu-share %v: want a share above 0 (1 holds queries back never)", cfg.QueryCPUShare)
	}
	if err := cfg.Limits.Validate(); err != nil {
		return fmt.Errorf("limit flags: %w", err)
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// SIGHUP re-reads the configuration, as Prometheus does. Reload logs
	// its own error, and the old configuration stays. It is caught from
	// the start, so that a SIGHUP during replay does not end the process;
	// until the storage is open there is nothing to reload.
	var running atomic.Pointer[server.Server]
	defer onHangup(ctx, func() {
		if s := running.Load(); s != nil {
			_ = s.Reload()
		}
	})()
	return server.Start(ctx, cfg, logger, running.Store)
}
