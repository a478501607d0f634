// Plain SVG charts for the console, drawn with DOM calls (no library, no build step, no innerHTML:
// labels are user data). Colours come from console.css classes (.s0 ... .s5), never inline styles,
// which the Content-Security-Policy forbids. Width follows the card (viewBox), height the aspect.

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 720;

export function svgEl(tag, attrs = {}, text = null) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text != null) el.textContent = text;
  return el;
}

function legend(names) {
  const box = document.createElement("p");
  box.className = "legend";
  names.forEach((name, i) => {
    const item = document.createElement("span");
    item.className = `key ${colour(i, name)}`;
    item.textContent = name;
    box.append(item);
  });
  return box;
}

function card(id, title, body, extra = []) {
  const section = document.createElement("section");
  section.className = "card";
  section.id = id;
  const h2 = document.createElement("h2");
  h2.textContent = title;
  section.append(h2, body, ...extra);
  return section;
}

function empty() {
  const p = document.createElement("p");
  p.textContent = "No data in this window yet.";
  return p;
}

// Six colours for the series in order; an "errors" series is always the seventh (red, dashed).
const colour = (i, name) => (name === "errors" ? "s6" : `s${i % 6}`);
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/**
 * A time-series line chart: `times` are epoch seconds, each series `{ name, values }` one value per time.
 * Each polyline carries data-series and data-total, for people reading the DOM and for the tests.
 */
export function lineChart(id, title, times, series, format = String) {
  const height = 220, left = 64, right = 12, top = 12, bottom = 28;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const any = series.some((s) => s.values.some((v) => v > 0));
  const svg = svgEl("svg", { class: "chart line", role: "img", "aria-label": title, width: "100%", viewBox: `0 0 ${WIDTH} ${height}` });
  const span = Math.max(1, times[times.length - 1] - times[0]);
  const x = (t) => left + ((WIDTH - left - right) * (t - times[0])) / span;
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  svg.append(
    svgEl("line", { class: "axis", x1: left, y1: y(0), x2: WIDTH - right, y2: y(0) }),
    svgEl("line", { class: "axis", x1: left, y1: top, x2: left, y2: y(0) }),
    svgEl("text", { x: left - 6, y: top + 10, "text-anchor": "end" }, format(max)),
    svgEl("text", { x: left - 6, y: y(0), "text-anchor": "end" }, format(0)),
  );
  if (times.length) {
    svg.append(svgEl("text", { x: left, y: height - 8 }, clock(times[0])),
      svgEl("text", { x: WIDTH - right, y: height - 8, "text-anchor": "end" }, clock(times[times.length - 1])));
  }
  series.forEach((s, i) => {
    const points = s.values.map((v, j) => `${x(times[j]).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const total = s.values.reduce((a, v) => a + v, 0);
    svg.append(svgEl("polyline", { class: `series ${colour(i, s.name)}`, points, "data-series": s.name, "data-total": total }));
    if (s.values.length <= 90) {  // markers on short windows: a lone minute is a visible dot
      s.values.forEach((v, j) => { if (v > 0) svg.append(svgEl("circle", { class: `dot ${colour(i, s.name)}`, cx: x(times[j]), cy: y(v), r: 2.5 })); });
    }
  });
  return card(id, title, any ? svg : empty(), any ? [legend(series.map((s) => s.name))] : []);
}

/** Horizontal bars, one per row `[label, value]`; each rect carries data-label and data-value. */
export function bars(id, title, rows, format = String) {
  const bar = 20, gap = 8, labelWidth = 220, valueWidth = 120;
  const height = rows.length * (bar + gap) + gap;
  const max = Math.max(1e-12, ...rows.map((r) => r[1]));
  const svg = svgEl("svg", { class: "chart", role: "img", "aria-label": title, width: "100%", viewBox: `0 0 ${WIDTH} ${height}` });
  rows.forEach(([label, value], i) => {
    const yy = gap + i * (bar + gap);
    const w = value > 0 ? Math.max(1, ((WIDTH - labelWidth - valueWidth) * value) / max) : 0;
    svg.append(svgEl("text", { x: 0, y: yy + bar - 5 }, label.length > 30 ? label.slice(0, 29) + "…" : label),
      svgEl("rect", { x: labelWidth, y: yy, width: w, height: bar, rx: 3, "data-label": label, "data-value": value }),
      svgEl("text", { x: labelWidth + w + 6, y: yy + bar - 5 }, format(value)));
  });
  return card(id, title, rows.length ? svg : empty());
}

/** Horizontal stacked bars: rows `[label, [v0, v1, ...]]`, one segment per name in `names`. */
export function stackedBars(id, title, names, rows, format = String) {
  const bar = 20, gap = 8, labelWidth = 220, valueWidth = 120;
  const height = rows.length * (bar + gap) + gap;
  const totals = rows.map(([, vs]) => vs.reduce((a, v) => a + v, 0));
  const max = Math.max(1e-12, ...totals);
  const svg = svgEl("svg", { class: "chart", role: "img", "aria-label": title, width: "100%", viewBox: `0 0 ${WIDTH} ${height}` });
  rows.forEach(([label, values], i) => {
    const yy = gap + i * (bar + gap);
    let xx = labelWidth;
    svg.append(svgEl("text", { x: 0, y: yy + bar - 5 }, label.length > 30 ? label.slice(0, 29) + "…" : label));
    values.forEach((v, j) => {
      const w = ((WIDTH - labelWidth - valueWidth) * v) / max;
      if (w <= 0) return;
      svg.append(svgEl("rect", { class: `s${j % 6}`, x: xx, y: yy, width: w, height: bar, "data-label": label, "data-part": names[j], "data-value": v }));
      xx += w;
    });
    svg.append(svgEl("text", { x: xx + 6, y: yy + bar - 5 }, format(totals[i])));
  });
  return card(id, title, rows.length ? svg : empty(), rows.length ? [legend(names)] : []);
}
