// The console UI. Every name shown is user data: the DOM is built with text nodes and attributes
// only (never innerHTML), and the Content-Security-Policy forbids inline script as a second line.
import { analytics } from "./analytics.js";
import { objectPath, S3Client } from "./s3.js";

const SESSION = "rs3gw-console";
const S3NS = "http://s3.amazonaws.com/doc/2006-03-01/";
const $ = (id) => document.getElementById(id);
let client = null;
const lastUpload = { pct: 0, text: "" }; // survives the listing's re-render after an upload

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) if (c != null) el.append(c instanceof Node ? c : String(c));
  return el;
}

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

async function attempt(what, fn) {
  try {
    return await fn();
  } catch (err) {
    say(`${what} failed: ${err.message}`, true);
    return undefined;
  }
}

function size(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))), h("tbody", {}, rows));
}

function button(label, onclick, cls = "", id = null) {
  return h("button", { type: "button", class: cls, onclick, id }, label);
}

function show(...nodes) {
  $("main").replaceChildren(...nodes.filter((n) => n != null));
}

// ---- login ------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  const creds = { accessKey: $("access-key").value.trim(), secretKey: $("secret-key").value, region: $("region").value.trim() };
  $("login-error").textContent = "";
  const c = new S3Client(creds);
  try {
    await c.listBuckets();
  } catch (err) {
    $("login-error").textContent = `Login failed: ${err.message}`;
    return;
  }
  sessionStorage.setItem(SESSION, JSON.stringify(creds));
  await start(c);
}

async function start(c) {
  client = c;
  $("nav").hidden = false;
  $("whoami").textContent = c.accessKey;
  // Admin pages appear only where the admin API answers this key (the primary account).
  // Cheap routes only: the storage report scans every object, so the usage page asks for it when opened.
  const probes = { users: ["users"], usage: ["metrics"], audit: ["audit/stats"], analytics: ["analytics/cache"] };
  await Promise.all(Object.entries(probes).map(async ([feature, [route, query]]) => {
    const ok = await client.admin("GET", route, { query }).then(() => true, () => false);
    document.querySelector(`[data-feature="${feature}"]`).hidden = !ok;
  }));
  if (!location.hash || location.hash === "#/") location.hash = "#/buckets";
  else render();
}

function logout() {
  sessionStorage.removeItem(SESSION);
  location.hash = "";
  location.reload();
}

// ---- routing ----------------------------------------------------------------------------------

function render() {
  if (!client) return;
  say("");
  const [view, bucket, ...rest] = location.hash.slice(2).split("/").map(decodeURIComponent);
  const views = { buckets, objects: () => objects(bucket, rest.join("/")), settings: () => settings(bucket), users, usage, audit,
    analytics: () => analytics({ client, h, show, attempt, table, size, link }, bucket && bucket !== "-" ? bucket : "", rest[0] || "60") };
  (views[view] || buckets)();
}

const link = (...parts) => "#/" + parts.map(encodeURIComponent).join("/");

// ---- buckets ----------------------------------------------------------------------------------

async function buckets() {
  const list = await attempt("Listing buckets", () => client.listBuckets());
  if (!list) return;
  const name = h("input", { id: "new-bucket", placeholder: "new-bucket-name", required: true });
  const create = async () => {
    if (await attempt("Creating the bucket", () => client.request("PUT", objectPath(name.value.trim())))) {
      say(`Bucket ${name.value.trim()} created.`);
      buckets();
    }
  };
  const remove = async (b) => {
    if (!confirm(`Delete bucket ${b}? It must be empty.`)) return;
    if (await attempt("Deleting the bucket", () => client.request("DELETE", objectPath(b)))) buckets();
  };
  const rows = list.map((b) => h("tr", { "data-bucket": b.name },
    h("td", {}, h("a", { class: "link bucket-link", href: link("objects", b.name) }, b.name)),
    h("td", {}, b.created),
    h("td", {}, h("a", { class: "link", href: link("settings", b.name) }, "Settings"), " ",
      button("Delete", () => remove(b.name), "danger delete-bucket"))));
  show(h("h1", {}, "Buckets"),
    h("div", { class: "row" }, name, button("Create bucket", create, "primary", "create-bucket")),
    table(["Name", "Created", ""], rows));
}

