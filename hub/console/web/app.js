// The console's entry: sign-in, navigation between pages, language switch.
import { ApiError, api, changed, connectLive, disconnectLive, h, loadLanguage, loadOverview, name, preferredLanguage, report, setExercise, showLive, state, t, translate } from "./core.js";
import { renderBoard } from "./board.js";
import { renderMap } from "./map.js";
import { renderTasks } from "./tasks.js";
import { renderIncident } from "./incident.js";
import { renderResources } from "./resources.js";
import { renderPlaybooks } from "./playbooks.js";
import { renderApprovals } from "./approvals.js";

const VIEWS = { board: renderBoard, map: renderMap, tasks: renderTasks, incident: renderIncident, resources: renderResources, approvals: renderApprovals, playbooks: renderPlaybooks };
const main = () => document.getElementById("main");
let current = null; // {view, arg, refresh}

function route() {
  const [, view, ...rest] = (location.hash || "#/board").split("/");
  return { view: VIEWS[view] ? view : "board", arg: decodeURIComponent(rest.join("/")) };
}

async function show() {
  if (!state.user) return renderSignIn();
  const { view, arg } = route();
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const root = main();
  root.replaceChildren();
  setExercise(false);
  current = { view, arg, refresh: null };
  try {
    current.refresh = await VIEWS[view](root, arg);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signedOut(true);
    report(error);
  }
}

function header() {
  const u = state.user;
  document.getElementById("nav").hidden = !u;
  document.getElementById("signout").hidden = !u;
  const who = document.getElementById("who");
  who.textContent = u ? t("session.who", { name: u.name || u.username, role: t(`role.${u.role}`), jurisdiction: u.jurisdiction ? name(u.jurisdiction) : t("region.all") }) : "";
}

function renderSignIn(message) {
  setExercise(false);
  header();
  const error = h("p.error", { id: "signin-error", role: "alert" }, message || "");
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { "aria-describedby": "signin-error" },
    h("label", { for: "username" }, t("session.username")), user,
    h("label", { for: "password" }, t("session.password")), pass,
    error,
    h("button.act", { type: "submit" }, t("session.submit")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const who = await api("POST", "/api/v1/session", { username: user.value, password: pass.value });
      await signedIn(who);
    } catch (err) {
      pass.value = "";
      error.textContent = err.status === 401 ? t("session.wrong") : err.status === 429 ? t("session.limited") : err.message;
      pass.focus();
    }
  });
  main().replaceChildren(h("section.card.signin", { "aria-labelledby": "signin-title" }, h("h2", { id: "signin-title" }, t("session.title")), form));
  user.focus();
}

async function signedIn(who) {
  state.csrf = who.csrf_token;
  state.user = { username: who.username, name: who.name, role: who.role, jurisdiction: who.jurisdiction };
  if (!state.region) state.region = await api("GET", "/api/v1/region/map");
  header();
  await loadOverview();
  connectLive();
  if (!location.hash || location.hash === "#/") location.hash = "#/board";
  await show();
}

function signedOut(expired) {
  disconnectLive();
  state.user = null; state.csrf = null; state.incidents.clear(); state.tasks.clear();
  renderSignIn(expired ? t("session.expired") : "");
}

async function start() {
  await loadLanguage(preferredLanguage());
  document.getElementById("lang").addEventListener("click", async () => {
    await loadLanguage(state.lang === "zh-CN" ? "en" : "zh-CN");
    document.getElementById("lang").setAttribute("lang", state.lang === "zh-CN" ? "en" : "zh-CN");
    showLive();
    if (state.user) { header(); await show(); } else renderSignIn();
  });
  document.getElementById("signout").addEventListener("click", async () => {
    try { await api("DELETE", "/api/v1/session"); } catch (e) { /* signed out anyway */ }
    signedOut(false);
  });
  document.querySelector(".skip").addEventListener("click", (e) => { e.preventDefault(); main().focus(); });
  window.addEventListener("hashchange", show);
  state.listeners.add((what) => { if (current && current.refresh) current.refresh(what); });
  try {
    const who = await api("GET", "/api/v1/session");
    await signedIn(who);
  } catch (e) {
    renderSignIn();
  }
  translate(document);
}

start();
export { changed };
