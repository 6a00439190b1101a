// Playbooks: what the hub runs, read-only, with the cases that prove each one.
import { api, colon, h, put, state, t } from "./core.js";

export async function renderPlaybooks(root) {
  const data = await api("GET", "/api/v1/playbooks");
  put(root, h("h2", {}, t("playbooks.title")),
    data.playbooks.map((p) => h("section.card", { "data-playbook": p.id, "aria-labelledby": `pb-${p.id}` },
      h("h3", { id: `pb-${p.id}` }, state.lang === "en" ? p.title.en : p.title.zh, " ", h("span.muted", {}, `${p.id} · ${t("playbooks.version", { version: p.version })} · ${p.file}`),
        p.fallback ? [" ", h("span.badge", {}, t("playbooks.fallback"))] : null),
      h("p.muted", {}, t("playbooks.owners"), colon(), p.owners.join(", ")),
      h("details", {}, h("summary", {}, t("playbooks.conditions")), h("pre", {}, JSON.stringify(p.conditions, null, 1))),
      h("p", {}, t("playbooks.steps"), colon(), p.steps.map((st) => st.id).join(" → ")),
      h("details", {}, h("summary", {}, `${t("playbooks.cases")} (${p.cases.length})`),
        h("ul", {}, p.cases.map((c) => h("li", {}, c.name, " — ", c.matched ? t("playbooks.must_match", { n: c.tasks.length }) : t("playbooks.must_not_match"))))),
      p.problem ? h("p.error", {}, p.problem) : null)));
  return null;
}
