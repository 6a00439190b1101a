// Shared by every page of the console: translations, the API client, DOM helpers, live state.

export const state = {
  lang: "zh-CN",
  catalogue: {},
  user: null, // {username, name, role, jurisdiction}
  csrf: null, // kept in memory only, never in storage
  region: null, // {features, jurisdictions}
  incidents: new Map(), // thread -> {thread, version, received, incident, fresh}
  tasks: new Map(), // id -> task
  escalations: new Map(), // task id -> {rung, level}
  listeners: new Set(),
};

const LANGS = ["zh-CN", "en"];

export async function loadLanguage(lang) {
  if (!LANGS.includes(lang)) lang = "zh-CN";
  const answer = await fetch(`/console/i18n/${lang}.json`, { credentials: "same-origin" });
  state.catalogue = await answer.json();
  state.lang = lang;
  document.documentElement.lang = lang;
  try { sessionStorage.setItem("liandong.lang", lang); } catch (e) { /* private mode */ }
  translate(document);
}

export function preferredLanguage() {
  try { return sessionStorage.getItem("liandong.lang") || "zh-CN"; } catch (e) { return "zh-CN"; }
}

export function t(key, vars) {
  let text = state.catalogue[key];
  if (text === undefined) { console.warn("missing translation", key); text = key; }
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.split(`{${k}}`).join(String(v));
  return text;
}

export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
}

// h("tag.class", {attr: value, onclick: fn}, child, ...): a DOM node, never parsed HTML.
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : String(c));
  return el;
}

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; this.detail = detail; }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let answer;
  try {
    answer = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, t("error.network"));
  }
  if (answer.status === 204) return null;
  const text = await answer.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
  if (!answer.ok) throw new ApiError(answer.status, (data && (data.detail || data.title)) || answer.statusText);
  return data;
}

export function toast(message, bad) {
  const box = document.getElementById("toast");
  const item = h(bad ? "div.bad" : "div", {}, message);
  box.append(item);
  setTimeout(() => item.remove(), bad ? 8000 : 4000);
}

export function report(error) {
  if (error instanceof ApiError && error.status === 403) toast(t("error.forbidden", { detail: error.detail }), true);
  else toast(t("error.generic", { detail: error.message || String(error) }), true);
}

export function name(code) {
  const j = state.region && state.region.jurisdictions[code];
  if (!j) return code || "";
  return state.lang === "en" ? j.name_en : j.name_zh;
}

export function info(incident) {
  return (incident.info && incident.info[0]) || {};
}

export function isExercise(incident) { return incident && incident.status === "Exercise"; }

export function setExercise(on) {
  document.getElementById("exercise-banner").hidden = !on;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(state.lang === "en" ? "en-GB" : "zh-CN", { hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function duration(ms) {
  const total = Math.floor(Math.abs(ms) / 1000);
  const hh = Math.floor(total / 3600), mm = Math.floor((total % 3600) / 60), ss = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${pad(mm)}:${pad(ss)}` : `${pad(mm)}:${pad(ss)}`;
}

// Does the signed-in user act for this jurisdiction (a city speaks for its districts)?
export function mine(code) {
  const j = state.user && state.user.jurisdiction;
  if (!j || !code) return false;
  if (j === code) return true;
  if (j.endsWith("00") && !j.endsWith("0000")) return code.slice(0, 4) === j.slice(0, 4);
  if (j.endsWith("0000")) return code.slice(0, 2) === j.slice(0, 2);
  return false;
}

export function changed(what) { for (const fn of state.listeners) fn(what); }

export function putIncident(entry, fresh) {
  const known = state.incidents.get(entry.thread);
  if (known && known.version > entry.version) return;
  state.incidents.set(entry.thread, { ...entry, fresh: Boolean(fresh) });
}

export function putTask(task) { state.tasks.set(task.id, task); }

export async function loadOverview() {
  const data = await api("GET", "/api/v1/overview?limit=300");
  for (const row of data.incidents.slice().reverse()) putIncident(row, false);
  for (const task of data.tasks) putTask(task);
}

export function sortedIncidents() {
  return [...state.incidents.values()].sort((a, b) => (a.received < b.received ? 1 : -1));
}

// The live stream: one EventSource per tab; the hub fans one reader out to every tab.
let source = null;
const TASK_EVENTS = ["delivered", "acknowledged", "accepted", "declined", "done", "escalated", "cancelled"];

export function connectLive() {
  if (source) source.close();
  source = new EventSource("/api/v1/stream");
  const live = document.getElementById("live");
  let greeted = false;
  source.addEventListener("hello", async () => {
    live.textContent = t("live.connected"); live.className = "live"; live.dataset.state = "up";
    if (greeted) { await loadOverview(); changed("all"); } // reconnected: catch up on what was missed
    greeted = true;
  });
  source.onerror = () => { live.textContent = t("live.reconnecting"); live.className = "live down"; live.dataset.state = "down"; };
  source.addEventListener("reset", async () => { await loadOverview(); changed("all"); });
  source.addEventListener("incident.reported", (e) => {
    const ev = JSON.parse(e.data);
    const d = ev.data;
    putIncident({ thread: d.thread, version: d.version, received: d.received, incident: d.incident }, true);
    changed("incidents");
  });
  source.addEventListener("task.issued", (e) => { putTask(JSON.parse(e.data).data.task); changed("tasks"); });
  for (const name of TASK_EVENTS) {
    source.addEventListener(`task.${name}`, (e) => {
      const d = JSON.parse(e.data).data;
      const task = state.tasks.get(d.task);
      if (task) putTask({ ...task, state: d.state });
      if (d.state === "escalated") state.escalations.set(d.task, { rung: d.rung, level: d.level || "" });
      changed("tasks");
    });
  }
  for (const name of ["requested", "extended", "approved", "rejected", "expired", "cancelled"]) {
    source.addEventListener(`approval.${name}`, () => changed("approvals"));
  }
  for (const name of ["received", "held", "hold_expired", "released", "committed", "dispatched", "arrived", "returned", "consumed", "adjusted", "refused"]) {
    source.addEventListener(`stock.${name}`, () => changed("stock"));
  }
}

export function disconnectLive() { if (source) { source.close(); source = null; } }

// root.append for what h() builds: arrays flattened, absent parts (null, false) left out.
export function put(root, ...children) {
  root.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// The colon after a label: full-width in Chinese.
export function colon() { return state.lang === "en" ? ": " : "："; }

export function showLive() {
  const live = document.getElementById("live");
  if (!live.dataset.state) return;
  live.textContent = t(live.dataset.state === "up" ? "live.connected" : "live.reconnecting");
}
