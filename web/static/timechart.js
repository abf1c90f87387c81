import { formatCompact, palette } from "./format.js";

// uPlot is loaded by a classic <script> (vendor/uPlot.iife.min.js) before
// the page's modules, as the global window.uPlot.
const uPlot = window.uPlot;

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });

/**
 * TimeChart draws values over time as lines, one per series, with a time
 * axis, a value axis in the data's unit and a legend that reads out each
 * series' value under the cursor. With onBrush, dragging across the chart
 * hands the dragged range to onBrush(fromMs, untilMs) instead of zooming.
 */
export class TimeChart {
  constructor(el, { legend = null, height = 160, onBrush = null, spanGaps = false, sync = "" } = {}) {
    this.el = el;
    this.sync = sync;
    this.legend = legend;
    this.height = height;
    this.onBrush = onBrush;
    this.spanGaps = spanGaps;
    this.u = null;
    this.data = null;
    this.width = 0;
    this.resize = new ResizeObserver(() => {
      const w = this.el.clientWidth;
      if (this.u && w && w !== this.width) { this.width = w; this.u.setSize({ width: w, height: this.height }); }
    });
    this.resize.observe(el);
  }

  /** destroy removes the chart and stops following its container's size. */
  destroy() {
    this.resize.disconnect();
    if (this.u) { this.u.destroy(); this.u = null; }
  }

  /**
   * set shows series over times: times in Unix milliseconds, each series
   * {label, values} with one value per time (null for none), all in unit.
   */
  set({ times, series, unit = "", yLabel = "", from = null, until = null, integer = false }) {
    this.data = { times, series, unit, yLabel, from, until, integer };
    this.draw();
  }

  /** draw builds the chart again from the data, in the current theme's colours. */
  draw() {
    if (this.u) { this.u.destroy(); this.u = null; }
    if (this.legend) this.legend.replaceChildren();
    if (!this.data) return;
    const { times, series, unit, yLabel, from, until, integer } = this.data;
    const fg = cssVar("--muted") || "#6b6b70";
    const grid = cssVar("--line") || "#e2e0dc";
    const fmt = (v) => formatCompact(v, unit);
    const axisFont = "11px system-ui, sans-serif";
    const opts = {
      width: this.el.clientWidth || 600,
      height: this.height,
      padding: [8, 12, 0, 4],
      legend: this.legend ? { live: true, mount: (self, el) => this.legend.append(el) } : { live: true },
      cursor: {
        drag: { x: !!this.onBrush, y: false, setScale: false },
        points: { size: 6 },
        // Charts of one page move their cursors together.
        ...(this.sync ? { sync: { key: this.sync, setSeries: false } } : {}),
      },
      scales: {
        // The whole range asked for, so that charts of one page line up
        // and a quiet end of the range shows as quiet.
        x: { time: true, range: (u, min, max) => [from != null ? Math.min(from / 1000, min ?? Infinity) : min, until != null ? Math.max(until / 1000, max ?? -Infinity) : max] },
        // From 0: a count or a duration read against 0 is not exaggerated.
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.08 : 1] },
      },
      axes: [
        { stroke: fg, font: axisFont, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
        { stroke: fg, font: axisFont, size: 64, space: 18, label: yLabel || undefined,
          // Counts tick at whole numbers: 2.5 events is no reading.
          ...(integer ? { incrs: wholeIncrements } : {}), labelFont: axisFont, labelSize: yLabel ? 16 : 0,
          values: (u, ticks) => ticks.map(fmt), grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
      ],
      series: [
        { label: "time", value: (u, v) => (v == null ? "–" : timeFormat.format(new Date(v * 1000))) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: palette[i % palette.length],
          width: 1.5,
          spanGaps: this.spanGaps,
          points: { show: (u, si) => countShown(u.data[si]) < 40 },
          value: (u, v) => fmt(v),
        })),
      ],
      hooks: {
        setSelect: [(u) => {
          if (!this.onBrush || u.select.width < 3) return;
          const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          this.onBrush(a * 1000, b * 1000);
        }],
      },
    };
    const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)];
    this.width = opts.width;
    this.u = new uPlot(opts, data, this.el);
    // A long label is cut in the legend: its title keeps it whole.
    for (const label of (this.legend || this.u.root).querySelectorAll(".u-series .u-label")) label.title = label.textContent;
  }

  /** readout is what the legend shows: the time and each series' label and value at the cursor. */
  readout() {
    if (!this.u) return null;
    const rows = [...(this.legend || this.u.root).querySelectorAll(".u-series")];
    return rows.map((tr) => ({ label: tr.querySelector(".u-label")?.textContent || "", value: tr.querySelector(".u-value")?.textContent || "" }));
  }

  /** axes are the tick labels drawn on each axis, for tests and screen readers' summaries. */
  axes() {
    if (!this.u) return null;
    return this.u.axes.map((a) => (a._values || []).slice());
  }
}

const wholeIncrements = [];
for (let e = 0; e < 16; e++) for (const m of [1, 2, 5]) wholeIncrements.push(m * 10 ** e);

function countShown(values) {
  let n = 0;
  for (const v of values) if (v != null) n++;
  return n;
}
