package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

func writeJSON(path string, res *result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// printTable writes the figures for people: one line each, with its unit.
func printTable(out io.Writer, res *result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", name, fmt.Sprintf(format, args...))
	}
	section := func(name string) { fmt.Fprintf(tw, "\n%s\t\n", name) }

	w := res.Workload
	fmt.Fprintf(tw, "command\t%s\n", res.Command)
	h := res.Hearth
	row("hearth", "%s (built from %s, modified %s; working tree %s, modified %t)", h.Path,
		orDash(h.Revision), orDash(h.Modified), orDash(h.TreeRevision), h.TreeModified)
	row("machine", "%s, %d CPUs, %s", res.Machine.OS, res.Machine.NumCPU, res.Machine.GoVersion)
	row("corpus", "%s: %d windows, %d bytes, CPU samples %d–%d, heap samples %d–%d", res.Corpus.Dir, res.Corpus.Windows,
		res.Corpus.Bytes, res.Corpus.CPUSamples[0], res.Corpus.CPUSamples[1], res.Corpus.HeapSamples[0], res.Corpus.HeapSamples[1])
	row("workload", "%d services × %d windows of %d s (CPU + heap), svc-long %d CPU windows, %d clients, ending %s",
		w.Services, w.Ticks, w.WindowSeconds, w.LongTicks, w.Workers, w.EndTime)
	row("bodies prepared", "%.1f s (before the clock)", res.PrepareSeconds)

	section("INGEST")
	for _, ph := range append(append([]ingestPhase(nil), res.Ingest...), res.IngestTotal) {
		row(ph.Name, "%d profiles, %.1f MB in %.2f s: %.0f profiles/s, %.2f MB/s; p50 %.1f ms, p99 %.1f ms; %d errors",
			ph.Requests, float64(ph.PayloadBytes)/1e6, ph.WallSeconds, ph.ProfilesPerSecond, ph.PayloadMBPerSec,
			ph.LatencyP50Ms, ph.LatencyP99Ms, ph.Errors)
		row("  server CPU", "%.2f s: %.2f ms per profile; per core %.0f profiles/s, %.2f MB/s; %.2f cores busy (machine %.2f, driver %.2f s)",
			ph.ServerCPUSeconds, ph.ServerCPUMsPerProfile, ph.ProfilesPerCoreSecond, ph.PayloadMBPerCoreSecond,
			ph.ServerCores, ph.MachineBusyCores, ph.DriverCPUSeconds)
	}
	row("sample rows sent", "%d (per type), %d (per stack)", res.IngestTotal.SampleRows, res.IngestTotal.StackRows)

	section("MEMORY (server RSS)")
	m := res.Memory
	row("empty, just started", "%.0f MiB", m.StartMiB)
	row("peak while ingesting", "%.0f MiB (sampled every 100 ms; VmHWM %.0f MiB)", m.PeakIngestMiB, m.HWMAfterIngestMiB)
	row("at rest", "%.0f MiB after %.0f s idle (server CPU meanwhile %.2f s)", m.RestMiB, m.RestSeconds, m.RestCPUSeconds)
	row("after restart", "%.0f MiB", m.RestartMiB)
	row("peak during queries", "%.0f MiB", m.PeakQueriesMiB)

	section("DISK")
	row("flush", "%s", flushLabel(res.Flush))
	if d := res.DiskAfterFlush; d != nil {
		diskRows(row, "after flush", d)
	}
	diskRows(row, "after shutdown", &res.Disk)
	if res.S3 != nil {
		row("bucket (S3)", "%s on %s: %.1f MiB, %.0f bytes per profile", res.S3.Bucket, res.S3.Endpoint, float64(res.S3.BucketBytes)/(1<<20), res.S3.BucketBytesPerProfile)
	}

	section("START")
	row("empty data dir to ready", "%.3f s", res.StartEmptySeconds)
	row("shutdown (SIGTERM)", "%.3f s", res.ShutdownSeconds)
	row("restart to ready", "%.3f s (with all the data)", res.RestartToReadySeconds)

	section("QUERIES (cold = first call after a start; warm = median of repeats)")
	for _, q := range res.Queries {
		row(q.Name, "cold %.1f ms, warm %.1f ms; server CPU cold %.1f ms, warm %.1f ms", q.ColdMs, q.WarmMedianMs, q.ColdServerCPUMs, q.WarmServerCPUMsMedian)
		detail := fmt.Sprintf("%d bytes", q.ResponseBytes)
		if q.Series > 0 {
			detail += fmt.Sprintf(", %d series, %d points", q.Series, q.Points)
		} else {
			detail += fmt.Sprintf(", total %d, %d nodes (truncated %t)", q.Total, q.NumNodes, q.Truncated)
			if q.ExpectedTotal != 0 {
				detail += fmt.Sprintf(" (sent %d)", q.ExpectedTotal)
			}
		}
		if q.StartToReadySeconds > 0 {
			detail += fmt.Sprintf("; started in %.3f s", q.StartToReadySeconds)
		}
		if b := q.StartBucket; b != nil {
			detail += fmt.Sprintf("; bucket at start %d requests (%d GETs), %.2f MiB", b.Ops, b.Gets, float64(b.Bytes)/(1<<20))
		}
		if b := q.ColdBucket; b != nil {
			detail += fmt.Sprintf("; bucket cold %d requests (%d GETs), %.2f MiB", b.Ops, b.Gets, float64(b.Bytes)/(1<<20))
		}
		if b := q.WarmBucket; b != nil {
			detail += fmt.Sprintf(", warm %d requests (%d GETs), %.2f MiB", b.Ops, b.Gets, float64(b.Bytes)/(1<<20))
		}
		if q.Error != "" {
			detail += "; ERROR " + q.Error
		}
		row("", "%s", detail)
	}
	if len(res.Notes) > 0 {
		section("NOTES")
		for _, n := range res.Notes {
			row("-", "%s", n)
		}
	}
	tw.Flush()
}

func diskRows(row func(string, string, ...any), name string, d *diskUsage) {
	row(name, "%d bytes (blocks %d, log %d) in %d files, %d blocks", d.AllBytes, d.BlocksBytes, d.WALBytes, d.Files, d.Blocks)
	row("  per sample row", "blocks %.2f B, all %.2f B (per stack row: blocks %.2f B, all %.2f B); %.0f B per profile",
		d.BlocksBytesPerRow, d.AllBytesPerRow, d.BlocksBytesPerStackRow, d.AllBytesPerStackRow, d.AllBytesPerProfile)
}

func flushLabel(f hearthproc.FlushInfo) string {
	if f.Method == "endpoint" {
		return fmt.Sprintf("admin endpoint, %.3f s", f.Seconds)
	}
	return fmt.Sprintf("no endpoint (status %d); SIGTERM shutdown only", f.Status)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
