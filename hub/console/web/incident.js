// Incident detail: the versions of the thread, its tasks and why each exists.
import { api, colon, h, info, isExercise, name, put, setExercise, state, t, time } from "./core.js";

export async function renderIncident(root, thread) {
  const [sender, identifier] = thread.split(",");
  const q = `?sender=${encodeURIComponent(sender)}`;
  const [found, tasks, told] = await Promise.all([
    api("GET", `/api/v1/incidents/${encodeURIComponent(identifier)}${q}`),
    api("GET", `/api/v1/tasks?incident=${encodeURIComponent(thread)}`),
    api("GET", `/api/v1/incidents/${encodeURIComponent(identifier)}/explain${q}`).catch((e) => { console.warn("explain", e.status, e.message); return null; }),
  ]);
  const latest = state.incidents.get(found.thread);
  const inc = latest ? latest.incident : found.incident;
  const i = info(inc);
  setExercise(isExercise(inc));
  const areas = (i.area || []).map((a) => a.areaDesc).join("；");
  put(root,
    h("p", {}, h("a", { href: "#/board" }, t("incident.back"))),
    h("h2", {}, i.headline || i.event || identifier),
    h("section.card", {},
      h("p", {}, h(`span.badge.sev-${i.severity}`, {}, t(`severity.${i.severity || "Unknown"}`)), " ",
        (i.category || []).map((c) => t(`category.${c}`)).join("、"), " · ", name(inc.sender), " · ", t(`msg.${inc.msgType}`),
        isExercise(inc) ? [" ", h("span.badge.lane-exercise", {}, t("lane.exercise"))] : null),
      i.description ? h("p", {}, i.description) : null,
      h("p.muted", {}, t("incident.area"), colon(), areas)),
    h("h3", {}, t("incident.versions")),
    h("ol.timeline", { id: "versions" }, found.versions.map((v) => h("li", {}, `${t("col.version")} ${v.version} · ${t("msg." + v.msgType)} · ${time(v.received)} · ${v.identifier}`))),
    h("h3", {}, t("incident.tasks")),
    h("table", { id: "incident-tasks" },
      h("thead", {}, h("tr", {}, ["col.target", "col.action", "col.state", "col.due", "col.why"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, tasks.tasks.map((task) => h("tr", { "data-task": task.id },
        h("td", {}, name(task.target)),
        h("td", {}, state.lang === "en" ? task.action_en : task.action_zh),
        h("td", {}, h(`span.badge.st-${task.state}`, {}, t(`state.${task.state}`))),
        h("td", {}, time(task.due)),
        h("td", {},
          h("div", {}, t("why.playbook", { id: task.why.playbook, version: task.why.version, step: task.why.step })),
          h("div", {}, t("why.clause", { agreement: task.why.agreement, clause: task.why.clause })),
          h("div.muted", {}, t("why.conditions"), colon(), task.why.conditions.join("; "))))))),
    told ? [h("h3", {}, t("incident.playbooks")),
      h("ul", { id: "explain" }, told.playbooks.map((p) => h("li", {},
        h("strong", {}, state.lang === "en" ? p.title.en : p.title.zh), ` (${p.id} v${p.version}) — `,
        h(p.matched ? "span.badge.st-accepted" : "span.badge", {}, p.matched ? t("incident.matched") : t("incident.not_matched")),
        p.reasons.length ? h("div.muted", {}, p.reasons.join("; ")) : null)))] : null);
  return null;
}
