import { formatValue, percent, colorFor } from "./format.js";

const ROW = 18;

// FlameGraph draws a call tree on a canvas: icicle (root on top) or flame
// (root at the bottom), zoomable, searchable, with a hover tooltip.
export class FlameGraph {
  constructor(canvas, tooltip, hooks) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.hooks = hooks; // {onZoom(path), onHover(name|null)}
    this.root = null;
    this.flame = false;
    this.search = "";
    this.highlight = null; // a function name to outline (from the table)
    this.zoomed = null;
    this.frames = []; // what was drawn: {name, x, y, w, node}
    canvas.addEventListener("mousemove", (e) => this.onMove(e));
    canvas.addEventListener("mouseleave", () => { this.tooltip.hidden = true; this.hooks.onHover(null); });
    canvas.addEventListener("click", (e) => {
      const f = this.frameAt(e);
      if (f) this.zoom(f.node);
    });
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  // set takes a flame graph answer of the API and the zoom path to show.
  set(fg, path) {
    this.fg = fg;
    this.root = fg && fg.root;
    if (this.root) {
      this.nodeCount = link(this.root, null, 0);
      this.depth = maxDepth(this.root);
    }
    this.zoomTo(path);
  }

  zoom(node) {
    this.zoomed = node || this.root;
    this.draw();
    this.hooks.onZoom(pathOf(this.zoomed));
  }

  // zoomTo follows a path of names from the root, as a URL stores it.
  zoomTo(path) {
    let n = this.root;
    if (!n) { this.zoomed = null; this.draw(); return; }
    for (const name of path || []) {
      const c = n && (n.children || []).find((c) => c.name === name);
      if (!c) break;
      n = c;
    }
    this.zoomed = n || this.root;
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const width = c.parentElement.clientWidth - 16;
    const t0 = performance.now();
    this.frames = [];
    if (!this.root) {
      c.width = width * dpr; c.height = 0; c.style.height = "0px";
      return;
    }
    const height = (this.depth + 1) * ROW;
    c.width = width * dpr; c.height = height * dpr;
    c.style.width = width + "px"; c.style.height = height + "px";
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px ui-monospace, monospace";
    ctx.textBaseline = "middle";
    this.charWidth = ctx.measureText("MMMMMMMMMM").width / 10;
    const dark = document.documentElement.classList.contains("dark");
    const z = this.zoomed;
    const scale = width / Math.max(z.total, 1);
    const search = this.search.toLowerCase();
    const y = (d) => (this.flame ? height - (d + 1) * ROW : d * ROW);
    // The zoomed node's ancestors are drawn full width above it.
    for (let a = z.parent, d = z.depth - 1; a; a = a.parent, d--) {
      this.rect(ctx, a, 0, y(d), width, dark, search, true);
    }
    const walk = (n, x) => {
      const w = n.total * scale;
      if (w < 0.5) return;
      this.rect(ctx, n, x, y(n.depth), w, dark, search, false);
      let cx = x + n.self * scale;
      for (const ch of n.children || []) {
        walk(ch, cx);
        cx += ch.total * scale;
      }
    };
    walk(z, 0);
    // The share counts every matching node of the whole tree, drawn or
    // too narrow to draw, each stack once.
    this.matchedShare = search ? matchedTotal(this.root, search) / Math.max(this.root.total, 1) : null;
    this.drawMillis = performance.now() - t0;
  }

  rect(ctx, n, x, y, w, dark, search, ancestor) {
    const match = search && n.name.toLowerCase().includes(search);
    let fill = n.name === "other" ? (dark ? "#3a3a40" : "#d8d6d2") : colorFor(n.name, dark);
    if (n.diff !== undefined) fill = diffColor(n.diff, dark);
    if (search && !match) fill = dark ? "#2a2a30" : "#ecebe8";
    if (match) fill = dark ? "#ca8a04" : "#facc15";
    ctx.globalAlpha = ancestor ? 0.55 : 1;
    ctx.fillStyle = fill;
    ctx.fillRect(x, y + 1, Math.max(w - 1, 0.5), ROW - 2);
    if (this.highlight && n.name === this.highlight) {
      ctx.strokeStyle = dark ? "#fff" : "#000";
      ctx.lineWidth = 2;
      ctx.strokeRect(x + 1, y + 2, Math.max(w - 3, 1), ROW - 4);
    }
    ctx.globalAlpha = 1;
    if (w > 30) {
      // Cut the label to the characters that fit: measuring once per
      // draw is far cheaper than clipping each rectangle.
      const fit = Math.floor((w - 6) / this.charWidth);
      if (fit > 0) {
        ctx.fillStyle = dark ? "#f4f4f5" : "#1d1d1f";
        ctx.fillText(n.name.length > fit ? n.name.slice(0, Math.max(fit - 1, 1)) + "…" : n.name, x + 3, y + ROW / 2);
      }
    }
    this.frames.push({ name: n.name, x, y, w, node: n, match: !!match });
    return match;
  }

