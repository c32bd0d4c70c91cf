// Porthole's traffic inspector: a live list of the HTTP requests through
// the agent's tunnels, their detail, replay, curl and HAR export. It only
// talks to the agent API it is served with, and builds every node from
// text: captured requests come from the public internet.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { all: new Map(), order: [], selected: null, detail: null };
// The page lists the newest requests only; the API keeps more (see HAR export).
const maxRows = 1000;

function el(tag, props, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") n.className = v;
    else if (k === "text") n.textContent = v;
    else if (k.startsWith("data-")) n.setAttribute(k, v);
    else n[k] = v;
  }
  for (const kid of kids) if (kid != null) n.append(kid);
  return n;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const msg = data && data.msg ? data.msg + (data.details && data.details.err ? ": " + data.details.err : "") : resp.statusText;
    throw new Error(msg);
  }
  return data;
}

// ---- tunnels -------------------------------------------------------------

async function loadTunnels() {
  try {
    const data = await api("GET", "/api/tunnels");
    const ul = $("tunnels");
    ul.replaceChildren(...data.tunnels.map((t) =>
      el("li", {}, el("a", { href: t.public_url, text: t.public_url, target: "_blank", rel: "noopener noreferrer" }),
        el("span", { class: "n", text: t.name + " → " + t.config.addr + " · " + t.metrics.http.count + " req" }))));
  } catch (e) { /* the list of requests says more */ }
}

// ---- list ----------------------------------------------------------------

function statusClass(x) {
  if (!x.response) return "sp";
  return "s" + String(x.response.status_code)[0];
}

function fmtDuration(ns) {
  if (!ns) return "";
  const ms = ns / 1e6;
  return ms < 1000 ? ms.toFixed(ms < 10 ? 1 : 0) + " ms" : (ms / 1000).toFixed(2) + " s";
}

function row(x) {
  const path = el("span", { class: "p", text: x.request.uri, title: x.request.uri });
  if (x.replay_of) path.append(el("span", { class: "badge", text: "replay" }));
  path.append(el("small", { text: new Date(x.start).toLocaleTimeString() + " · " + x.tunnel_name }));
  const li = el("li", { "data-id": x.id, tabIndex: 0 },
    el("span", { class: "m", text: x.request.method }),
    path,
    el("span", { class: "s " + statusClass(x), text: x.response ? String(x.response.status_code) : "…" }),
    el("span", { class: "d", text: fmtDuration(x.duration) }));
  li.addEventListener("click", () => select(x.id));
  li.addEventListener("keydown", (e) => { if (e.key === "Enter") select(x.id); });
  if (x.id === state.selected) li.classList.add("sel");
  return li;
}

function headerValue(headers, name) {
  for (const [k, vs] of Object.entries(headers || {})) if (k.toLowerCase() === name) return vs.join(", ");
  return "";
}

function matches(x) {
  const path = $("f-path").value.trim();
  if (path && !x.request.uri.includes(path)) return false;
  const method = $("f-method").value;
  if (method && x.request.method !== method) return false;
  const status = $("f-status").value;
  if (status === "pending" && x.response) return false;
  if (status && status !== "pending" && (!x.response || String(x.response.status_code)[0] !== status)) return false;
  const secs = Number($("f-time").value);
  if (secs && Date.now() - new Date(x.start).getTime() > secs * 1000) return false;
  const h = $("f-header").value.trim().toLowerCase();
  if (h) {
    const [name, want] = h.includes(":") ? [h.slice(0, h.indexOf(":")).trim(), h.slice(h.indexOf(":") + 1).trim()] : [h, ""];
    const all = [x.request.headers, x.response && x.response.headers];
    if (!all.some((hs) => { const v = headerValue(hs, name); return v !== "" && v.toLowerCase().includes(want); })) return false;
  }
  return true;
}

function visible() { return state.order.map((id) => state.all.get(id)).filter(matches); }

function render() {
  const shown = visible();
  $("requests").replaceChildren(...shown.map(row));
  $("count").textContent = shown.length === state.order.length
    ? shown.length + (shown.length === 1 ? " request" : " requests")
    : shown.length + " of " + state.order.length + " requests";
  $("empty").hidden = state.order.length > 0;
}

