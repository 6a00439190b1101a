// My tasks: what is addressed to my jurisdiction, with the time left and the answers I may give.
import { api, duration, h, mine, name, putTask, report, setExercise, state, t, time, toast } from "./core.js";

const ANSWERS = {
  issued: ["acknowledge"], delivered: ["acknowledge"], escalated: ["acknowledge"],
  acknowledged: ["accept", "decline"], accepted: ["done"],
};

function dueCell(task) {
  const el = h("span.countdown", { "data-due": task.due });
  const tick = () => {
    const left = Date.parse(task.due) - Date.now();
    const open = Boolean(ANSWERS[task.state]);
    el.textContent = open ? (left >= 0 ? t("tasks.left", { time: duration(left) }) : t("tasks.overdue", { time: duration(left) })) : time(task.due);
    el.className = open && left < 0 ? "countdown badge overdue" : "countdown";
  };
  tick();
  return { el, tick };
}

export async function renderTasks(root) {
  const officer = Boolean(state.user.jurisdiction);
  if (officer) {
    const found = await api("GET", `/api/v1/tasks?target=${encodeURIComponent(state.user.jurisdiction)}`);
    for (const task of found.tasks) putTask(task);
  }
  const body = h("tbody", { id: "task-rows" });
  const empty = h("p.muted", {}, t("tasks.empty"));
  root.append(h("h2", {}, officer ? t("tasks.title") : t("tasks.region_title")),
    h("table", { id: "tasks" }, h("thead", {}, h("tr", {}, ["col.action", "col.target", "col.sender", "col.state", "col.due", "col.why", "col.answer"].map((k) => h("th", { scope: "col" }, t(k))))), body), empty);
  let ticks = [];

  async function answer(task, verb, reason) {
    try {
      const updated = await api("POST", `/api/v1/tasks/${encodeURIComponent(task.id)}/${verb}`, reason ? { reason } : {});
      putTask(updated);
      toast(t("tasks.answered", { state: t(`state.${updated.state}`) }));
      draw();
    } catch (error) { report(error); }
  }

  function actions(task) {
    if (!officer || !mine(task.target)) return [];
    const label = `${state.lang === "en" ? task.action_en : task.action_zh}`;
    return (ANSWERS[task.state] || []).map((verb) => {
      if (verb !== "decline") {
        return h("button.act", { type: "button", "data-answer": verb, "aria-label": `${t("answer." + verb)}: ${label}`, onclick: () => answer(task, verb) }, t(`answer.${verb}`));
      }
      const id = `reason-${task.id}`;
      const reason = h("textarea", { id, rows: 2, cols: 28, required: true });
      const form = h("form", { "data-decline": task.id, hidden: true },
        h("label", { for: id }, t("answer.reason")), reason,
        h("button.act.danger", { type: "submit" }, t("answer.send_decline")));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        if (!reason.value.trim()) { toast(t("answer.reason_needed"), true); reason.focus(); return; }
        answer(task, "decline", reason.value.trim());
      });
      const open = h("button.act.danger", { type: "button", "data-answer": "decline", "aria-expanded": "false", "aria-label": `${t("answer.decline")}: ${label}`,
        onclick: () => { form.hidden = !form.hidden; open.setAttribute("aria-expanded", String(!form.hidden)); if (!form.hidden) reason.focus(); } }, t("answer.decline"));
      return h("span", {}, open, form);
    });
  }

  function draw() {
    const tasks = [...state.tasks.values()].filter((x) => !officer || mine(x.target)).sort((a, b) => (a.issued < b.issued ? 1 : -1));
    ticks = [];
    body.replaceChildren(...tasks.map((task) => {
      const due = dueCell(task);
      ticks.push(due.tick);
      const esc = state.escalations.get(task.id);
      return h("tr", { "data-task": task.id },
        h("td", {}, state.lang === "en" ? task.action_en : task.action_zh, task.lane === "exercise" ? [" ", h("span.badge.lane-exercise", {}, t("lane.exercise"))] : null),
        h("td", {}, name(task.target)),
        h("td", {}, h("a", { href: `#/incident/${encodeURIComponent(task.incident)}` }, name(task.sender))),
        h("td", {}, h(`span.badge.st-${task.state}`, { "data-state": task.state }, t(`state.${task.state}`)),
          esc ? h("div.muted", {}, t("tasks.escalation", { rung: esc.rung, level: esc.level })) : null),
        h("td", {}, due.el),
        h("td.muted", {}, t("why.playbook", { id: task.why.playbook, version: task.why.version, step: task.why.step }), h("br"),
          t("why.clause", { agreement: task.why.agreement, clause: task.why.clause })),
        h("td", {}, actions(task)));
    }));
    empty.hidden = tasks.length > 0;
    setExercise(tasks.some((x) => x.lane === "exercise"));
  }
  draw();
  const timer = setInterval(() => { if (!document.body.contains(body)) clearInterval(timer); else ticks.forEach((f) => f()); }, 1000);
  return (what) => { if (what === "tasks" || what === "all") draw(); };
}