// ---- objects ----------------------------------------------------------------------------------

async function objects(bucket, prefix, token = "") {
  const page = await attempt("Listing objects", () => client.listObjects(bucket, prefix, token));
  if (!page) return;
  const parts = prefix.split("/").filter(Boolean);
  const crumbs = h("p", { class: "crumbs" }, h("a", { href: link("buckets") }, "Buckets"), " / ",
    h("a", { href: link("objects", bucket) }, bucket),
    parts.map((p, i) => [" / ", h("a", { href: link("objects", bucket, ...parts.slice(0, i + 1)) + "/" }, p)]));
  const files = h("input", { type: "file", id: "upload-files", multiple: true });
  const progress = h("progress", { id: "upload-progress", max: 100, value: lastUpload.pct });
  const label = h("span", { id: "upload-label" }, lastUpload.text);
  files.addEventListener("change", async () => {
    for (const file of files.files) {
      const key = prefix + file.name;
      const ok = await attempt(`Uploading ${key}`, () => client.upload(bucket, key, file, (done, total) => {
        const pct = total ? Math.floor((done * 100) / total) : 100;
        Object.assign(lastUpload, { pct, text: `${file.name}: ${pct}%` });
        progress.value = pct;
        label.textContent = lastUpload.text;
      }));
      if (ok === undefined) return;
    }
    say(`Uploaded ${files.files.length} file(s).`);
    objects(bucket, prefix);
  });
  const expiry = h("input", { id: "presign-expiry", type: "number", min: 1, max: 604800, value: 3600 });
  const presigned = h("input", { id: "presigned-url", readonly: true, placeholder: "presigned link appears here" });
  const download = async (key) => {
    const blob = await attempt(`Downloading ${key}`, () => client.download(bucket, key));
    if (!blob) return;
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: key.split("/").pop() });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    say(`Downloaded ${key} (${size(blob.size)}).`);
  };
  const share = async (key) => {
    presigned.value = await client.presignedUrl(bucket, key, Number(expiry.value) || 3600);
    presigned.select();
    say(`Presigned GET link for ${key}, valid ${expiry.value} s.`);
  };
  const remove = async (key) => {
    if (!confirm(`Delete ${key}?`)) return;
    if (await attempt(`Deleting ${key}`, () => client.request("DELETE", objectPath(bucket, key)))) {
      say(`Deleted ${key}.`);
      objects(bucket, prefix);
    }
  };
  const rows = [
    ...page.prefixes.map((p) => h("tr", { "data-prefix": p },
      h("td", {}, h("a", { class: "link", href: link("objects", bucket, ...p.split("/").filter(Boolean)) + "/" }, p.slice(prefix.length))),
      h("td", {}, "folder"), h("td", {}), h("td", {}))),
    ...page.objects.map((o) => h("tr", { "data-key": o.key },
      h("td", {}, o.key.slice(prefix.length)), h("td", { class: "num" }, size(o.size)), h("td", {}, o.modified),
      h("td", {}, button("Download", () => download(o.key), "download"), " ",
        button("Presign", () => share(o.key), "presign"), " ",
        button("Delete", () => remove(o.key), "danger delete")))),
  ];
  const more = page.next ? button("Next page", () => objects(bucket, prefix, page.next)) : null;
  show(h("h1", {}, "Objects"), crumbs,
    h("div", { class: "card" },
      h("div", { class: "row" }, h("label", {}, "Upload to this folder ", files), progress, label),
      h("div", { class: "row" }, h("label", {}, "Link expiry (seconds) ", expiry)), presigned),
    table(["Name", "Size", "Last modified", ""], rows), more);
}

// ---- bucket settings --------------------------------------------------------------------------