function upsert(x, fresh) {
  const known = state.all.has(x.id);
  state.all.set(x.id, x);
  if (!known) state.order.unshift(x.id);
  const ol = $("requests");
  while (state.order.length > maxRows) {
    const old = state.order.pop();
    state.all.delete(old);
    const li = ol.querySelector(`li[data-id="${old}"]`);
    if (li) li.remove();
  }
  const old = ol.querySelector(`li[data-id="${x.id}"]`);
  if (!matches(x)) { if (old) old.remove(); render(); return; }
  const li = row(x);
  if (fresh) li.classList.add("fresh");
  if (old) old.replaceWith(li); else ol.prepend(li);
  $("empty").hidden = true;
  $("count").textContent = state.order.length + (state.order.length === 1 ? " request" : " requests");
  if (x.id === state.selected && x.response && (!state.detail || !state.detail.response)) select(x.id);
}

async function loadList() {
  const data = await api("GET", "/api/requests/http?limit=" + maxRows);
  state.all.clear();
  state.order = [];
  for (const x of data.requests) { state.all.set(x.id, x); state.order.push(x.id); }
  render();
}

function live() {
  const es = new EventSource("/api/events");
  es.onopen = () => { $("live").textContent = "live"; $("live").classList.remove("off"); loadList(); loadTunnels(); };
  es.onerror = () => { $("live").textContent = "reconnecting"; $("live").classList.add("off"); };
  es.addEventListener("request", (e) => { upsert(JSON.parse(e.data), true); });
  es.addEventListener("update", (e) => { upsert(JSON.parse(e.data), false); loadTunnels(); });
  es.addEventListener("clear", () => { state.all.clear(); state.order = []; render(); });
}

// ---- detail --------------------------------------------------------------

function b64bytes(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// bodyOf splits a raw message (head, blank line, body) and returns the body.
function bodyOf(raw) {
  for (let i = 0; i + 3 < raw.length; i++) {
    if (raw[i] === 13 && raw[i + 1] === 10 && raw[i + 2] === 13 && raw[i + 3] === 10) return raw.subarray(i + 4);
  }
  return new Uint8Array(0);
}

function kvTable(pairs) {
  return el("table", { class: "kv" }, el("tbody", {}, ...pairs.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: v })))));
}

function headerPairs(headers) {
  const pairs = [];
  for (const k of Object.keys(headers || {}).sort()) for (const v of headers[k]) pairs.push([k, v]);
  return pairs;
}

async function decoded(bytes, encoding) {
  encoding = (encoding || "").toLowerCase();
  if (!bytes.length || !["gzip", "deflate"].includes(encoding) || typeof DecompressionStream === "undefined") return null;
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(encoding));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) { return null; }
}

function hexDump(bytes) {
  const lines = [];
  const n = Math.min(bytes.length, 4096);
  for (let off = 0; off < n; off += 16) {
    const chunk = bytes.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(chunk, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(off.toString(16).padStart(8, "0") + "  " + hex.padEnd(47) + "  " + ascii);
  }
  if (bytes.length > n) lines.push("… " + (bytes.length - n) + " more bytes");
  return el("pre", { text: lines.join("\n") });
}

// jsonView pretty-prints JSON text with colours; invalid JSON is shown as
// sent with the error position marked.
function jsonView(text) {
  let value;
  try { value = JSON.parse(text); } catch (e) {
    const pre = el("pre");
    const m = /position (\d+)/.exec(e.message) || /column (\d+)/.exec(e.message);
    let pos = m ? Number(m[1]) : text.length;
    if (pos > text.length) pos = text.length;
    pre.append(text.slice(0, pos), el("span", { class: "bad", text: text.slice(pos, pos + 1) || " " }), text.slice(pos + 1));
    return [el("p", { class: "note err", text: "Invalid JSON: " + e.message }), pre];
  }
  const pre = el("pre");
  const pretty = JSON.stringify(value, null, 2);
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;
  let last = 0;
  for (const m of pretty.matchAll(re)) {
    pre.append(pretty.slice(last, m.index));
    if (m[1]) {
      pre.append(el("span", { class: m[2] ? "k" : "str", text: m[1] }));
      if (m[2]) pre.append(m[2]);
    } else if (m[3]) pre.append(el("span", { class: "num", text: m[3] }));
    else pre.append(el("span", { class: "lit", text: m[4] }));
    last = m.index + m[0].length;
  }
  pre.append(pretty.slice(last));
  return [pre];
}

// indexOf finds needle in bytes from position from, or returns -1.
function indexOf(bytes, needle, from) {
  outer: for (let i = from; i <= bytes.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

// multipartParts splits a multipart body at its boundary into parts, each
// with its field name, file name (undefined for a plain field), type and
// bytes. A part cut off by the body cap is left out. It returns null
// without a boundary.
function multipartParts(bytes, type) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  if (!m) return null;
  const enc = new TextEncoder();
  const first = enc.encode("--" + (m[1] || m[2]));
  const delim = enc.encode("\r\n--" + (m[1] || m[2]));
  const blank = enc.encode("\r\n\r\n");
  let at = indexOf(bytes, first, 0);
  if (at < 0) return null;
  at += first.length;
  const parts = [];
  for (;;) {
    const end = indexOf(bytes, delim, at);
    if (end < 0) break;
    const part = bytes.subarray(at + 2, end); // after the CRLF that ends the boundary line
    at = end + delim.length;
    const sep = indexOf(part, blank, 0);
    const head = new TextDecoder().decode(sep < 0 ? part : part.subarray(0, sep));
    const disposition = /content-disposition:[^\r\n]*/i.exec(head)?.[0] || "";
    parts.push({
      name: /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? "",
      filename: /\bfilename="([^"]*)"/i.exec(disposition)?.[1],
      type: /content-type:\s*([^\r\n]*)/i.exec(head)?.[1] || "",
      body: sep < 0 ? new Uint8Array() : part.subarray(sep + 4),
    });
  }
  return parts;
}

