// The regional map drawn as plain SVG: district boundaries from the hub (no tile server),
// incident areas (polygons and circles), depots with their stock, tasks as lines.
import { api, h, info, isExercise, mine, name, s, setExercise, sortedIncidents, state, t } from "./core.js";

const W = 1000;
let frame = null; // {lon0, lat0, k, height, districts}

function projection() {
  if (frame) return frame;
  let minLon = 180, maxLon = -180, minLat = 90, maxLat = -90;
  const rings = (g) => (g.type === "Polygon" ? [g.coordinates] : g.coordinates);
  for (const f of state.region.features) for (const poly of rings(f.geometry)) for (const [lon, lat] of poly[0]) {
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon); minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
  }
  const cos = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const k = W / ((maxLon - minLon) * cos);
  frame = { minLon, maxLat, cos, k, height: Math.ceil((maxLat - minLat) * k) };
  frame.xy = (lat, lon) => [((lon - frame.minLon) * frame.cos * frame.k).toFixed(1), ((frame.maxLat - lat) * frame.k).toFixed(1)];
  frame.paths = state.region.features.map((f) => ({
    code: f.properties.code,
    d: rings(f.geometry).map((poly) => poly.map((ring) => "M" + ring.map(([lon, lat]) => frame.xy(lat, lon).join(",")).join("L") + "Z").join("")).join(""),
  }));
  return frame;
}

function parsePairs(text) {
  return text.trim().split(/\s+/).map((p) => p.split(",").map(Number));
}

// Where an incident is: its first area's polygon or circle centre.
export function incidentCentre(incident) {
  for (const area of info(incident).area || []) {
    if (area.circle && area.circle.length) { const [c] = area.circle[0].split(" "); return c.split(",").map(Number); }
    if (area.polygon && area.polygon.length) {
      const pts = parsePairs(area.polygon[0]);
      return [pts.reduce((a, p) => a + p[0], 0) / pts.length, pts.reduce((a, p) => a + p[1], 0) / pts.length];
    }
  }
  const j = state.region.jurisdictions[incident.sender];
  return j ? j.centroid : null;
}

function areaShapes(entry, f) {
  const inc = entry.incident, cls = isExercise(inc) ? "area exercise" : "area";
  const title = s("title", {}, `${info(inc).event || inc.identifier} — ${name(inc.sender)}`);
  const out = [];
  for (const area of info(inc).area || []) {
    for (const poly of area.polygon || []) {
      out.push(s("path", { class: cls, d: "M" + parsePairs(poly).map(([lat, lon]) => f.xy(lat, lon).join(",")).join("L") + "Z", "data-thread": entry.thread }, title.cloneNode(true)));
    }
    for (const circle of area.circle || []) {
      const [c, r] = circle.split(" ");
      const [lat, lon] = c.split(",").map(Number);
      const [x, y] = f.xy(lat, lon);
      out.push(s("circle", { class: cls, cx: x, cy: y, r: Math.max(3, (Number(r) / 111.2) * f.k).toFixed(1), "data-thread": entry.thread }, title.cloneNode(true)));
    }
  }
  return out;
}

export async function renderMap(root) {
  const f = projection();
  const depots = new Map();
  const stock = await api("GET", "/api/v1/resources/balances");
  for (const b of stock.balances) {
    if (!depots.has(b.depot)) depots.set(b.depot, { ...b, items: [] });
    depots.get(b.depot).items.push(b);
  }
  const svg = s("svg", { class: "map", viewBox: `0 0 ${W} ${f.height}`, role: "img", "aria-labelledby": "map-title" });
  const list = h("div", { id: "depot-list" });
  root.append(
    h("h2", { id: "map-title" }, t("map.title")),
    h("p.muted", {}, t("map.label")),
    h("div.mapwrap", {}, h("div", {}, svg,
      h("div.legend", {}, h("span", {}, h("i.l-area"), t("map.legend.incident")), h("span", {}, h("i.l-depot"), t("map.legend.depot")), h("span", {}, h("i.l-task"), t("map.legend.task")))),
    h("section.card", { "aria-labelledby": "depots-title" }, h("h3", { id: "depots-title" }, t("map.depots")), list)));

  const base = s("g", { class: "districts" }, f.paths.map((p) => s("path", { class: mine(p.code) ? "district mine" : "district", d: p.d, "data-code": p.code }, s("title", {}, `${name(p.code)} ${p.code}`))));
  const labels = s("g", {}, Object.entries(state.region.jurisdictions).filter(([, j]) => j.level === "city").map(([code, j]) => {
    const [x, y] = f.xy(j.centroid[0], j.centroid[1]);
    return s("text", { class: "city-label", x, y }, name(code));
  }));
  const dynamic = s("g", { id: "map-live" });
  svg.append(s("title", {}, t("map.title")), base, labels, dynamic);

  for (const d of depots.values()) {
    list.append(h("details", { "data-depot": d.depot }, h("summary", {}, h("strong", {}, state.lang === "en" ? d.name_en : d.name_zh), " ", h("span.muted", {}, name(d.jurisdiction))),
      h("ul", {}, d.items.map((b) => h("li", {}, `${b.item}: ${b.available} / ${b.on_hand}`)))));
  }

  function draw() {
    const shapes = [];
    let exercise = false;
    const centres = new Map();
    for (const entry of sortedIncidents()) {
      if (entry.incident.msgType === "Cancel") continue;
      exercise = exercise || isExercise(entry.incident);
      shapes.push(...areaShapes(entry, f));
      centres.set(entry.thread, incidentCentre(entry.incident));
    }
    for (const task of state.tasks.values()) {
      const from = centres.get(task.incident), to = state.region.jurisdictions[task.target];
      if (!from || !to || task.state === "cancelled") continue;
      const [x1, y1] = f.xy(from[0], from[1]), [x2, y2] = f.xy(to.centroid[0], to.centroid[1]);
      shapes.push(s("line", { class: `task ${task.state}`, x1, y1, x2, y2, "data-task": task.id }, s("title", {}, `${state.lang === "en" ? task.action_en : task.action_zh} → ${name(task.target)} (${t("state." + task.state)})`)));
    }
    for (const d of depots.values()) {
      const [x, y] = f.xy(d.lat, d.lon);
      shapes.push(s("rect", { class: "depot", x: x - 4, y: y - 4, width: 8, height: 8, "data-depot": d.depot },
        s("title", {}, `${state.lang === "en" ? d.name_en : d.name_zh}: ` + d.items.map((b) => `${b.item} ${b.available}/${b.on_hand}`).join(", "))));
    }
    dynamic.replaceChildren(...shapes);
    setExercise(exercise);
  }
  draw();
  return (what) => { if (what !== "stock") draw(); };
}
