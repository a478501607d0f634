// The console's analytics page: request series per bucket, bytes in/out, errors, the access-frequency
// distribution and the cost estimate, from the admin API's /analytics/{requests,access,cost} documents.
import { bars, lineChart, stackedBars } from "./charts.js";

const OPS = ["GET", "PUT", "DELETE", "LIST", "HEAD", "OTHER"];
const WINDOWS = [["60", "last hour"], ["360", "last 6 hours"], ["1440", "last 24 hours"]];
const usd = (v) => `$${v < 0.01 && v > 0 ? v.toPrecision(2) : v.toFixed(4)}`;

/** Per-minute tallies of the chosen bucket (or of all buckets) on a gap-free minute axis. */
function timeline(doc, bucket) {
  const start = Math.ceil(doc.window_start / 60) * 60, end = Math.floor(doc.window_end / 60) * 60;
  const times = [];
  for (let t = start; t <= end; t += 60) times.push(t);
  const index = new Map(times.map((t, i) => [t, i]));
  const zero = () => times.map(() => 0);
  const out = { times, bytes_in: zero(), bytes_out: zero(), errors: zero(), ...Object.fromEntries(OPS.map((op) => [op, zero()])) };
  for (const [name, b] of Object.entries(doc.buckets || {})) {
    if (bucket && name !== bucket) continue;
    for (const point of b.series) {
      const i = index.get(point.minute);
      if (i === undefined) continue;
      for (const k of [...OPS, "bytes_in", "bytes_out"]) out[k][i] += point[k] || 0;
      out.errors[i] += Object.values(point.errors || {}).reduce((a, n) => a + n, 0);
    }
  }
  return out;
}

function errorTotals(doc, bucket) {
  const totals = {};
  for (const [name, b] of Object.entries(doc.buckets || {})) {
    if (bucket && name !== bucket) continue;
    for (const [code, n] of Object.entries(b.totals.errors || {})) totals[code] = (totals[code] || 0) + n;
  }
  return Object.entries(totals).sort((a, b) => b[1] - a[1]);
}

function distribution(access, bucket) {
  const sum = Object.fromEntries(access.bins.map((b) => [b, 0]));
  const top = [];
  for (const [name, b] of Object.entries(access.buckets || {})) {
    if (bucket && name !== bucket) continue;
    for (const bin of access.bins) sum[bin] += b.distribution[bin] || 0;
    top.push(...b.top.map((t) => [name, t.key, t.reads]));
  }
  top.sort((a, b) => b[2] - a[2]);
  return { rows: access.bins.map((bin) => [`read ${bin} time${bin === "1" ? "" : "s"}`, sum[bin]]), top: top.slice(0, 10) };
}

export async function analytics({ client, h, show, attempt, table, size, link }, bucket = "", minutes = "60") {
  const query = [["minutes", minutes]];
  const [requests, access, cost] = await Promise.all([
    attempt("Reading request analytics", () => client.admin("GET", "analytics/requests", { query })),
    attempt("Reading access frequency", () => client.admin("GET", "analytics/access")),
    attempt("Reading the cost estimate", () => client.admin("GET", "analytics/cost", { query })),
  ]);
  if (!requests) return;
  const names = [...new Set([...Object.keys(requests.buckets || {}), ...Object.keys(access?.buckets || {})])].sort();
  const pick = h("select", { id: "analytics-bucket" }, h("option", { value: "" }, "All buckets"),
    names.map((n) => h("option", { value: n, selected: n === bucket }, n)));
  const span = h("select", { id: "analytics-window" }, WINDOWS.map(([v, label]) => h("option", { value: v, selected: v === minutes }, label)));
  const go = () => { location.hash = link("analytics", pick.value || "-", span.value); };
  pick.addEventListener("change", go);
  span.addEventListener("change", go);

  const t = timeline(requests, bucket);
  const parts = [h("h1", {}, "Analytics"),
    h("div", { class: "row" }, h("label", {}, "Bucket ", pick), h("label", {}, "Window ", span),
      h("button", { type: "button", onclick: () => analytics({ client, h, show, attempt, table, size, link }, bucket, minutes) }, "Refresh")),
    lineChart("chart-requests", "Requests per minute", t.times,
      [...OPS.filter((op) => op !== "OTHER" || t.OTHER.some((v) => v > 0)).map((op) => ({ name: op, values: t[op] })),
        { name: "errors", values: t.errors }], (v) => String(Math.round(v))),
    lineChart("chart-bytes", "Bytes per minute", t.times,
      [{ name: "bytes in", values: t.bytes_in }, { name: "bytes out", values: t.bytes_out }], size),
    bars("chart-errors", "Errors by code", errorTotals(requests, bucket), String)];
  if (access) {
    const d = distribution(access, bucket);
    parts.push(bars("chart-access", "Access frequency: objects by reads in the window", d.rows, String));
    if (d.top.length) {
      parts.push(h("section", { class: "card" }, h("h2", {}, "Most read objects"),
        table(["Bucket", "Key", "Reads"], d.top.map(([b, k, n]) => h("tr", {}, h("td", {}, b), h("td", {}, k), h("td", { class: "num" }, n))))));
    }
  }
  if (cost) {
    const rows = Object.entries(cost.buckets || {}).filter(([name]) => !bucket || name === bucket)
      .map(([name, c]) => [name, [c.storage_monthly, c.requests_total, c.egress.cost]]);
    parts.push(stackedBars("chart-cost", `Estimated cost (${cost.currency}): storage per month, requests and egress in the window`,
      ["storage / month", "requests", "egress"], rows, usd));
    const tot = cost.total;
    parts.push(h("p", { class: "card", id: "cost-total" },
      `Total: ${usd(tot.storage_monthly)} storage per month, ${usd(tot.requests)} requests and ${usd(tot.egress)} egress in the window.`));
  }
  show(...parts);
}
