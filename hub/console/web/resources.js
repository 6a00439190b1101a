// Resources: stock per depot and item; request supplies (see the plan, then confirm);
// my requests and commitments; the approval queue.
import { api, h, info, name, report, sortedIncidents, state, t, time, toast } from "./core.js";
import { incidentCentre } from "./map.js";

function holdRow(hold, buttons) {
  return h("tr", { "data-hold": hold.id, "data-state": hold.state },
    h("td", {}, hold.request), h("td", {}, hold.depot), h("td", {}, hold.item), h("td.num", {}, hold.quantity),
    h("td", {}, name(hold.owner)), h("td", {}, name(hold.partner)),
    h("td", {}, h("span.badge", {}, t(`hold.${hold.state}`))),
    h("td", {}, hold.agreement ? t("why.clause", { agreement: hold.agreement, clause: hold.clause }) : ""),
    h("td", {}, hold.expires ? time(hold.expires) : ""), h("td", {}, buttons || []));
}

const HOLD_COLS = ["col.request", "col.depot", "col.item", "col.quantity", "col.owner", "col.requester", "col.state", "col.agreement", "col.expires", "col.answer"];

export async function renderResources(root) {
  const stockBody = h("tbody", { id: "stock-rows" });
  const mineBody = h("tbody", { id: "my-holds" });
  const queueBody = h("tbody", { id: "approval-queue" });
  const items = new Set();

  let only = "";
  async function loadStock() {
    const data = await api("GET", "/api/v1/resources/balances");
    for (const b of data.balances) items.add(b.item);
    stockBody.replaceChildren(...data.balances.filter((b) => !only || b.item === only).map((b) => {
      return h("tr", { "data-depot": b.depot, "data-item": b.item },
        h("td", {}, state.lang === "en" ? b.name_en : b.name_zh), h("td", {}, name(b.jurisdiction)), h("td", {}, b.item),
        h("td.num", {}, b.on_hand), h("td.num", {}, b.held), h("td.num", {}, b.floor), h("td.num", {}, b.available));
    }));
  }

  async function loadHolds() {
    const data = await api("GET", "/api/v1/resources/holds");
    mineBody.replaceChildren(...data.mine.map((x) => holdRow(x, x.state === "held" || x.state === "committed" ? [releaseButton(x)] : [])));
    queueBody.replaceChildren(...data.queue.map((x) => holdRow(x, [
      h("button.act", { type: "button", "data-approve": x.id, "aria-label": `${t("resources.approve")} ${x.request} ${x.depot}`, onclick: () => act(`/api/v1/resources/holds/${encodeURIComponent(x.id)}/approve`) }, t("resources.approve")),
      releaseButton(x)])));
  }

  function releaseButton(hold) {
    return h("button.act.secondary", { type: "button", "aria-label": `${t("resources.release")} ${hold.request} ${hold.depot}`, onclick: () => {
      const why = prompt(t("resources.release_reason"));
      if (why) act(`/api/v1/resources/holds/${encodeURIComponent(hold.id)}/release`, { reason: why });
    } }, t("resources.release"));
  }

  async function act(path, body) {
    try { await api("POST", path, body || {}); await Promise.all([loadStock(), loadHolds()]); } catch (error) { report(error); }
  }

  await loadStock();
  const incidentSel = h("select", { id: "req-incident" }, h("option", { value: "" }, t("resources.none")),
    sortedIncidents().filter((e) => e.incident.msgType !== "Cancel").map((e) => h("option", { value: e.thread }, `${info(e.incident).event || e.incident.identifier} — ${name(e.incident.sender)}`)));
  const lat = h("input", { id: "req-lat", type: "number", step: "0.0001", min: -90, max: 90, required: true });
  const lon = h("input", { id: "req-lon", type: "number", step: "0.0001", min: -180, max: 180, required: true });
  const item = h("select", { id: "req-item", required: true }, [...items].sort().map((x) => h("option", { value: x }, x)));
  const qty = h("input", { id: "req-qty", type: "number", min: 1, step: 1, value: 1, required: true });
  incidentSel.addEventListener("change", () => {
    const entry = state.incidents.get(incidentSel.value);
    const c = entry && incidentCentre(entry.incident);
    if (c) { lat.value = c[0].toFixed(4); lon.value = c[1].toFixed(4); }
  });
  const planBox = h("div", { id: "plan", "aria-live": "polite" });
  const stockFilter = h("select", { id: "stock-item" }, h("option", { value: "" }, t("filter.any")), [...items].sort().map((x) => h("option", { value: x }, x)));
  stockFilter.addEventListener("change", () => { only = stockFilter.value; loadStock().catch(report); });
  const form = h("form", { id: "request-form" },
    h("div.row", {},
      h("label", { for: "req-incident" }, t("resources.incident")), incidentSel,
      h("label", { for: "req-lat" }, t("resources.lat")), lat,
      h("label", { for: "req-lon" }, t("resources.lon")), lon,
      h("label", { for: "req-item" }, t("resources.item")), item,
      h("label", { for: "req-qty" }, t("resources.quantity")), qty,
      h("button.act", { type: "submit" }, t("resources.plan"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const plan = await api("POST", "/api/v1/resources/plans", { item: item.value, quantity: Number(qty.value), lat: Number(lat.value), lon: Number(lon.value) });
      showPlan(plan);
    } catch (error) { report(error); }
  });

  function showPlan(plan) {
    const confirm = h("button.act", { type: "button", id: "confirm-request", disabled: plan.lines.length === 0 }, t("resources.confirm"));
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      const request = `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      try {
        await api("POST", "/api/v1/resources/requests", { request, item: plan.item, lines: plan.lines });
        toast(t("resources.committed", { request }));
        planBox.replaceChildren();
        await Promise.all([loadStock(), loadHolds()]);
      } catch (error) { confirm.disabled = false; report(error); }
    });
    planBox.replaceChildren(h("section.card", { "aria-labelledby": "plan-title" },
      h("h3", { id: "plan-title" }, t("resources.plan_title")),
      h("p", {}, t("resources.covered", { covered: plan.covered, quantity: plan.quantity }), plan.uncovered ? [" · ", t("resources.uncovered", { n: plan.uncovered })] : null),
      plan.lines.length ? h("table", { id: "plan-lines" },
        h("thead", {}, h("tr", {}, ["col.depot", "col.owner", "col.quantity", "col.distance", "col.agreement", "col.state"].map((k) => h("th", { scope: "col" }, t(k))))),
        h("tbody", {}, plan.lines.map((l) => h("tr", {}, h("td", {}, l.depot), h("td", {}, name(l.owner)), h("td.num", {}, l.quantity), h("td.num", {}, l.distance_km.toFixed(1)),
          h("td", {}, t("why.clause", { agreement: l.agreement, clause: l.clause })), h("td", {}, l.auto_commit ? t("resources.auto") : t("resources.approval")))))) : h("p", {}, t("resources.no_lines")),
      plan.limits.length ? [h("h3", {}, t("resources.limits")), h("ul", {}, plan.limits.map((x) => h("li", {}, `${x.depot}: ${x.reason}`)))] : null,
      confirm));
    confirm.focus();
  }

  const holdTable = (id, body) => h("table", { id }, h("thead", {}, h("tr", {}, HOLD_COLS.map((k) => h("th", { scope: "col" }, t(k))))), body);
  root.append(h("h2", {}, t("resources.title")),
    h("section.card", { "aria-labelledby": "req-title" }, h("h3", { id: "req-title" }, t("resources.request")), form, planBox),
    h("h3", {}, t("resources.mine")), holdTable("mine", mineBody),
    h("h3", {}, t("resources.queue")), holdTable("queue", queueBody),
    h("h3", {}, t("resources.stock")),
    h("div.filters", {}, h("label", { for: "stock-item" }, t("filter.item")), stockFilter),
    h("div.scroll", {}, h("table", { id: "stock" }, h("thead", {}, h("tr", {}, [["col.depot", null], ["col.owner", null], ["col.item", null], ["col.on_hand", "num"], ["col.held", "num"], ["col.floor", "num"], ["col.available", "num"]].map(([k, cls]) => h("th", { scope: "col", class: cls }, t(k))))), stockBody)));
  await loadHolds();
  return (what) => { if (what === "stock") { loadStock().catch(report); loadHolds().catch(report); } };
}
