import { TimeChart } from "./timechart.js";
import { formatDuration } from "./format.js";

// SeriesChart draws the profile totals over time (one line per group of
// the group-by label) with axes in the profile's unit and a read-out of
// the values under the cursor, and lets the user drag to select a range,
// which it hands to onBrush(fromMs, untilMs).
export class SeriesChart {
  constructor(el, legend, onBrush) {
    this.chart = new TimeChart(el, { legend, height: 140, onBrush, spanGaps: true });
  }

  /** set shows the answer of /api/v1/query/series over [fromMs, untilMs], in unit. */
  set(result, fromMs, untilMs, unit) {
    // Points are only for steps with data, and each series has its own:
    // the chart takes one time axis, so missing points are gaps, which
    // the lines span.
    const times = [...new Set(result.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
    const at = new Map(times.map((t, i) => [t, i]));
    const series = result.series.map((s) => {
      const values = new Array(times.length).fill(null);
      for (const [t, v] of s.points) values[at.get(t)] = v;
      return { label: Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "total", values };
    });
    const step = result.stepMs ? formatDuration(result.stepMs * 1e6) : "";
    this.chart.set({ times, series, unit, yLabel: step ? `per ${step}` : "", from: fromMs, until: untilMs });
  }

  draw() { this.chart.draw(); }

  /** readout is the legend's read-out at the cursor: [{label, value}], the time first. */
  readout() { return this.chart.readout(); }

  /** axes are the tick labels of the time axis and of the value axis. */
  axes() { return this.chart.axes(); }
}