// partRow shows a form field's text, or what a file or binary part is.
function partRow(p) {
  if (p.filename === undefined && isText(p.body)) return [p.name, new TextDecoder().decode(p.body)];
  const what = p.filename === undefined ? "binary" : "file " + JSON.stringify(p.filename);
  return [p.name, [what, p.type, p.body.length + " bytes"].filter(Boolean).join(", ")];
}

function isText(bytes) {
  try { new TextDecoder("utf-8", { fatal: true }).decode(bytes); return true; } catch (e) { return false; }
}

async function bodyView(msg, raw) {
  let bytes = bodyOf(raw);
  const out = [];
  const size = msg.body_size;
  if (size === 0 || (!bytes.length && !size)) return [el("p", { class: "note", text: "No body." })];
  const type = (headerValue(msg.headers, "content-type") || "").toLowerCase();
  let note = size + " bytes";
  if (msg.truncated) note += ", of which the first " + bytes.length + " were kept";
  const enc = headerValue(msg.headers, "content-encoding");
  const plain = await decoded(bytes, enc);
  if (plain) { bytes = plain; note += ", " + enc + "-encoded (shown decoded)"; }
  out.push(el("p", { class: "note", text: note + (type ? " · " + type : "") }));
  if (type.startsWith("image/") && !msg.truncated) {
    const url = URL.createObjectURL(new Blob([bytes], { type }));
    out.push(el("img", { class: "body", src: url, alt: "image body" }));
    return out;
  }
  if (type.startsWith("multipart/form-data")) {
    const parts = multipartParts(bytes, type);
    if (parts && parts.length) {
      out.push(kvTable(parts.map(partRow)));
      if (msg.truncated) out.push(el("p", { class: "note", text: "Parts beyond the kept bytes are not shown." }));
      return out;
    }
  }
  if (!isText(bytes)) { out.push(hexDump(bytes)); return out; }
  const text = new TextDecoder().decode(bytes);
  if (type.includes("json") || (!type && /^\s*[[{]/.test(text))) {
    if (msg.truncated) out.push(el("pre", { text }));
    else out.push(...jsonView(text));
  } else if (type.startsWith("application/x-www-form-urlencoded")) {
    out.push(kvTable(Array.from(new URLSearchParams(text))), el("h4", { text: "As sent" }), el("pre", { text }));
  } else {
    out.push(el("pre", { text }));
  }
  return out;
}

async function messageView(msg, raw, extra) {
  const parts = [...(extra || [])];
  parts.push(el("h4", { text: "Headers" }), kvTable(headerPairs(msg.headers)));
  if (msg.trailers && Object.keys(msg.trailers).length) parts.push(el("h4", { text: "Trailers" }), kvTable(headerPairs(msg.trailers)));
  parts.push(el("h4", { text: "Body" }), ...(await bodyView(msg, raw)));
  return parts;
}

function publicURL(x) {
  const host = headerValue(x.request.headers, "host");
  const https = (headerValue(x.request.headers, "x-forwarded-proto") || "").endsWith("https");
  return (https ? "https://" : "http://") + host + x.request.uri;
}

async function select(id) {
  state.selected = id;
  for (const li of $("requests").children) li.classList.toggle("sel", li.dataset.id === id);
  let x;
  try { x = await api("GET", "/api/requests/http/" + id); } catch (e) { notice(e.message, true); return; }
  if (state.selected !== id) return;
  state.detail = x;
  $("detail").hidden = false;
  $("placeholder").hidden = true;
  $("editor").hidden = true;
  $("d-title").textContent = x.request.method + " " + x.request.uri;
  const status = x.response ? x.response.status : "waiting for the response";
  $("d-meta").textContent = [status, fmtDuration(x.duration), "from " + x.remote_addr, x.tunnel_name,
    new Date(x.start).toLocaleString(), x.replay_of ? "replay of " + x.replay_of : ""].filter(Boolean).join(" · ");
  notice("");
  const reqRaw = b64bytes(x.request.raw);
  const query = x.request.uri.includes("?") ? Array.from(new URLSearchParams(x.request.uri.slice(x.request.uri.indexOf("?") + 1))) : [];
  const queryPart = query.length ? [el("h4", { text: "Query" }), kvTable(query)] : [];
  $("d-request").replaceChildren(...(await messageView(x.request, reqRaw, queryPart)));
  if (x.response) {
    $("d-response").replaceChildren(...(await messageView(x.response, b64bytes(x.response.raw),
      x.upgraded ? [el("p", { class: "note", text: "The connection switched protocols; its traffic is not captured." })] : [])));
  } else {
    $("d-response").replaceChildren(el("p", { class: "note", text: "No response yet." }));
  }
}

function notice(text, isError) {
  $("notice").textContent = text;
  $("notice").classList.toggle("err", !!isError);
}

// ---- actions -------------------------------------------------------------

async function replay(changes) {
  const x = state.detail;
  try {
    await api("POST", "/api/requests/http", Object.assign({ id: x.id }, changes || {}));
    notice("Replayed to the tunnel's upstream; the replay is at the top of the list.");
    return true;
  } catch (e) { notice("Replay failed: " + e.message, true); return false; }
}

function openEditor() {
  const x = state.detail;
  $("e-method").value = x.request.method;
  $("e-uri").value = x.request.uri;
  $("e-headers").value = headerPairs(x.request.headers).filter(([k]) => k.toLowerCase() !== "content-length").map(([k, v]) => k + ": " + v).join("\n");
  const body = bodyOf(b64bytes(x.request.raw));
  $("e-body").value = isText(body) ? new TextDecoder().decode(body) : "";
  $("e-body").disabled = !isText(body);
  $("editor").hidden = false;
  $("e-headers").focus();
}

async function sendEdited(ev) {
  ev.preventDefault();
  const headers = {};
  for (const line of $("e-headers").value.split("\n")) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const k = line.slice(0, i).trim();
    (headers[k] = headers[k] || []).push(line.slice(i + 1).trim());
  }
  const changes = { method: $("e-method").value.trim(), uri: $("e-uri").value.trim(), headers };
  if (!$("e-body").disabled) changes.body = $("e-body").value;
  if (await replay(changes)) $("editor").hidden = true;
}

function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

function curlCommand(x) {
  const parts = ["curl"];
  if (x.request.method !== "GET") parts.push("-X", x.request.method);
  parts.push(shellQuote(publicURL(x)));
  for (const [k, v] of headerPairs(x.request.headers)) {
    if (["host", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"].includes(k.toLowerCase())) continue;
    parts.push("-H", shellQuote(k + ": " + v));
  }
  const body = bodyOf(b64bytes(x.request.raw));
  if (body.length) {
    if (isText(body)) parts.push("--data-binary", shellQuote(new TextDecoder().decode(body)));
    else parts.push("--data-binary", "@body.bin");
  }
  return parts.join(" ");
}

async function copyCurl() {
  const cmd = curlCommand(state.detail);
  try {
    await navigator.clipboard.writeText(cmd);
  } catch (e) {
    const ta = $("clipboard");
    ta.value = cmd;
    ta.select();
    document.execCommand("copy");
  }
  $("clipboard").value = cmd;
  notice("Copied: " + cmd);
}

function download(url) {
  const a = el("a", { href: url, download: "" });
  document.body.append(a);
  a.click();
  a.remove();
}

function init() {
  for (const id of ["f-path", "f-method", "f-status", "f-time", "f-header"]) $(id).addEventListener("input", render);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("replay").addEventListener("click", () => replay());
  $("replay-edit").addEventListener("click", openEditor);
  $("editor").addEventListener("submit", sendEdited);
  $("e-cancel").addEventListener("click", () => { $("editor").hidden = true; });
  $("copy-curl").addEventListener("click", copyCurl);
  $("export-one").addEventListener("click", () => download("/api/har/" + state.detail.id));
  $("export-list").addEventListener("click", () => download("/api/har?ids=" + visible().map((x) => x.id).join(",")));
  $("clear").addEventListener("click", () => api("DELETE", "/api/requests/http").catch((e) => notice(e.message, true)));
  live();
}

init();
