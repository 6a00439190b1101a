// Live incident board: new incidents, updates and cancellations as they arrive.
import { h, info, isExercise, name, setExercise, sortedIncidents, state, t, time } from "./core.js";

const SEVERITIES = ["Extreme", "Severe", "Moderate", "Minor", "Unknown"];
const CATEGORIES = ["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"];
const filters = { severity: "", category: "", jurisdiction: "" };

function select(id, key, options) {
  const el = h("select", { id, name: id, onchange: () => { filters[key] = el.value; draw(); } },
    h("option", { value: "" }, t("filter.any")),
    options.map(([value, label]) => h("option", { value, selected: filters[key] === value }, label)));
  return el;
}

let body = null;
let empty = null;

function draw() {
  if (!body) return;
  const rows = [];
  let exercise = false;
  for (const entry of sortedIncidents()) {
    const inc = entry.incident, i = info(inc);
    if (filters.severity && i.severity !== filters.severity) continue;
    if (filters.category && !(i.category || []).includes(filters.category)) continue;
    if (filters.jurisdiction && inc.sender !== filters.jurisdiction) continue;
    exercise = exercise || isExercise(inc);
    const [sender, identifier] = entry.thread.split(",");
    rows.push(h(`tr${inc.msgType === "Cancel" ? ".cancelled" : ""}${entry.fresh ? ".fresh" : ""}`, { "data-thread": entry.thread },
      h("td", {}, time(entry.received)),
      h("td", {}, h(`span.badge.sev-${i.severity}`, {}, t(`severity.${i.severity || "Unknown"}`))),
      h("td", {}, (i.category || []).map((c) => t(`category.${c}`)).join("、")),
      h("td", {}, h("a", { href: `#/incident/${encodeURIComponent(sender + "," + identifier)}` }, i.headline || i.event || identifier),
        isExercise(inc) ? [" ", h("span.badge.lane-exercise", {}, t("lane.exercise"))] : null),
      h("td", {}, name(inc.sender)),
      h("td", { "data-status": inc.msgType }, t(`msg.${inc.msgType}`), " ", h("span.muted", {}, t("col.version"), " ", entry.version))));
    entry.fresh = false;
  }
  body.replaceChildren(...rows);
  empty.hidden = rows.length > 0;
  setExercise(exercise);
}

export async function renderBoard(root) {
  const senders = [...new Set(sortedIncidents().map((e) => e.incident.sender))].sort();
  const codes = Object.keys(state.region.jurisdictions).sort();
  body = h("tbody", { id: "board-rows" });
  empty = h("p.muted", { id: "board-empty" }, t("board.empty"));
  root.append(
    h("h2", {}, t("board.title")),
    h("div.filters", { role: "group", "aria-label": t("board.title") },
      h("label", { for: "f-severity" }, t("filter.severity"), select("f-severity", "severity", SEVERITIES.map((v) => [v, t(`severity.${v}`)]))),
      h("label", { for: "f-category" }, t("filter.category"), select("f-category", "category", CATEGORIES.map((v) => [v, t(`category.${v}`)]))),
      h("label", { for: "f-jurisdiction" }, t("filter.jurisdiction"), select("f-jurisdiction", "jurisdiction", [...new Set([...senders, ...codes])].map((c) => [c, `${name(c)} ${c}`])))),
    h("table", { id: "board" },
      h("thead", {}, h("tr", {}, ["col.time", "col.severity", "col.category", "col.event", "col.sender", "col.status"].map((k) => h("th", { scope: "col" }, t(k))))),
      body),
    empty);
  draw();
  return (what) => { if (what === "incidents" || what === "all") draw(); };
}
