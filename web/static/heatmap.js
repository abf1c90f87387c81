import { formatDuration } from "./format.js";

// Margins of the plot inside the canvas, in CSS pixels: room for the
// duration labels on the left and the times below.
const M = { left: 62, right: 10, top: 8, bottom: 22 };

const niceSteps = [1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3, 172800e3, 604800e3];

/**
 * Heatmap draws how many events took how long, per time step: columns
 * are the steps, rows the duration buckets of the events API (four per
 * power of two, so rows of equal height make a log duration axis), and
 * the colour of a cell the number of events in it. Dragging a box hands
 * it, snapped to whole steps and buckets, to onBox({fromMs, untilMs,
 * minNs, maxNs}); maxNs is null when the box reaches the top row, so that
 * it holds every slower event too.
 */
export class Heatmap {
  constructor(canvas, tooltip, { onBox }) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.onBox = onBox;
    this.data = null;
    this.box = null; // the selection, {fromMs, untilMs, minNs, maxNs}
    this.drag = null; // [x0, y0, x1, y1] while dragging, in CSS pixels
    canvas.addEventListener("mousedown", (e) => {
      if (!this.data || !this.inPlot(this.pos(e))) return;
      e.preventDefault();
      const [x, y] = this.pos(e);
      this.drag = [x, y, x, y];
      this.draw();
    });
    canvas.addEventListener("mousemove", (e) => {
      const p = this.pos(e);
      if (this.drag) { this.drag[2] = p[0]; this.drag[3] = p[1]; this.draw(); }
      this.hover(e, p);
    });
    canvas.addEventListener("mouseleave", () => { this.tooltip.hidden = true; });
    window.addEventListener("mouseup", (e) => {
      if (!this.drag) return;
      const [x0, y0] = this.drag;
      const [x1, y1] = this.clamp(this.pos(e));
      this.drag = null;
      if (Math.abs(x1 - x0) > 3 && Math.abs(y1 - y0) > 3) {
        this.box = this.boxOf(Math.min(x0, x1), Math.max(x0, x1), Math.max(y0, y1), Math.min(y0, y1));
        this.draw();
        this.onBox(this.box);
      } else {
        this.draw();
      }
    });
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  /**
   * set shows a heatmap: times (Unix ms, the steps' starts), stepMs,
   * buckets [{lo, hi}] in nanoseconds, counts[time][bucket], over
   * [fromMs, untilMs].
   */
  set(data) {
    this.data = data && data.buckets.length ? data : null;
    if (this.data) {
      let max = 0;
      for (const col of data.counts) for (const c of col) if (c > max) max = c;
      this.data.max = max;
    }
    this.draw();
  }