function configEditor({ title, param, bucket, empty, type, template, checksum, validate }) {
  const area = h("textarea", { id: `${param}-text`, spellcheck: "false" });
  const path = objectPath(bucket);
  const query = [[param, ""]];
  const section = h("section", { class: "card", id: `${param}-section`, "data-state": "loading" });
  const load = async () => {
    section.dataset.state = "loading";  // edits wait for the current document, not race it
    area.readOnly = true;
    try {
      area.value = await (await client.request("GET", path, { query })).text();
    } catch (err) {
      if (err.code !== empty) say(`Reading ${title} failed: ${err.message}`, true);
      area.value = "";
    }
    area.readOnly = false;
    section.dataset.state = "ready";
  };
  const save = async () => {
    if (section.dataset.state !== "ready") return say(`${title} is still loading.`, true);
    const problem = validate ? validate(area.value) : "";
    if (problem) return say(`${title}: ${problem}`, true);
    const opts = { query, body: area.value, headers: { "content-type": type }, checksum };
    if (await attempt(`Saving ${title}`, () => client.request("PUT", path, opts))) say(`${title} saved.`);
  };
  const remove = async () => {
    if (await attempt(`Removing ${title}`, () => client.request("DELETE", path, { query }))) { say(`${title} removed.`); load(); }
  };
  load();
  section.append(h("h2", {}, title), area,
    h("div", { class: "row" }, button("Save", save, "primary"), button("Remove", remove, "danger"),
      template ? button("Insert example", () => { area.value = template(bucket); }) : null));
  return section;
}

async function settings(bucket) {
  const select = h("select", { id: "versioning-status" }, h("option", { value: "Enabled" }, "Enabled"), h("option", { value: "Suspended" }, "Suspended"));
  const state = h("span", { id: "versioning-state" });
  const doc = await attempt("Reading versioning", () => client.xml("GET", objectPath(bucket), { query: [["versioning", ""]] }));
  const status = doc?.getElementsByTagName("Status")[0]?.textContent || "";
  state.textContent = status || "never enabled";
  if (status) select.value = status;
  const saveVersioning = async () => {
    const body = `<VersioningConfiguration xmlns="${S3NS}"><Status>${select.value}</Status></VersioningConfiguration>`;
    const opts = { query: [["versioning", ""]], body, headers: { "content-type": "application/xml" } };
    if (await attempt("Saving versioning", () => client.request("PUT", objectPath(bucket), opts))) {
      state.textContent = select.value;
      say("Versioning saved.");
    }
  };
  const jsonCheck = (text) => {
    try {
      JSON.parse(text);
      return "";
    } catch (err) {
      return `not valid JSON (${err.message})`;
    }
  };
  show(h("h1", {}, `Settings: ${bucket}`),
    h("p", { class: "crumbs" }, h("a", { href: link("buckets") }, "Buckets"), " / ", h("a", { href: link("objects", bucket) }, bucket)),
    h("section", { class: "card" }, h("h2", {}, "Versioning"), h("p", {}, "Current: ", state),
      h("div", { class: "row" }, select, button("Save", saveVersioning, "primary", "save-versioning"))),
    ...EDITORS.map((e) => configEditor({ ...e, bucket, validate: e.type.endsWith("json") ? jsonCheck : null })));
}

