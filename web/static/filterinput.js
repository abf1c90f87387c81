// Completion for an events filter typed in TraceQL's span syntax: field
// names where a condition starts, operators after a field, and the most
// common values after an operator, offered in a list under the input.

// A field as filters name it, unquoted (quoted names are typed by hand).
const FIELD = String.raw`[A-Za-z_.:][^\s{}()=~!<>&|^,"]*`;
const ops = ["=", "!=", ">", "<", ">=", "<=", "=~", "!~"];
const fixedValues = {
  status: ["error", "ok", "unset"],
  kind: ["server", "client", "producer", "consumer", "internal", "unspecified"],
};
fixedValues["span:status"] = fixedValues.status;
fixedValues["span:kind"] = fixedValues.kind;

/**
 * context says what the text before the cursor is in the middle of:
 * {kind: "field", start, prefix}, {kind: "op", field, start},
 * {kind: "value", field, op, start, prefix, quoted} or null, where start
 * is the offset that a completion replaces from.
 */
export function context(before) {
  let m = new RegExp(`(?:^|[\\s{(&|!])(${FIELD})\\s*(!=|=~|!~|>=|<=|=|>|<)\\s*("[^"]*|[^\\s"{}()&|]*)$`).exec(before);
  if (m) {
    const prefix = m[3];
    return { kind: "value", field: m[1], op: m[2], start: before.length - prefix.length, prefix: prefix.replace(/^"/, ""), quoted: prefix.startsWith("\"") };
  }
  m = new RegExp(`(?:^|[\\s{(&|!])(${FIELD})\\s+$`).exec(before);
  if (m && !/^(true|false|nil)$/.test(m[1])) return { kind: "op", field: m[1], start: before.length };
  m = new RegExp(`(${FIELD})?$`).exec(before);
  const prefix = m[1] || "";
  const rest = before.slice(0, before.length - prefix.length).trimEnd();
  if (rest === "" || /(\{|\(|&&|\|\||!)$/.test(rest)) return { kind: "field", start: before.length - prefix.length, prefix, braced: rest.includes("{") };
  return null;
}

/** valueLiteral writes a value as a filter reads it: strings quoted, numbers and booleans as they are. */
export function valueLiteral(v, field) {
  if (v === null || v === undefined) return "nil";
  if (typeof v === "string") return fixedValues[field] && fixedValues[field].includes(v) ? v : JSON.stringify(v);
  return String(v);
}

/**
 * FilterInput adds completion to an input: fields(), a promise of
 * [{key, type}], and values(field), a promise of [{value, count}], supply
 * the offers; Enter with no list open calls onRun.
 */
export class FilterInput {
  constructor(input, list, { fields, values, onRun }) {
    this.input = input;
    this.list = list;
    this.fields = fields;
    this.values = values;
    this.onRun = onRun;
    this.items = [];
    this.active = -1;
    this.seq = 0;
    input.addEventListener("input", () => this.update());
    input.addEventListener("click", () => this.update());
    input.addEventListener("focus", () => this.update());
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    input.addEventListener("keydown", (e) => this.key(e));
  }

  key(e) {
    const open = !this.list.hidden && this.items.length;
    if (e.key === "ArrowDown" && open) { e.preventDefault(); this.move(1); return; }
    if (e.key === "ArrowUp" && open) { e.preventDefault(); this.move(-1); return; }
    if (e.key === "Escape" && open) { e.preventDefault(); this.close(); return; }
    if ((e.key === "Enter" || e.key === "Tab") && open && this.active >= 0) {
      e.preventDefault();
      this.accept(this.items[this.active]);
      return;
    }
    if (e.key === "Enter") { e.preventDefault(); this.close(); this.onRun(); }
  }

  move(d) {
    this.active = (this.active + d + this.items.length) % this.items.length;
    this.renderActive();
  }

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.items = [];
    this.active = -1;
  }

  async update() {
    const seq = ++this.seq;
    const pos = this.input.selectionStart ?? this.input.value.length;
    const before = this.input.value.slice(0, pos);
    const ctx = context(before);
    if (!ctx) { this.close(); return; }
    let items = [];
    try {
      if (ctx.kind === "field") {
        const fs = await this.fields();
        const p = ctx.prefix.toLowerCase();
        items = fs.filter((f) => f.key.toLowerCase().includes(p) && f.key !== ctx.prefix)
          .sort((a, b) => (b.key.toLowerCase().startsWith(p) - a.key.toLowerCase().startsWith(p)))
          .slice(0, 50)
          .map((f) => ({ label: f.key, detail: f.type, insert: (ctx.braced || before.includes("{") ? "" : "{ ") + f.key + " ", start: ctx.start }));
      } else if (ctx.kind === "op") {
        const fs = await this.fields();
        if (!fs.some((f) => f.key === ctx.field)) { this.close(); return; }
        items = ops.map((o) => ({ label: o, detail: "", insert: o + " ", start: ctx.start }));
      } else {
        let vals;
        if (fixedValues[ctx.field]) vals = fixedValues[ctx.field].map((v) => ({ value: v, count: null }));
        else if (/^(span:)?duration$/.test(ctx.field) || /~/.test(ctx.op)) vals = [];
        else vals = await this.values(ctx.field);
        const p = ctx.prefix.toLowerCase();
        items = vals.filter((v) => String(v.value).toLowerCase().includes(p))
          .slice(0, 50)
          .map((v) => ({ label: valueLiteral(v.value, ctx.field), detail: v.count == null ? "" : String(v.count), insert: valueLiteral(v.value, ctx.field) + " ", start: ctx.start }));
      }
    } catch {
      items = []; // completion is a convenience: typing still works
    }
    if (seq !== this.seq) return;
    if (document.activeElement !== this.input) { this.close(); return; }
    this.show(items);
  }

  show(items) {
    this.items = items;
    this.active = items.length ? 0 : -1;
    this.list.replaceChildren(...items.map((it, i) => {
      const li = document.createElement("li");
      li.id = `${this.list.id}-${i}`;
      li.setAttribute("role", "option");
      const label = document.createElement("span");
      label.textContent = it.label;
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = it.detail;
      li.append(label, detail);
      // mousedown, not click: the input keeps its focus.
      li.addEventListener("mousedown", (e) => { e.preventDefault(); this.accept(it); });
      return li;
    }));
    this.list.hidden = !items.length;
    this.input.setAttribute("aria-expanded", String(!!items.length));
    this.renderActive();
  }

  renderActive() {
    [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === this.active)));
    const li = this.list.children[this.active];
    if (li) { li.scrollIntoView({ block: "nearest" }); this.input.setAttribute("aria-activedescendant", li.id); }
  }

  // accept replaces what the completion stands for (from its start to the
  // cursor, and a closing quote right after it) with the completion.
  accept(it) {
    const v = this.input.value;
    const pos = this.input.selectionStart ?? v.length;
    let end = pos;
    if (v[end] === "\"" && it.insert.startsWith("\"")) end++;
    while (v[end] === " " && it.insert.endsWith(" ")) end++;
    this.input.value = v.slice(0, it.start) + it.insert + v.slice(end);
    const caret = it.start + it.insert.length;
    this.input.setSelectionRange(caret, caret);
    this.input.focus();
    this.update();
  }
}
