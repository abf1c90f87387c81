import { formatValue } from "./format.js";

// SeriesChart draws totals over time as lines and lets the user drag to
// select a range, which it hands to onBrush(fromMs, untilMs).
export class SeriesChart {
  constructor(canvas, legend, onBrush) {
    this.canvas = canvas;
    this.legend = legend;
    this.onBrush = onBrush;
    this.data = null;
    let start = null;
    canvas.addEventListener("mousedown", (e) => { start = this.xOf(e); this.brush = [start, start]; this.draw(); });
    canvas.addEventListener("mousemove", (e) => { if (start !== null) { this.brush = [start, this.xOf(e)]; this.draw(); } });
    window.addEventListener("mouseup", (e) => {
      if (start === null) return;
      const end = this.xOf(e);
      const [a, b] = [Math.min(start, end), Math.max(start, end)];
      start = null;
      this.brush = null;
      if (b - a > 3 && this.data) this.onBrush(this.timeAt(a), this.timeAt(b));
      this.draw();
    });
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  xOf(e) {
    const r = this.canvas.getBoundingClientRect();
    return Math.max(0, Math.min(e.clientX - r.left, r.width));
  }

  timeAt(x) {
    const { from, until } = this.data;
    return from + (x / this.canvas.clientWidth) * (until - from);
  }

  set(result, fromMs, untilMs, unit) {
    this.data = { result, from: fromMs, until: untilMs, unit };
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    c.width = w * dpr; c.height = h * dpr;
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!this.data) return;
    const { result, from, until, unit } = this.data;
    let max = 0;
    for (const s of result.series) for (const p of s.points) max = Math.max(max, p[1]);
    const dark = document.documentElement.classList.contains("dark");
    const colors = ["#c2410c", "#2563eb", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563"];
    const X = (t) => ((t - from) / (until - from)) * w;
    const Y = (v) => h - 4 - (v / (max || 1)) * (h - 12);
    result.series.forEach((s, i) => {
      ctx.strokeStyle = colors[i % colors.length];
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      s.points.forEach((p, j) => (j ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
      ctx.stroke();
    });
    ctx.fillStyle = dark ? "#9a9aa0" : "#6b6b70";
    ctx.font = "11px system-ui";
    if (max > 0) ctx.fillText(formatValue(Math.round(max), unit) + " per step", 4, 10);
    if (this.brush) {
      ctx.fillStyle = dark ? "#fb923c33" : "#c2410c22";
      const [a, b] = this.brush;
      ctx.fillRect(Math.min(a, b), 0, Math.abs(b - a), h);
    }
    this.legend.textContent = result.series.length > 1
      ? result.series.map((s, i) => `■ ${Object.values(s.labels).join(",") || "all"}`).slice(0, 12).join("  ")
      : "";
  }
}
