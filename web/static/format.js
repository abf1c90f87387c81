// Values as a person reads them, in the unit of the profile type.
export function formatValue(v, unit) {
  const a = Math.abs(v);
  if (unit === "nanoseconds") {
    if (a >= 3600e9) return (v / 3600e9).toFixed(2) + " h";
    if (a >= 60e9) return (v / 60e9).toFixed(2) + " min";
    if (a >= 1e9) return (v / 1e9).toFixed(2) + " s";
    if (a >= 1e6) return (v / 1e6).toFixed(2) + " ms";
    if (a >= 1e3) return (v / 1e3).toFixed(2) + " µs";
    return v + " ns";
  }
  if (unit === "bytes") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, x = v;
    while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return (i ? x.toFixed(2) : x) + " " + units[i];
  }
  const suffix = unit === "count" ? "" : " " + unit;
  if (a >= 1e9) return (v / 1e9).toFixed(2) + " G" + suffix;
  if (a >= 1e6) return (v / 1e6).toFixed(2) + " M" + suffix;
  if (a >= 1e4) return (v / 1e3).toFixed(1) + " k" + suffix;
  return v + suffix;
}

export function percent(x) {
  return (100 * x).toFixed(x < 0.001 ? 3 : 2) + "%";
}

// The package of a Go, Java or C++ function name, for colouring.
export function packageOf(name) {
  let s = name;
  const slash = s.lastIndexOf("/");
  const paren = s.indexOf("(");
  const head = paren > 0 ? s.slice(0, paren) : s;
  const base = head.slice(head.lastIndexOf("/") + 1);
  const dot = base.indexOf(".");
  if (slash >= 0 && dot > 0) return head.slice(0, head.lastIndexOf("/") + 1 + dot);
  if (dot > 0) return base.slice(0, dot);
  const colons = s.lastIndexOf("::");
  if (colons > 0) return s.slice(0, colons);
  return s;
}

// A stable colour per package: the runtime and standard library in greys
// and blues, everything else in warm hues, so that a user's own code
// stands apart.
export function colorFor(name, dark) {
  const pkg = packageOf(name);
  let h = 0;
  for (let i = 0; i < pkg.length; i++) h = (h * 31 + pkg.charCodeAt(i)) >>> 0;
  const std = /^(runtime|internal|sync|syscall|reflect|time|os|io|bufio|bytes|strings|strconv|fmt|net|crypto|encoding|compress|sort|slices|maps|math|unicode|errors|context|hash|regexp)(\/|$)/.test(pkg) || pkg === "total";
  if (std) {
    const l = dark ? 30 + (h % 14) : 72 + (h % 12);
    return `hsl(${205 + (h % 30)}, 18%, ${l}%)`;
  }
  const hue = 10 + (h % 50);
  const l = dark ? 38 + (h % 12) : 62 + (h % 14);
  return `hsl(${hue}, ${70 + (h % 20)}%, ${l}%)`;
}

// sig3 writes x with at most three significant digits and no trailing
// zeros: axis ticks and read-outs, where 412.00 would be noise.
function sig3(x) {
  return String(Number(x.toPrecision(3)));
}

/** formatDuration writes a duration given in nanoseconds in the unit that suits it: 950 µs, 412 ms, 1.49 s. */
export function formatDuration(ns) {
  const a = Math.abs(ns);
  if (a === 0) return "0";
  if (a < 1e3) return sig3(ns) + " ns";
  if (a < 1e6) return sig3(ns / 1e3) + " µs";
  if (a < 1e9) return sig3(ns / 1e6) + " ms";
  if (a < 60e9) return sig3(ns / 1e9) + " s";
  if (a < 3600e9) return sig3(ns / 60e9) + " min";
  return sig3(ns / 3600e9) + " h";
}

/**
 * formatCompact writes a value for an axis or a read-out: durations
 * (unit "ns" as the events API says it, "nanoseconds" as profile types
 * do) in their unit, bytes in binary units, other numbers with k, M, G.
 */
export function formatCompact(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (unit === "ns" || unit === "nanoseconds") return formatDuration(v);
  const a = Math.abs(v);
  if (unit === "bytes") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, x = v;
    while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return sig3(x) + " " + units[i];
  }
  const suffix = !unit || unit === "count" ? "" : " " + unit;
  if (a >= 1e9) return sig3(v / 1e9) + "G" + suffix;
  if (a >= 1e6) return sig3(v / 1e6) + "M" + suffix;
  if (a >= 1e4) return sig3(v / 1e3) + "k" + suffix;
  return (Number.isInteger(v) ? String(v) : sig3(v)) + suffix;
}

/** palette are the colours of lines and groups, in order, readable on the light and the dark theme. */
export const palette = ["#c2410c", "#2563eb", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563", "#dc2626", "#0d9488"];
