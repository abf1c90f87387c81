// Who the UI acts as: the token it sends and the tenant it reads. Every
// request of every page goes through request(), so that no fetch can
// forget the credentials, and a server that refuses them (401) gets the
// sign-in form, after which the request is made again.
//
// The token lives in sessionStorage (this tab, until it closes), or in
// localStorage when the user asks to be remembered on this device. It
// travels in the Authorization header only: never in an address, where
// it would land in the history, in logs and in copied links.

const KEY = "hearth.token";
let tenant = "";
let signingIn = null;
const signedIn = [];

function storedToken() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
}

function storeToken(token, remember) {
  (remember ? localStorage : sessionStorage).setItem(KEY, token);
  (remember ? sessionStorage : localStorage).removeItem(KEY);
}

/** setTenant names the tenant of the requests to come; "" lets the server pick the token's default. */
export function setTenant(t) { tenant = t || ""; }

/** onSignIn calls fn after a sign-in that followed a refused request, so that a page can refresh what the old token showed. */
export function onSignIn(fn) { signedIn.push(fn); }

function headers(init, token, withTenant) {
  const h = new Headers(init.headers);
  if (token) h.set("Authorization", "Bearer " + token);
  if (withTenant && tenant) h.set("X-Scope-OrgID", tenant);
  return h;
}

/**
 * request is fetch with the token and the tenant. A 401 shows the sign-in
 * form and waits for a token the server takes, then tries again; other
 * answers, 403 included, are the caller's to read.
 */
export function request(path, init = {}) { return send(path, init, true); }

async function send(path, init, withTenant) {
  for (;;) {
    const token = storedToken();
    const resp = await fetch(path, { ...init, headers: headers(init, token, withTenant) });
    if (resp.status !== 401) return resp;
    // Without a token the form needs no reason; with one, the server's
    // says why it no longer counts (revoked, or mistyped).
    const why = token ? await errorText(resp) : "";
    if (storedToken() !== token) continue; // another request signed in meanwhile
    await signIn(why);
  }
}

/** errorText is the server's reason in a refusal: the API's JSON error, Connect's message, or plain text. */
export async function errorText(resp) {
  const text = (await resp.text().catch(() => "")).trim();
  try {
    const body = JSON.parse(text);
    if (body && (body.error || body.message)) return body.error || body.message;
  } catch { /* not JSON */ }
  return text || `${resp.status} ${resp.statusText}`;
}

/**
 * whoami asks the server who the UI is, signing in first if it must:
 * {auth, name, tenants, scopes, tenant}. It names no tenant, so that a
 * tenant the token may not use cannot keep the page from starting.
 */
export async function whoami() {
  const resp = await send("api/v1/auth/whoami", {}, false);
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.json();
}

/** tenantChoices are the tenants to offer: whoami's, and the one in use even if it holds no data yet. */
export function tenantChoices(who, current) {
  const ts = [...who.tenants];
  for (const t of [current, who.tenant]) if (t && !ts.includes(t)) ts.push(t);
  return ts.sort();
}

/** showIdentity fills the header's #session slot: the token's name and a sign-out button, when the server wants tokens. */
export function showIdentity(who) {
  const slot = document.getElementById("session");
  if (!slot) return;
  slot.replaceChildren();
  slot.hidden = !who.auth;
  if (!who.auth) return;
  const name = document.createElement("span");
  name.id = "who";
  name.className = "muted-label";
  name.textContent = who.name;
  name.title = `Signed in with the token "${who.name}" (${who.scopes.join(", ") || "no scopes"})`;
  const out = document.createElement("button");
  out.id = "sign-out";
  out.textContent = "Sign out";
  out.title = `Signed in as "${who.name}": forget the token in this browser`;
  out.onclick = signOut;
  slot.append(name, out);
}

/** signOut forgets the token and starts the page again, without the tenant, which belonged to the token. */
export function signOut() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  const u = new URL(location.href);
  u.searchParams.delete("tenant");
  location.replace(u.href);
}

// signIn shows the form (once, however many requests were refused) and
// settles when the server has taken a token.
function signIn(message) {
  if (!signingIn) {
    signingIn = new Promise((resolve) => showForm(message, resolve)).then(async () => {
      signingIn = null;
      for (const fn of signedIn) await fn();
    });
  }
  return signingIn;
}

function formElements() {
  let dlg = document.getElementById("signin");
  if (dlg) return dlg;
  dlg = document.createElement("dialog");
  dlg.id = "signin";
  dlg.setAttribute("aria-labelledby", "signin-title");
  // No name on the field and a POST form: even if the script failed,
  // submitting could not put the token in the address.
  dlg.innerHTML = `
    <form method="post" action="./">
      <h2 id="signin-title">Sign in to Hearth</h2>
      <p class="muted-label">This server requires a token: whoever runs it gives them out, from the file given to <code>hearth server --auth.tokens-file</code>.</p>
      <input id="signin-token" type="password" autocomplete="current-password" aria-label="Token" placeholder="Token" required>
      <label class="muted-label"><input id="signin-remember" type="checkbox"> remember on this device</label>
      <div id="signin-error" class="error" role="alert" hidden></div>
      <button id="signin-submit" type="submit">Sign in</button>
    </form>`;
  // Escape would close the dialog and leave a page that can load nothing.
  dlg.addEventListener("cancel", (e) => e.preventDefault());
  document.body.append(dlg);
  return dlg;
}

function showForm(message, done) {
  const dlg = formElements();
  const field = dlg.querySelector("#signin-token");
  const err = dlg.querySelector("#signin-error");
  const submit = dlg.querySelector("#signin-submit");
  const say = (msg) => { err.textContent = msg; err.hidden = !msg; };
  say(message);
  field.value = "";
  dlg.querySelector("form").onsubmit = async (e) => {
    e.preventDefault();
    const token = field.value.trim();
    if (!token) { say("Enter a token."); return; }
    submit.disabled = true;
    try {
      // Checked before it is kept: a wrong token stays in the form, with
      // the server's reason.
      const resp = await fetch("api/v1/auth/whoami", { headers: headers({}, token, false) });
      if (!resp.ok) { say(await errorText(resp)); field.select(); return; }
      storeToken(token, dlg.querySelector("#signin-remember").checked);
      field.value = "";
      say("");
      dlg.close();
      done();
    } catch (e) {
      say("The server did not answer: " + e.message);
    } finally {
      submit.disabled = false;
    }
  };
  if (!dlg.open) dlg.showModal();
  field.focus();
}
