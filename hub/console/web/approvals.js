// Approvals: what playbooks' approval steps ask of the regional coordinator. Everyone signed in
// sees the queue and its outcomes; only the coordinator approves or rejects (with a reason).
import { api, h, name, put, report, state, t, time, toast } from "./core.js";

const COLS = ["col.incident", "col.question", "col.playbook", "col.tasks", "col.state", "col.expires", "col.answer"];

export async function renderApprovals(root) {
  const coordinator = state.user.role === "coordinator";
  const body = h("tbody", { id: "approval-rows" });
  const empty = h("p.muted", { id: "approvals-empty" }, t("approvals.empty"));

  async function load() {
    const data = await api("GET", "/api/v1/approvals");
    empty.hidden = data.approvals.length > 0;
    body.replaceChildren(...data.approvals.map((a) => {
      const question = state.lang === "en" ? a.question.en : a.question.zh;
      const targets = [...new Set(a.tasks.map((task) => name(task.target)))].join(", ");
      const answer = coordinator && a.state === "requested" ? [
        h("button.act", { type: "button", "data-approve": a.id, "aria-label": `${t("approvals.approve")}: ${question}`, onclick: () => decide(a, "approve") }, t("approvals.approve")),
        " ",
        h("button.act.secondary", { type: "button", "data-reject": a.id, "aria-label": `${t("approvals.reject")}: ${question}`, onclick: () => decide(a, "reject") }, t("approvals.reject")),
      ] : [a.decided_by ? t("approvals.decided", { by: a.decided_by, time: time(a.decided) }) : "", a.reason ? ` — ${a.reason}` : ""];
      return h("tr", { "data-approval": a.id, "data-state": a.state },
        h("td", {}, h("a", { href: `#/incident/${encodeURIComponent(a.incident)}` }, name(a.sender)), a.lane === "exercise" ? [" ", h("span.badge", {}, t("lane.exercise"))] : null),
        h("td", {}, question),
        h("td", {}, `${a.playbook} · ${t("playbooks.version", { version: a.version })} · ${a.step}`),
        h("td", {}, `${a.tasks.length} (${targets})`),
        h("td", {}, h("span.badge", {}, t(`approval.${a.state}`))),
        h("td", {}, time(a.expires), " ", h("span.muted", {}, t(`approvals.on_expiry.${a.on_expiry}`))),
        h("td", {}, answer));
    }));
  }

  async function decide(a, verb) {
    let reason = null;
    if (verb === "reject") {
      reason = prompt(t("approvals.reject_reason"));
      if (!reason) return;
    }
    try {
      const done = await api("POST", `/api/v1/approvals/${encodeURIComponent(a.id)}/${verb}`, reason ? { reason } : {});
      toast(t("approvals.answered", { state: t(`approval.${done.state}`) }));
      await load();
    } catch (error) { report(error); }
  }

  await load();
  put(root, h("h2", {}, t("approvals.title")),
    h("p.muted", {}, coordinator ? t("approvals.coordinator_hint") : t("approvals.reader_hint")),
    h("table", { id: "approvals" }, h("thead", {}, h("tr", {}, COLS.map((k) => h("th", { scope: "col" }, t(k))))), body),
    empty);
  return (what) => { if (what === "approvals" || what === "all") load().catch(report); };
}