  pos(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  plot() {
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    return { left: M.left, top: M.top, width: Math.max(1, w - M.left - M.right), height: Math.max(1, h - M.top - M.bottom) };
  }

  inPlot([x, y]) {
    const p = this.plot();
    return x >= p.left && x <= p.left + p.width && y >= p.top && y <= p.top + p.height;
  }

  clamp([x, y]) {
    const p = this.plot();
    return [Math.max(p.left, Math.min(x, p.left + p.width)), Math.max(p.top, Math.min(y, p.top + p.height))];
  }

  // X and timeAt map times to pixels and back.
  X(t) { const p = this.plot(), d = this.data; return p.left + ((t - d.from) / (d.until - d.from)) * p.width; }
  timeAt(x) { const p = this.plot(), d = this.data; return d.from + ((x - p.left) / p.width) * (d.until - d.from); }

  // rowPos is a duration's position in rows from the bottom: bucket i
  // spans [i, i+1), and within it the position is logarithmic.
  rowPos(ns) {
    const b = this.data.buckets;
    if (ns <= b[0].lo) return 0;
    for (let i = 0; i < b.length; i++) {
      if (ns < b[i].hi || i === b.length - 1) {
        if (b[i].hi <= b[i].lo || b[i].lo <= 0) return i;
        return i + Math.min(1, Math.log(ns / b[i].lo) / Math.log(b[i].hi / b[i].lo));
      }
    }
    return b.length;
  }

  Y(ns) { const p = this.plot(); return p.top + p.height - (this.rowPos(ns) / this.data.buckets.length) * p.height; }
  rowAt(y) { const p = this.plot(); return ((p.top + p.height - y) / p.height) * this.data.buckets.length; }

  /** point is where a time (ms) and a duration (ns) are drawn, in CSS pixels from the canvas' top left. */
  point(ms, ns) { return this.data ? { x: this.X(ms), y: this.Y(ns) } : null; }

  /** geometry is the plot area in CSS pixels from the canvas' top left. */
  geometry() { return this.data ? this.plot() : null; }

  boxOf(x0, x1, yBottom, yTop) {
    const d = this.data, n = d.buckets.length;
    const step = d.stepMs;
    const fromMs = Math.max(d.from, Math.floor(this.timeAt(x0) / step) * step);
    const untilMs = Math.min(d.until, Math.ceil(this.timeAt(x1) / step) * step);
    const lo = Math.max(0, Math.min(n - 1, Math.floor(this.rowAt(yBottom))));
    const hi = Math.max(lo + 1, Math.min(n, Math.ceil(this.rowAt(yTop))));
    return {
      fromMs: Math.floor(fromMs), untilMs: Math.ceil(untilMs),
      minNs: Math.floor(d.buckets[lo].lo),
      maxNs: hi >= n ? null : Math.ceil(d.buckets[hi].lo),
    };
  }

  hover(e, p) {
    const tip = this.tooltip;
    if (!this.data || this.drag || !this.inPlot(p)) { tip.hidden = true; return; }
    const d = this.data;
    const row = Math.floor(this.rowAt(p[1]));
    const t = this.timeAt(p[0]);
    const col = d.times.findIndex((s) => t >= s && t < s + d.stepMs);
    if (row < 0 || row >= d.buckets.length || col < 0) { tip.hidden = true; return; }
    const b = d.buckets[row];
    const n = d.counts[col][row] || 0;
    const when = new Date(d.times[col]).toLocaleTimeString();
    tip.textContent = `${n} event${n === 1 ? "" : "s"} · ${b.hi <= b.lo ? formatDuration(b.lo) : formatDuration(b.lo) + " – " + formatDuration(b.hi)} · from ${when}`;
    tip.hidden = false;
    tip.style.left = e.clientX + 12 + "px";
    tip.style.top = e.clientY + 12 + "px";
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!this.data) return;
    const d = this.data, p = this.plot();
    const css = getComputedStyle(document.documentElement);
    const muted = css.getPropertyValue("--muted").trim() || "#6b6b70";
    const line = css.getPropertyValue("--line").trim() || "#e2e0dc";
    const accent = css.getPropertyValue("--accent").trim() || "#c2410c";
    const dark = document.documentElement.classList.contains("dark");
    const n = d.buckets.length, rowH = p.height / n;

    // Cells: the colour's strength grows with the log of the count, so
    // that a few slow events still show beside thousands of fast ones.
    const scale = Math.log1p(d.max || 1);
    ctx.save();
    ctx.beginPath();
    ctx.rect(p.left, p.top, p.width, p.height);
    ctx.clip();
    d.times.forEach((t, i) => {
      const x0 = this.X(t), x1 = this.X(t + d.stepMs);
      d.counts[i].forEach((cnt, j) => {
        if (!cnt) return;
        const f = Math.log1p(cnt) / scale;
        const l = dark ? 22 + 50 * f : 90 - 55 * f;
        ctx.fillStyle = `hsl(218, ${55 + 35 * f}%, ${l}%)`;
        const y = p.top + p.height - (j + 1) * rowH;
        ctx.fillRect(x0, y, Math.max(1, x1 - x0 - 0.5), Math.max(1, rowH - 0.5));
      });
    });
    ctx.restore();

    // Axes: durations at 1, 2, 5 × 10^k on the left, times below.
    ctx.strokeStyle = line;
    ctx.lineWidth = 1;
    ctx.strokeRect(p.left + 0.5, p.top + 0.5, p.width - 1, p.height - 1);
    ctx.fillStyle = muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const lo = d.buckets[0].lo, hi = d.buckets[n - 1].hi;
    let lastY = Infinity;
    if (lo <= 0) { ctx.fillText("0", p.left - 6, p.top + p.height - rowH / 2); lastY = p.top + p.height - rowH / 2; }
    for (let e = 0; e <= 13; e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v < lo || v > hi) continue;
        const y = this.Y(v);
        if (lastY - y < 16) continue;
        lastY = y;
        ctx.fillText(formatDuration(v), p.left - 6, y);
        ctx.beginPath();
        ctx.moveTo(p.left - 3, Math.round(y) + 0.5);
        ctx.lineTo(p.left, Math.round(y) + 0.5);
        ctx.stroke();
      }
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const span = d.until - d.from;
    const tick = niceSteps.find((s) => (s / span) * p.width >= 90) || niceSteps[niceSteps.length - 1];
    const long = span > 2 * 86400e3;
    const tz = new Date().getTimezoneOffset() * 6e4;
    for (let t = Math.ceil((d.from - tz) / tick) * tick + tz; t <= d.until; t += tick) {
      const x = this.X(t);
      const dt = new Date(t);
      const label = long ? dt.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + dt.toTimeString().slice(0, 5) : dt.toTimeString().slice(0, tick < 60e3 ? 8 : 5);
      ctx.fillText(label, x, p.top + p.height + 5);
      ctx.beginPath();
      ctx.moveTo(Math.round(x) + 0.5, p.top + p.height);
      ctx.lineTo(Math.round(x) + 0.5, p.top + p.height + 3);
      ctx.stroke();
    }

    // The box: being dragged, or the selection compared.
    let r = null;
    if (this.drag) {
      const [x0, y0, x1, y1] = this.drag;
      const [cx1, cy1] = this.clamp([x1, y1]);
      r = [Math.min(x0, cx1), Math.min(y0, cy1), Math.abs(cx1 - x0), Math.abs(cy1 - y0)];
    } else if (this.box) {
      const b = this.box;
      const x0 = Math.max(p.left, this.X(b.fromMs)), x1 = Math.min(p.left + p.width, this.X(b.untilMs));
      const yb = this.Y(b.minNs), yt = b.maxNs == null ? p.top : this.Y(b.maxNs);
      r = [x0, yt, x1 - x0, yb - yt];
    }
    if (r) {
      ctx.fillStyle = dark ? "#fb923c22" : "#c2410c18";
      ctx.fillRect(...r);
      ctx.strokeStyle = accent;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(...r);
    }
  }
}