// The raw-document editors on the settings page; "Insert example" fills in `template`.
const EDITORS = [
  {
    title: "Lifecycle", param: "lifecycle", empty: "NoSuchLifecycleConfiguration", type: "application/xml", checksum: true,
    template: () => `<LifecycleConfiguration xmlns="${S3NS}"><Rule><ID>expire-tmp</ID><Filter><Prefix>tmp/</Prefix></Filter>`
      + "<Status>Enabled</Status><Expiration><Days>7</Days></Expiration></Rule></LifecycleConfiguration>",
  },
  {
    title: "Bucket policy", param: "policy", empty: "NoSuchBucketPolicy", type: "application/json",
    template: (b) => JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${b}/public/*` }],
    }, null, 2),
  },
  {
    title: "Default encryption", param: "encryption", empty: "ServerSideEncryptionConfigurationNotFoundError",
    type: "application/xml", checksum: true,
    template: () => `<ServerSideEncryptionConfiguration xmlns="${S3NS}"><Rule><ApplyServerSideEncryptionByDefault>`
      + "<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
  },
];

// ---- users and keys ---------------------------------------------------------------------------

async function users(selected = "", revealed = null) {
  const doc = await attempt("Listing users", () => client.admin("GET", "users"));
  if (!doc) return;
  const name = h("input", { id: "new-user", placeholder: "user name" });
  const create = async () => {
    if (await attempt("Creating the user", () => client.admin("PUT", `users/${encodeURIComponent(name.value.trim())}`))) users(name.value.trim());
  };
  const act = (what, method, route, then) => async () => {
    if (method === "DELETE" && !confirm(`${what}?`)) return;
    const out = await attempt(what, () => client.admin(method, route));
    if (out !== undefined) then(out);
  };
  const rows = doc.users.map((u) => h("tr", { "data-user": u.name },
    h("td", {}, u.name), h("td", {}, u.enabled ? "enabled" : "disabled"), h("td", { class: "num" }, u.keys),
    h("td", {}, button("Keys", () => users(u.name)), " ",
      button(u.enabled ? "Disable" : "Enable", act("Changing the user", "POST", `users/${encodeURIComponent(u.name)}/${u.enabled ? "disable" : "enable"}`, () => users(selected))), " ",
      button("Delete", act(`Delete user ${u.name}`, "DELETE", `users/${encodeURIComponent(u.name)}`, () => users()), "danger"))));
  const parts = [h("h1", {}, "Users & keys"), h("div", { class: "row" }, name, button("Create user", create, "primary")),
    table(["User", "State", "Keys", ""], rows)];
  if (selected) parts.push(await keys(selected, act, revealed));
  show(...parts);
}

async function keys(user, act, revealed) {
  const doc = await attempt("Listing keys", () => client.admin("GET", `users/${encodeURIComponent(user)}/keys`));
  const secret = revealed
    ? h("p", { class: "secret", id: "new-secret" }, `Access key ${revealed.access_key}, secret ${revealed.secret_key} (shown once; copy it now)`)
    : null;
  const reveal = (k) => users(user, k);
  const rows = (doc?.keys || []).map((k) => {
    const ak = encodeURIComponent(k.access_key);
    return h("tr", { "data-access-key": k.access_key }, h("td", {}, k.access_key), h("td", {}, k.enabled ? "enabled" : "disabled"),
      h("td", {}, String(k.created ?? "")),
      h("td", {}, button(k.enabled ? "Disable" : "Enable", act("Changing the key", "POST", `keys/${ak}/${k.enabled ? "disable" : "enable"}`, () => users(user))), " ",
        button("Rotate", act("Rotating the key", "POST", `keys/${ak}/rotate`, reveal)), " ",
        button("Delete", act(`Delete key ${k.access_key}`, "DELETE", `keys/${ak}`, () => users(user)), "danger")));
  });
  return h("section", { class: "card" }, h("h2", {}, `Keys of ${user}`), secret,
    button("Create key", act("Creating a key", "POST", `users/${encodeURIComponent(user)}/keys`, reveal), "primary"),
    table(["Access key", "State", "Created", ""], rows));
}

// ---- usage ------------------------------------------------------------------------------------

function barChart(title, rows, format) {
  const NS = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs, text) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text != null) el.textContent = text;
    return el;
  };
  const width = 720, bar = 20, gap = 8, labelWidth = 220, valueWidth = 110;
  const max = Math.max(1, ...rows.map((r) => r[1]));
  const svg = svgEl("svg", { class: "chart", role: "img", "aria-label": title, width, height: rows.length * (bar + gap) + gap, viewBox: `0 0 ${width} ${rows.length * (bar + gap) + gap}` });
  rows.forEach(([label, value], i) => {
    const y = gap + i * (bar + gap);
    const w = Math.max(1, ((width - labelWidth - valueWidth) * value) / max);
    svg.append(svgEl("text", { x: 0, y: y + bar - 5 }, label.length > 30 ? label.slice(0, 29) + "…" : label),
      svgEl("rect", { x: labelWidth, y, width: w, height: bar, rx: 3 }),
      svgEl("text", { x: labelWidth + w + 6, y: y + bar - 5 }, format(value)));
  });
  return h("section", { class: "card" }, h("h2", {}, title), rows.length ? svg : h("p", {}, "No data yet."));
}

async function usage() {
  const report = (await attempt("Reading the storage report", () => client.admin("GET", "storage/report"))) || {};
  const sum = (classes) => Object.values(classes || {}).reduce((a, t) => [a[0] + t.bytes, a[1] + t.objects], [0, 0]);
  const perBucket = Object.entries(report.buckets || {}).map(([name, b]) => [name, ...sum(b.classes)]);
  const parts = [h("h1", {}, "Usage"),
    barChart("Stored bytes per bucket", perBucket.map(([n, bytes]) => [n, bytes]), size),
    barChart("Objects per bucket", perBucket.map(([n, , count]) => [n, count]), String),
    barChart("Stored bytes per storage class", Object.entries(report.total?.classes || {}).map(([c, t]) => [c, t.bytes]), size)];
  const cost = report.total?.cost;
  if (cost) parts.push(h("p", { class: "card" }, `Estimated cost: $${cost.monthly.toFixed(4)} per month ($${cost.all_standard_monthly.toFixed(4)} if all STANDARD).`));
  const metrics = await client.admin("GET", "metrics").catch(() => null);
  if (typeof metrics === "string") {
    const byOp = {};
    for (const m of metrics.matchAll(/^rs3gw_requests_total\{([^}]*)\} ([0-9.e+]+)$/gm)) {
      const op = /operation="([^"]*)"/.exec(m[1])?.[1] || "other";
      byOp[op] = (byOp[op] || 0) + Number(m[2]);
    }
    const top = Object.entries(byOp).sort((a, b) => b[1] - a[1]).slice(0, 15);
    parts.push(barChart("Requests by operation (since start)", top, (v) => String(Math.round(v))));
  }
  show(...parts);
}

// ---- audit log --------------------------------------------------------------------------------

async function audit() {
  const filters = ["user", "action", "bucket", "result"].map((f) => h("input", { id: `audit-${f}`, placeholder: f, "data-filter": f }));
  const limit = h("input", { id: "audit-limit", type: "number", value: 200, min: 1 });
  const body = h("tbody");
  const count = h("span");
  const load = async () => {
    const query = [["limit", limit.value || "200"], ...filters.filter((f) => f.value.trim()).map((f) => [f.dataset.filter, f.value.trim()])];
    const doc = await attempt("Reading the audit log", () => client.admin("GET", "audit/events", { query }));
    if (!doc) return;
    count.textContent = `${doc.count} shown of ${doc.matched} matching`;
    const events = [...doc.events].sort((a, b) => (b.ts || 0) - (a.ts || 0));
    body.replaceChildren(...events.map((e) => h("tr", {},
      ["time", "principal", "action", "bucket", "key", "status", "error", "source_ip"].map((f) => h("td", {}, e[f] ?? "")))));
  };
  show(h("h1", {}, "Audit log"), h("div", { class: "row" }, filters, limit, button("Refresh", load, "primary"), count),
    h("table", { id: "audit-table" }, h("thead", {}, h("tr", {}, ["Time", "Principal", "Action", "Bucket", "Key", "Status", "Error", "Source"].map((t) => h("th", {}, t)))), body));
  load();
}

// ---- boot -------------------------------------------------------------------------------------

async function boot() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", render);
  const config = await fetch("config.json").then((r) => r.json()).catch(() => ({}));
  if (config.region) $("region").value = config.region;
  const saved = sessionStorage.getItem(SESSION);
  if (saved) await start(new S3Client(JSON.parse(saved)));
}

boot();