  frameAt(e) {
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const f = this.frames[i];
      if (x >= f.x && x < f.x + f.w && y >= f.y && y < f.y + ROW) return f;
    }
    return null;
  }

  onMove(e) {
    const f = this.frameAt(e);
    const tt = this.tooltip;
    if (!f) { tt.hidden = true; this.hooks.onHover(null); return; }
    const n = f.node, unit = this.fg.unit, total = this.root.total;
    tt.innerHTML = "";
    const b = document.createElement("b");
    b.textContent = n.name;
    if (n.diff !== undefined) {
      const fg = this.fg;
      tt.append(b, document.createElement("br"),
        `baseline ${formatValue(n.bTotal, unit)} (${percent(n.bTotal / Math.max(fg.baselineTotal, 1))})`, document.createElement("br"),
        `comparison ${formatValue(n.cTotal, unit)} (${percent(n.cTotal / Math.max(fg.comparisonTotal, 1))})`, document.createElement("br"),
        `change ${n.diff >= 0 ? "+" : ""}${(100 * n.diff).toFixed(2)} points of the total`);
    } else {
      tt.append(b, document.createElement("br"),
        `total ${formatValue(n.total, unit)} (${percent(n.total / total)})`, document.createElement("br"),
        `self ${formatValue(n.self, unit)} (${percent(n.self / total)})`);
    }
    tt.hidden = false;
    tt.style.left = Math.min(e.clientX + 12, window.innerWidth - 300) + "px";
    tt.style.top = e.clientY + 14 + "px";
    this.hooks.onHover(n.name);
  }
}

// link gives each node its parent and depth, and returns the node count.
function link(n, parent, depth) {
  n.parent = parent;
  n.depth = depth;
  let count = 1;
  for (const c of n.children || []) count += link(c, n, depth + 1);
  return count;
}

function maxDepth(n) {
  let d = n.depth;
  for (const c of n.children || []) d = Math.max(d, maxDepth(c));
  return d;
}

function pathOf(n) {
  const p = [];
  for (; n && n.parent; n = n.parent) p.unshift(n.name);
  return p;
}

function matchedTotal(n, search) {
  if (n.parent && n.name.toLowerCase().includes(search)) return n.total;
  let s = 0;
  for (const c of n.children || []) s += matchedTotal(c, search);
  return s;
}

// diffColor: red where a frame's share of the total grew, green where it
// shrank, grey where it stayed; d is the change in share (-1..1).
function diffColor(d, dark) {
  const k = Math.min(Math.abs(d) / 0.05, 1); // 5 points of the total is full colour
  if (Math.abs(d) < 0.0005) return dark ? "#4b4b52" : "#d4d4d8";
  const l = dark ? 45 - 15 * k : 85 - 35 * k;
  return d > 0 ? `hsl(0, 75%, ${l}%)` : `hsl(140, 60%, ${l}%)`;
}

// diffTree turns the API's diff answer into a tree drawable by FlameGraph:
// widths are the mean of both sides' shares, so that a frame present on
// one side only still shows, and diff is the change in share.
export function diffTree(d) {
  const bt = Math.max(d.baselineTotal, 1), ct = Math.max(d.comparisonTotal, 1);
  const scale = 1e9;
  const conv = (n) => ({
    name: n.name,
    total: Math.round(scale * (n.baselineTotal / bt + n.comparisonTotal / ct) / 2),
    self: Math.round(scale * (n.baselineSelf / bt + n.comparisonSelf / ct) / 2),
    bTotal: n.baselineTotal, cTotal: n.comparisonTotal,
    diff: n.comparisonTotal / ct - n.baselineTotal / bt,
    children: (n.children || []).map(conv),
  });
  return conv(d.root);
}
