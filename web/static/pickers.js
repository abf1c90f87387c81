// The controls every page with a time range and a tenant shares: the
// range picker (presets, or a custom from and until) and the tenant picker.
// Each page keeps its own state object (from, until, tenant in it).
import * as session from "./session.js";

const $ = (id) => document.getElementById(id);

// parseTime mirrors the server's forms that the pages write: now, now-1h,
// Unix seconds or milliseconds. It returns milliseconds.
export function parseTime(s) {
  if (s === "now") return Date.now();
  const m = /^now-(\d+)([smhdw])$/.exec(s);
  if (m) return Date.now() - m[1] * { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 }[m[2]];
  if (/^\d+$/.test(s)) return s.length > 11 ? Number(s) : Number(s) * 1000;
  return Date.parse(s);
}

// toLocal writes milliseconds as a datetime-local input's value.
export function toLocal(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 6e4);
  return d.toISOString().slice(0, 19);
}

// syncRange shows state's range in the range picker: its preset, or
// custom with the from and until inputs filled.
export function syncRange(state) {
  const preset = state.until === "now" && /^now-(\d+[mhd])$/.exec(state.from);
  $("range").value = preset && [...$("range").options].some((o) => o.value === preset[1]) ? preset[1] : "custom";
  $("custom-range").hidden = $("range").value !== "custom";
  if ($("range").value === "custom") {
    $("from").value = toLocal(parseTime(state.from));
    $("until").value = toLocal(parseTime(state.until));
  }
}

// bindRange sets state's from and until from the range picker, and calls
// changed after each change.
export function bindRange(state, changed) {
  $("range").onchange = () => {
    const v = $("range").value;
    if (v === "custom") {
      $("custom-range").hidden = false;
      $("from").value = toLocal(parseTime(state.from));
      $("until").value = toLocal(parseTime(state.until));
      return;
    }
    state.from = "now-" + v;
    state.until = "now";
    $("custom-range").hidden = true;
    changed();
  };
  for (const id of ["from", "until"]) {
    $(id).onchange = () => {
      const ms = Date.parse($(id).value);
      if (!isNaN(ms)) { state[id] = String(Math.floor(ms / 1000)); changed(); }
    };
  }
}

// showTenants fills the tenant picker from who (session.whoami's answer).
// It shows when there is more than one tenant to read: the token's, or in
// a server without tokens those holding data. Once there is a choice,
// state.tenant always holds it, so that a copied link shows the same
// tenant to whoever opens it.
export function showTenants(who, state, hook) {
  const choices = session.tenantChoices(who, state.tenant);
  if (!state.tenant && choices.length > 1) state.tenant = who.tenant;
  const sel = $("tenant");
  sel.replaceChildren(...choices.map((t) => new Option(t, t)));
  sel.value = state.tenant || who.tenant;
  $("tenant-pick").hidden = choices.length < 2;
  session.showIdentity(who);
  hook.who = who;
}
